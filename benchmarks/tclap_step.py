"""T-CLAP training-step cost on the offline tiny model, and whether data loading keeps up.

Prints (and writes as JSON):
  1. step time with L_c only, L_c + 0.5 L_t, and L_c + 0.5 L_t with the mixed-up clips' swapped audio
     embedded too, as every step did before 2026-12-07 (only the inversion term reads it now), on the
     same batch: L_t adds the order-swapped captions to the text forward;
  2. samples/s of the data pipeline (decode, resample, crop, tokenise; DataLoader workers 0 and 2)
     against samples/s of the model step.

    python benchmarks/tclap_step.py [--batch 32] [--mix 4:1] [--steps 5] [--rounds 3]   (the main job: --batch 40 --mix 1:1)
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, DataLoader

from tclap.data.datasets import (AudioTextCollator, AudioWindow, CaptionPairs, MixedBatchSampler, MixupClips,
                                 without_fields)
from tclap.losses import LossConfig, TclapLoss
from tclap.model import ClapEncoder, ModelConfig, build_tiny
from tclap.train import EncoderWithLoss

from order_free_data import write_order_free_data  # benchmarks/order_free_data.py, next to this script
from timing import seconds_per_step  # benchmarks/timing.py, next to this script


def mix(text: str) -> dict[str, float]:
    """'P:T' -> the MixedBatchSampler ratio; T > 0, so the batch holds temporal samples."""
    try:
        p, t = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mix: 'P:T', two numbers, not {text!r}") from None
    if p < 0 or t <= 0:
        raise argparse.ArgumentTypeError(f"--mix: P >= 0 and T > 0, not {text!r}")
    return {"positive_only": p, "temporal": t}


def time_steps(module: EncoderWithLoss, batch: dict, steps: int) -> float:
    return seconds_per_step(module.parameters(), lambda: sum(module(batch).values()), steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--mix", type=mix, default="4:1", help="positive-only : temporal samples per batch (paper 4:1)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; each row's best is kept")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tclap_step.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_order_free_data(tmp, clips=200)
        window = AudioWindow(16000, 4.0, train=True)
        positive, temporal = CaptionPairs(tmp / "pairs.jsonl", window, positive_only=True), MixupClips(
            tmp / "mixup", "train", window)
        model, processor = build_tiny(ModelConfig(), [r["caption"] for r in positive.rows + temporal.rows])
        sampler = MixedBatchSampler(len(positive), len(temporal), args.batch, args.mix)
        collate = AudioTextCollator(processor.tokenizer)
        batch = collate([ConcatDataset([positive, temporal])[i] for i in next(iter(sampler))])
        encoder = ClapEncoder(model, processor)
        cases = {"L_c only": (TclapLoss(LossConfig(temporal_weight=0.0)), {**batch, **_without_negatives(batch)}),
                 "L_c + 0.5 L_t": (TclapLoss(), {**batch, **_without_swapped_audio(batch)}),  # as training leaves them out
                 "old step": (TclapLoss(), batch)}
        rows = {name: float("inf") for name in cases}
        for _ in range(args.rounds):  # interleaved rounds, best of each: no row pays for running first
            for name, (loss, rows_batch) in cases.items():
                rows[name] = min(rows[name], time_steps(EncoderWithLoss(encoder, loss), rows_batch, args.steps))
        model_rate = args.batch / rows["L_c + 0.5 L_t"]
        data_rates = {}
        as_trained = ConcatDataset([positive, without_fields(MixupClips(tmp / "mixup", "train", window), "neg_audio")])
        for workers in (0, 2):  # the swapped clips left out, as training leaves them when no term reads them
            loader = DataLoader(as_trained, batch_sampler=sampler, collate_fn=collate,
                                num_workers=workers)
            start, n = time.perf_counter(), 0
            for i, b in enumerate(loader):
                n += len(b["captions"])
                if i == 9:
                    break
            data_rates[workers] = n / (time.perf_counter() - start)
    result = {"batch": args.batch, "mix": args.mix, "step_seconds": rows,
              "temporal_overhead_ratio": rows["L_c + 0.5 L_t"] / rows["L_c only"],
              "swapped_audio_ratio": rows["old step"] / rows["L_c + 0.5 L_t"],
              "model_samples_per_s": model_rate, "data_samples_per_s": data_rates}
    print(f"tiny T-CLAP, batch {args.batch} ({sampler.k_t} temporal), CPU, {torch.get_num_threads()} threads")
    for name, seconds in rows.items():
        print(f"  step {name:14s} {seconds:7.3f} s")
    print(f"  ratio (with L_t / without): {result['temporal_overhead_ratio']:.2f}")
    print(f"  ratio (old step, which also embeds the {len(batch['neg_audio'])} swapped clips / L_t step): "
          f"{result['swapped_audio_ratio']:.2f}")
    print(f"  model step: {model_rate:8.1f} samples/s")
    for workers, rate in data_rates.items():
        print(f"  data, {workers} workers: {rate:8.1f} samples/s ({rate / model_rate:.1f}x the model step)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


def _without_swapped_audio(batch: dict) -> dict:
    """The batch's entries with no order-swapped audio: what a step sees without the inversion term."""
    return {"neg_audio": batch["neg_audio"][:0], "neg_audio_index": batch["neg_audio_index"][:0]}


def _without_negatives(batch: dict) -> dict:
    """The same batch with no negatives: what a plain CLAP step sees."""
    return {"text": {k: v[: len(batch["captions"])] for k, v in batch["text"].items()},
            "neg_captions": [], "neg_caption_index": batch["neg_caption_index"][:0], **_without_swapped_audio(batch)}


if __name__ == "__main__":
    main()
