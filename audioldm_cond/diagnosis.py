"""Where a trained AudioLDM UNet stands, noise level by noise level, on held-out mixed-up clips.

The validation loss is one number over all timesteps; it fell steadily while the offline samples stayed
noise. This breaks it down: at each timestep t, how far the UNet's implied clean latent is from the
real one, with the clip's caption, with its order-swapped caption and with the "" caption. A UNet that
ignores its condition has the same error under all three; one that follows event order does worse
with the swapped caption. It also samples from pure noise once and reports the spread of the latents
it ends at, against the real latents' (a diverging sampler ends far from 1).

    tclap diagnose --pipeline results/offline/audioldm_v_tclap/pipeline --mixup results/offline/mixup
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AudioLDMPipeline

from audioldm_cond.clip_data import vae_downsampling
from audioldm_cond.encoders import caption_embeds
from audioldm_cond.pipeline import clip_latents, load_pipeline
from tclap.audio import load_audio
from tclap.data.mixup import MANIFEST, read_manifest
from tclap.errors import DataError

TIMESTEPS = (10, 100, 300, 600, 900, 980, 999)


@dataclass
class TimestepErrors:
    timestep: int
    target_mse: float             # what training minimises: the eps or v error
    x0_mse: float                 # clean-latent error, conditioned on the clip's own caption
    x0_mse_swapped: float         # ... on its order-swapped caption
    x0_mse_unconditional: float   # ... on the "" caption


def clean_latent(noisy: torch.Tensor, prediction: torch.Tensor, alpha_bar: torch.Tensor,
                 prediction_type: str) -> torch.Tensor:
    """The clean latent the UNet's output implies at a noise level with cumulative alpha `alpha_bar`."""
    if prediction_type == "epsilon":
        return (noisy - (1 - alpha_bar).sqrt() * prediction) / alpha_bar.sqrt()
    if prediction_type == "v_prediction":
        return alpha_bar.sqrt() * noisy - (1 - alpha_bar).sqrt() * prediction
    raise DataError(f"scheduler prediction_type {prediction_type!r}: expected epsilon or v_prediction")


def held_out_clips(mixup_dir: str | Path, split: str, clips: int) -> tuple[torch.Tensor, list[str], list[str]]:
    """The split's first `clips` mixed-up clips at 16 kHz, with their captions and order-swapped captions."""
    mixup_dir = Path(mixup_dir)
    records = [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == split][:clips]
    if not records:
        raise DataError(f"{mixup_dir / MANIFEST}: no clips in split {split!r}")
    audio = [load_audio(mixup_dir / r["audio"], 16000) for r in records]
    length = min(len(a) for a in audio)
    return (torch.from_numpy(np.stack([a[:length] for a in audio])), [r["caption"] for r in records],
            [r["neg_caption"] for r in records])


@torch.no_grad()
def timestep_errors(pipe: AudioLDMPipeline, latents: torch.Tensor, captions: list[str], swapped: list[str],
                    timesteps: tuple[int, ...] = TIMESTEPS, seed: int = 0) -> list[TimestepErrors]:
    """Per-timestep errors of `pipe.unet` on clean `latents` (already scaled by the VAE's scaling factor).

    Args:
        pipe: the pipeline (its scheduler's training schedule and prediction type are used).
        latents: (B, C, t, f) clean latents.
        captions: each latent's caption.
        swapped: each caption with its events in the other order.
        timesteps: noise levels to probe.
        seed: fixes the noise, drawn on the CPU; the same noise for all three conditions.
    """
    scheduler, kind = pipe.scheduler, pipe.scheduler.config.prediction_type
    embeds = [caption_embeds(pipe.text_encoder, pipe.tokenizer, texts)  # the x0 columns, in TimestepErrors order
              for texts in (captions, swapped, [""] * len(captions))]
    generator, rows = torch.Generator().manual_seed(seed), []
    for t in timesteps:
        noise = torch.randn(latents.shape, generator=generator)
        steps = torch.full((len(latents),), t)
        noisy = scheduler.add_noise(latents, noise, steps)
        alpha_bar = scheduler.alphas_cumprod[t]
        target = noise if kind == "epsilon" else scheduler.get_velocity(latents, noise, steps)
        predictions = [pipe.unet(noisy, steps, encoder_hidden_states=None, class_labels=embed).sample
                       for embed in embeds]
        x0_errors = [float(((clean_latent(noisy, p, alpha_bar, kind) - latents) ** 2).mean()) for p in predictions]
        rows.append(TimestepErrors(t, float(((predictions[0] - target) ** 2).mean()), *x0_errors))
    return rows


