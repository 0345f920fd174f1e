"""AudioLDM UNet training throughput of the offline layouts, against the old tiny UNet, in one run.

The offline AudioLDMs are compute-bound (docs/known_limits.md), so what a CPU step buys matters.
Each row changes one thing from the row above, so the ratios say what each change bought:
  - tiny on 4x latents: `audioldm_cond.pipeline.tiny_unet` (blocks 16/32, attention in the deeper
    block, as AudioLDM's CrossAttn blocks) on the 4x VAE's latents of a 4-s clip (8 x 100 x 16), the
    offline default until 2026-11;
  - tiny, no attention: the same blocks as plain Down/UpBlock2D, which measures attention's share;
  - offline layout on 4x latents: the UNet of `configs/audioldm/offline.yaml` (built by the trainer's
    own `build_unet`), attention only at its lowest resolution;
  - offline layout on 8x latents: the same UNet on the 8x VAE's latents (8 x 50 x 8), the offline
    default now (`configs/audioldm/vae_offline.yaml`, `model.downsampling: 8`);
  - the same under bf16 autocast (`train.mixed_precision: bf16`): what bf16 would add. The shipped
    offline UNets were trained in fp32, so this row is a measurement of the option, not of them.
Each step is forward, MSE backward and AdamW on random latents with a unit-norm 128-d condition.
The layouts are timed in `--rounds` interleaved rounds (each round times every layout once, starting
one layout further on each round), and each ratio is taken within its round, so a change of machine
load between rounds moves numerator and denominator together; the printed ratio is the median over
rounds, with its range. Prints (and
writes as JSON) seconds per step, training samples per second, parameters and the speed ratio to
the tiny UNet.

    python benchmarks/unet_layouts.py [--batch 32] [--steps 5] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel

from audioldm_cond.ldm_training import LdmModelConfig, build_unet
from audioldm_cond.pipeline import tiny_unet
from tclap.config import load_yaml

from timing import seconds_per_step  # benchmarks/timing.py, next to this script

WIDTH, CHANNELS = 128, 8
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "audioldm" / "offline.yaml"
LATENTS_4X, LATENTS_8X = (100, 16), (50, 8)  # (frames, mel bins) of a 4-s clip's latents


def offline_unet() -> UNet2DConditionModel:
    """The UNet the offline config trains, built as train_audioldm.py builds it."""
    model = load_yaml(CONFIG)["model"]
    return build_unet(LdmModelConfig(unet=model["unet"], unet_config=model.get("unet_config", {})), WIDTH,
                      CHANNELS, seed=0)


def layouts() -> dict[str, tuple[UNet2DConditionModel, tuple[int, int], bool]]:
    """Name -> (UNet, latent frames x mel bins, bf16 autocast)."""
    torch.manual_seed(0)
    tiny = tiny_unet(WIDTH, CHANNELS)
    no_attention = UNet2DConditionModel(**{**tiny.config, "down_block_types": ("DownBlock2D",) * 2,
                                           "up_block_types": ("UpBlock2D",) * 2})
    offline = offline_unet()
    return {"tiny, 4x latents": (tiny, LATENTS_4X, False),
            "tiny, no attention, 4x latents": (no_attention, LATENTS_4X, False),
            "offline layout, 4x latents": (offline, LATENTS_4X, False),
            "offline layout, 8x latents": (offline, LATENTS_8X, False),
            "offline layout, 8x, bf16 autocast": (offline, LATENTS_8X, True)}


def time_steps(unet: UNet2DConditionModel, shape: tuple[int, int], batch: int, steps: int, bf16: bool) -> float:
    latents = torch.randn(batch, CHANNELS, *shape)
    target = torch.randn_like(latents)
    condition = F.normalize(torch.randn(batch, WIDTH), dim=-1)
    timesteps = torch.randint(0, 1000, (batch,))

    def loss() -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # as accelerate's mixed_precision does
            prediction = unet(latents, timesteps, encoder_hidden_states=None, class_labels=condition).sample
        return F.mse_loss(prediction.float(), target)

    return seconds_per_step(unet.parameters(), loss, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32, help="the shipped offline recipe's batch")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per layout and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (at least 1)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/unet_layouts.json"))
    args = parser.parse_args()
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps: at least 1")
    models = {name: (unet.train(), shape, bf16) for name, (unet, shape, bf16) in layouts().items()}
    names = list(models)
    seconds = {name: [] for name in models}
    for round_ in range(args.rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            unet, shape, bf16 = models[name]
            seconds[name].append(time_steps(unet, shape, args.batch, args.steps, bf16))
    tiny = seconds["tiny, 4x latents"]
    rows = {}
    for name, (unet, shape, _) in models.items():
        ratios = [t / s for t, s in zip(tiny, seconds[name])]
        median = statistics.median(seconds[name])
        rows[name] = {"latents": [CHANNELS, *shape], "seconds_per_step": round(median, 4),
                      "seconds_per_step_by_round": [round(s, 4) for s in seconds[name]],
                      "samples_per_second": round(args.batch / median, 1),
                      "parameters": sum(p.numel() for p in unet.parameters()),
                      "speed_vs_tiny": round(statistics.median(ratios), 2),
                      "speed_vs_tiny_range": [round(min(ratios), 2), round(max(ratios), 2)]}
        low, high = rows[name]["speed_vs_tiny_range"]
        print(f"{name:34s} {median:.3f} s/step  {rows[name]['samples_per_second']:6.1f} samples/s  "
              f"{rows[name]['parameters'] / 1e6:.2f} M parameters  {rows[name]['speed_vs_tiny']:.2f}x the tiny "
              f"UNet's speed (rounds: {low:.2f}-{high:.2f}x)")
    share = 1 - statistics.median(s / t for s, t in zip(seconds["tiny, no attention, 4x latents"], tiny))
    print(f"attention's share of the tiny UNet's step: {share:.0%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"batch": args.batch, "steps": args.steps, "rounds": args.rounds,
                                    "threads": torch.get_num_threads(), "layouts": rows,
                                    "attention_share": round(share, 3)}, indent=2))


if __name__ == "__main__":
    main()
