"""AudioLDM UNet training-step cost of three offline layouts on the same batch, against the tiny UNet.

The offline AudioLDMs are compute-bound (README, Known limits), so what a CPU step buys matters:
  - tiny: `audioldm_cond.pipeline.tiny_unet`, the offline default (blocks 16/32, attention in the
    deeper block, as AudioLDM's CrossAttn blocks);
  - tiny, no attention: the same blocks as plain Down/UpBlock2D, which measures attention's share;
  - wide: blocks 32/64/64 with attention only at the lowest resolution (`model.unet: scratch` with
    the `unet_config` printed here).
Each step is forward, MSE backward and AdamW on random latents of the offline clip (4 s: 100 latent
frames x 16 latent mel bins, 8 channels) with a unit-norm 128-d condition. Prints (and writes as
JSON) seconds per step, parameters and the ratio to the tiny UNet.

    python benchmarks/unet_layouts.py [--batch 16] [--steps 5]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel

from audioldm_cond.pipeline import tiny_unet

from timing import seconds_per_step  # benchmarks/timing.py, next to this script

WIDTH, CHANNELS, FRAMES, MELS = 128, 8, 100, 16
CONDITION = dict(class_embed_type="simple_projection", projection_class_embeddings_input_dim=WIDTH,
                 class_embeddings_concat=True, in_channels=CHANNELS, out_channels=CHANNELS)
WIDE = dict(down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"), block_out_channels=(32, 64, 64),
            cross_attention_dim=64, layers_per_block=1, norm_num_groups=8, attention_head_dim=8)


def layouts() -> dict[str, UNet2DConditionModel]:
    torch.manual_seed(0)
    tiny = tiny_unet(WIDTH, CHANNELS)
    no_attention = UNet2DConditionModel(**{**tiny.config, "down_block_types": ("DownBlock2D",) * 2,
                                           "up_block_types": ("UpBlock2D",) * 2})
    return {"tiny": tiny, "tiny, no attention": no_attention, "wide": UNet2DConditionModel(**WIDE, **CONDITION)}


def time_steps(unet: UNet2DConditionModel, batch: int, steps: int) -> float:
    latents = torch.randn(batch, CHANNELS, FRAMES, MELS)
    target = torch.randn_like(latents)
    condition = F.normalize(torch.randn(batch, WIDTH), dim=-1)
    timesteps = torch.randint(0, 1000, (batch,))
    return seconds_per_step(unet.parameters(), lambda: F.mse_loss(
        unet(latents, timesteps, encoder_hidden_states=None, class_labels=condition).sample, target), steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/unet_layouts.json"))
    args = parser.parse_args()
    rows = {}
    for name, unet in layouts().items():
        seconds = time_steps(unet.train(), args.batch, args.steps)
        rows[name] = {"seconds_per_step": round(seconds, 4),
                      "parameters": sum(p.numel() for p in unet.parameters())}
    tiny = rows["tiny"]["seconds_per_step"]
    for name, row in rows.items():
        row["speed_vs_tiny"] = round(tiny / row["seconds_per_step"], 2)
        print(f"{name:20s} {row['seconds_per_step']:.3f} s/step  {row['parameters'] / 1e6:.2f} M parameters  "
              f"{row['speed_vs_tiny']:.2f}x the tiny UNet's speed")
    share = 1 - rows["tiny, no attention"]["seconds_per_step"] / tiny
    print(f"attention's share of the tiny UNet's step: {share:.0%}")
    print(f"wide layout (model.unet: scratch, model.unet_config): {json.dumps(WIDE)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"batch": args.batch, "steps": args.steps, "threads": torch.get_num_threads(),
                                    "layouts": rows, "attention_share": round(share, 3), "wide": WIDE}, indent=2))


if __name__ == "__main__":
    main()