@torch.no_grad()
def sampled_latent_std(pipe: AudioLDMPipeline, captions: list[str], frames: int, steps: int = 20,
                       guidance_scale: float = 2.5, seed: int = 0) -> float:
    """Std of the latents DDIM ends at from pure noise (the real latents' std is about 1 after scale-by-std)."""
    final = {}

    def keep(step: int, timestep: int, latents: torch.Tensor) -> None:
        final["latents"] = latents  # the pipeline calls back after each step; the last call is the output

    samples_per_frame = float(np.prod(pipe.vocoder.config.upsample_rates))
    pipe.set_progress_bar_config(disable=True)
    pipe(captions, audio_length_in_s=frames * samples_per_frame / pipe.vocoder.config.sampling_rate,
         num_inference_steps=steps, guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(seed),
         callback=keep, callback_steps=1)
    return float(final["latents"].std())


def diagnose(pipeline: str | Path, mixup_dir: str | Path, split: str = "test", clips: int = 16,
             timesteps: tuple[int, ...] = TIMESTEPS, seed: int = 0) -> dict:
    """The table rows and latent spreads of one pipeline on `clips` clips of a mixed-up split."""
    pipe = load_pipeline(pipeline)
    audio, captions, swapped = held_out_clips(mixup_dir, split, clips)
    latents = clip_latents(pipe, audio) * pipe.vae.config.scaling_factor
    frames = latents.shape[2] * vae_downsampling(pipe.vae)
    return {"pipeline": str(pipeline), "clips": len(captions),
            "timesteps": [asdict(r) for r in timestep_errors(pipe, latents, captions, swapped, timesteps, seed)],
            "real_latent_std": float(latents.std()),
            "sampled_latent_std": sampled_latent_std(pipe, captions, frames, seed=seed)}


def table(result: dict) -> str:
    """Markdown: one column per timestep."""
    rows = result["timesteps"]
    lines = ["| t | " + " | ".join(str(r["timestep"]) for r in rows) + " |", "|---" * (len(rows) + 1) + "|"]
    for key, label in (("target_mse", "target MSE"), ("x0_mse", "x0-MSE, caption"),
                       ("x0_mse_swapped", "x0-MSE, swapped caption"), ("x0_mse_unconditional", 'x0-MSE, ""')):
        lines.append(f"| {label} | " + " | ".join(f"{r[key]:.3g}" for r in rows) + " |")
    return "\n".join(lines) + (f"\n\nDDIM from noise ends at latent std {result['sampled_latent_std']:.2f} "
                               f"(real latents: {result['real_latent_std']:.2f}).")


def main(argv: list[str] | None = None) -> None:
    """`tclap diagnose --pipeline DIR --mixup DIR [--clips 16] [--json out.json]`."""
    parser = argparse.ArgumentParser(description="Per-noise-level errors of an AudioLDM UNet on held-out clips.")
    parser.add_argument("--pipeline", required=True, help="pipeline directory (train_audioldm.py output)")
    parser.add_argument("--mixup", required=True, help="mixed-up clip folder (tclap mixup output)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--timesteps", type=int, nargs="+", default=list(TIMESTEPS))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    try:
        result = diagnose(args.pipeline, args.mixup, args.split, args.clips, tuple(args.timesteps))
    except DataError as error:
        parser.exit(2, f"diagnose: error: {error}\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(table(result))
