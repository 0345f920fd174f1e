"""AudioLDM UNet training steps per second with and without the feature cache (`data.cache`), tiny config.

Uncached, each step decodes the clips, computes log-mels and runs the frozen VAE encoder and CLAP;
cached, it reads the stored VAE posteriors and embeddings and only the UNet runs. Prints (and
writes as JSON) steps/s of both, their ratio, and the one-off cost of building the cache, on a
small synthesised world with the offline model sizes (tiny CLAP of width 128, tiny VAE, tiny UNet).

    python benchmarks/audioldm_caching.py [--steps 10] [--batch 16] [--seconds 4]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from audioldm_cond.ldm_training import AudioLdmTraining, LdmRunConfig
from audioldm_cond.pipeline import tiny_vae
from tclap.config import build_run_config
from tclap.data.mixup import MANIFEST, MixupConfig, build_mixup, read_manifest
from tclap.data.synth import SynthConfig, synthesize_world
from tclap.model import ModelConfig, build_tiny, save_clap

from timing import seconds_per_step  # benchmarks/timing.py, next to this script


def time_steps(training: AudioLdmTraining, steps: int) -> float:
    """Seconds per training step (data, frozen encoders if uncached, UNet forward and backward, AdamW)."""
    batches = iter(training.loader)
    return seconds_per_step(training.unet.parameters(),
                            lambda: sum(training.loss(training.unet, next(batches)).values()), steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/audioldm_caching.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize_world(tmp / "world", SynthConfig(files_per_class=5))
        clips = (args.steps + 1) * args.batch  # one epoch covers the timed steps
        build_mixup(tmp / "world", tmp / "mixup", MixupConfig(clips=int(clips / 0.8) + 1, clip_seconds=args.seconds))
        captions = [r["caption"] for r in read_manifest(tmp / "mixup" / MANIFEST)]
        save_clap(*build_tiny(ModelConfig(), captions), tmp / "clap", {})
        tiny_vae().save_pretrained(tmp / "vae")
        sections = {"model": {"cond": str(tmp / "clap"), "vae": str(tmp / "vae"), "unet": "tiny"},
                    "data": {"mixup": str(tmp / "mixup"), "seconds": args.seconds, "val_clips": 1},
                    "condition": {"mode": "mix"},
                    "train": {"output_dir": str(tmp / "run"), "batch_size": args.batch}}
        rows = {}
        for cached in (False, True):
            sections["data"]["cache"] = cached
            start = time.perf_counter()
            training = AudioLdmTraining(build_run_config(LdmRunConfig, sections, "benchmark"))
            setup = time.perf_counter() - start
            rows["cached" if cached else "uncached"] = {"setup_seconds": setup,
                                                        "step_seconds": time_steps(training, args.steps)}
    result = {"batch": args.batch, "seconds": args.seconds, "steps": args.steps, "threads": torch.get_num_threads(),
              **rows, "speedup": rows["uncached"]["step_seconds"] / rows["cached"]["step_seconds"],
              "cache_build_seconds": rows["cached"]["setup_seconds"] - rows["uncached"]["setup_seconds"]}
    print(f"AudioLDM tiny UNet training, batch {args.batch} x {args.seconds:g} s, CPU, {result['threads']} threads")
    for name, row in rows.items():
        print(f"  {name:9s} {1 / row['step_seconds']:6.2f} steps/s ({row['step_seconds']:.3f} s/step)")
    print(f"  ratio (cached / uncached steps/s): {result['speedup']:.2f}")
    print(f"  building the cache ({len(training.loader.dataset)} clips): {result['cache_build_seconds']:.1f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
