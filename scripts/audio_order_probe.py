"""Can a CLAP audio tower learn event order at all, told directly? A diagnostic for the L_t plateau.

T-CLAP's temporal loss needs both towers to tell a clip from its order-swapped twin. This probe takes
the text tower out of the question: it trains the audio tower (with its projection and a linear head)
by plain binary cross-entropy to say which of a clip's two events comes first, on the mixed-up clips
and their swapped twins (label: does the alphabetically first class play first). A tower that can
represent order learns this quickly; one that stays at 50 % cannot yet, whatever the loss.

    python scripts/audio_order_probe.py --model results/offline/seed0/baseline/final \
        --mixup results/offline/mixup [--steps 600] [--lr 3e-4] [--bias-lr-multiplier 30]
        [--fresh '{"num_mel_bins": 64, "spec_size": 64}' --hop-length 1024]

`--fresh` replaces the tower by a randomly initialised one with those `ClapAudioConfig` changes
(e.g. 64 mel bins and spec_size 64, so HTSAT does not fold time into the frequency axis). Prints the
validation accuracy (%) every 100 steps, on the validation split's clips and their twins.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python scripts/audio_order_probe.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import ClapConfig, ClapFeatureExtractor, ClapModel  # noqa: E402

from tclap.audio import load_audio  # noqa: E402
from tclap.data.mixup import MANIFEST, read_manifest  # noqa: E402
from tclap.features import ClapLogMel  # noqa: E402
from tclap.model import ClapEncoder, load_clap  # noqa: E402

BATCH = 40


def order_set(mixup: Path, split: str, sample_rate: int, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Waveforms (2N, samples) of the split's clips and their swapped twins, and labels (2N,): 1 when the
    alphabetically first class plays first."""
    audio, labels = [], []
    for record in read_manifest(mixup / MANIFEST):
        if record["split"] != split or record["n_events"] != 2:
            continue
        first, second = (e["category"] for e in record["events"])
        label = int(first < second)
        for path, y in ((record["audio"], label), (record["neg_audio"], 1 - label)):
            audio.append(load_audio(mixup / path, sample_rate)[:samples])
            labels.append(y)
    return torch.from_numpy(np.stack(audio)), torch.tensor(labels)


def fresh_tower(encoder: ClapEncoder, changes: dict, hop_length: int) -> None:
    """Replace `encoder`'s model by a random one whose audio config has `changes`, with a matching front end."""
    config = encoder.model.config
    audio = {**config.audio_config.to_dict(), **changes}
    encoder.model = ClapModel(ClapConfig(text_config=config.text_config.to_dict(), audio_config=audio,
                                         projection_dim=config.projection_dim))
    extractor = ClapFeatureExtractor(sampling_rate=encoder.sample_rate, feature_size=audio["num_mel_bins"],
                                     fft_window_size=1024, hop_length=hop_length, max_length_s=encoder.window
                                     // encoder.sample_rate, frequency_min=0, frequency_max=encoder.sample_rate // 2,
                                     truncation="rand_trunc", padding="repeatpad")
    encoder.front_end = ClapLogMel.from_feature_extractor(extractor)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="CLAP checkpoint directory")
    parser.add_argument("--mixup", type=Path, required=True, help="mixed-up clip folder (train and val splits)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--bias-lr-multiplier", type=float, default=1.0,
                        help="lr factor for HTSAT's relative position bias tables")
    parser.add_argument("--fresh", type=json.loads, help="JSON of ClapAudioConfig changes for a random tower")
    parser.add_argument("--hop-length", type=int, default=512, help="front-end hop of a --fresh tower")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    encoder = ClapEncoder(*load_clap(args.model))
    if args.fresh:
        fresh_tower(encoder, args.fresh, args.hop_length)
    train = order_set(args.mixup, "train", encoder.sample_rate, encoder.window)
    val = order_set(args.mixup, "val", encoder.sample_rate, encoder.window)
    model = encoder.model
    head = torch.nn.Linear(model.config.projection_dim, 1)
    named = list(model.audio_model.named_parameters()) + list(model.audio_projection.named_parameters())
    bias = [p for n, p in named if "relative_position_bias_table" in n]
    rest = [p for n, p in named if "relative_position_bias_table" not in n] + list(head.parameters())
    optimizer = torch.optim.AdamW([{"params": rest, "lr": args.lr},
                                   {"params": bias, "lr": args.lr * args.bias_lr_multiplier}])

    def logits(audio: torch.Tensor) -> torch.Tensor:
        features = encoder.front_end(audio)
        return head(model.audio_projection(model.audio_model(**features).pooler_output)).squeeze(1)

    generator = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        batch = torch.randint(len(train[1]), (BATCH,), generator=generator)
        loss = F.binary_cross_entropy_with_logits(logits(train[0][batch]), train[1][batch].float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == args.steps:
            with torch.no_grad():
                right = sum(int(((logits(val[0][i:i + 100]) > 0).long() == val[1][i:i + 100]).sum())
                            for i in range(0, len(val[1]), 100))
            print(json.dumps({"step": step, "train_loss": round(loss.item(), 4),
                              "val_accuracy": round(100 * right / len(val[1]), 1)}), flush=True)


if __name__ == "__main__":
    main()
