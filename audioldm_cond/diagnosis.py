"""Where a trained AudioLDM UNet stands, noise level by noise level, on held-out mixed-up clips.

The validation loss is one number over all timesteps; it fell steadily while the offline samples stayed
noise. This breaks it down: at each timestep t, how far the UNet's implied clean latent is from the
real one, with the clip's caption, with its order-swapped caption and with the "" caption. A UNet that
ignores its condition has the same error under all three; one that follows event order does worse
with the swapped caption. It also samples from pure noise once and reports the spread of the latents
it ends at, against the real latents' (a diverging sampler ends far from 1).

With `--reference` (the UNet's training clips) it also gives the most any UNet can gain from the caption
at the noisiest steps: there the best prediction of the clean latent is its mean given the caption, so
the errors of the per-event-order mean latents of the reference clips bound the three columns as
t -> T (`caption_mean_errors`).

    tclap diagnose --pipeline results/offline/audioldm_v_tclap/pipeline --mixup results/offline/mixup \
        [--reference results/offline/mixup_ldm]
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


def split_records(mixup_dir: str | Path, split: str, clips: int) -> list[dict]:
    """The manifest records of a split's first `clips` mixed-up clips; DataError if there are none."""
    mixup_dir = Path(mixup_dir)
    records = [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == split][:clips]
    if not records:
        raise DataError(f"{mixup_dir / MANIFEST}: no clips in split {split!r}")
    return records


def clip_audio(mixup_dir: str | Path, records: list[dict]) -> torch.Tensor:
    """(B, L) the records' clips at 16 kHz, cut to the shortest."""
    audio = [load_audio(Path(mixup_dir) / r["audio"], 16000) for r in records]
    length = min(len(a) for a in audio)
    return torch.from_numpy(np.stack([a[:length] for a in audio]))


def event_order(events: list[dict]) -> tuple[str, ...]:
    """What a caption of the clip states: its event labels, in the order they sound."""
    return tuple(e["label"] for e in events)


def caption_mean_errors(latents: torch.Tensor, orders: list[tuple[str, ...]], swapped: list[tuple[str, ...]],
                        reference: torch.Tensor, reference_orders: list[tuple[str, ...]]) -> dict:
    """Clean-latent errors of the best predictor that sees only the caption, the limit of any UNet as t -> T.

    At the noisiest steps the noisy latent says almost nothing, and the prediction that minimises the
    clean-latent error is the mean latent given the caption (its event order). Estimated from reference
    clips (the UNet's training set): each held-out latent is predicted by the mean reference latent of
    its own event order (`x0_mse`), of its swapped order (`x0_mse_swapped`) and of all reference clips
    (`x0_mse_unconditional`, the "" caption). Each mean of n clips adds about 1/n of the spread to its
    error, which the `x0_mse_swapped` / `x0_mse` ratio mostly cancels.

    Args:
        latents: (B, C, t, f) held-out clean latents.
        orders, swapped: each held-out clip's event order and its swapped order.
        reference: (N, C, t, f) reference clean latents, scaled as `latents`.
        reference_orders: their event orders.

    Returns: the three errors over the held-out clips both of whose orders occur in the reference, their
    number `clips`, and `min_reference_clips`, the fewest reference clips behind one of the means used.

    Raises:
        DataError: no held-out clip has both of its orders in the reference, or the latent shapes differ.
    """
    if latents.shape[1:] != reference.shape[1:]:
        raise DataError(f"reference: latents of shape {tuple(reference.shape[1:])}, the held-out clips' are "
                        f"{tuple(latents.shape[1:])} (clips of another length?)")
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, order in enumerate(reference_orders):
        groups.setdefault(order, []).append(i)
    means = {order: reference[index].mean(0) for order, index in groups.items()}
    kept = [i for i, (a, b) in enumerate(zip(orders, swapped)) if a in means and b in means]
    if not kept:
        raise DataError("reference: none of the held-out clips' event orders (and their swaps) occurs in it")

    def error(predictions: list[torch.Tensor]) -> float:
        return float(torch.stack([((latents[i] - p) ** 2).mean() for i, p in zip(kept, predictions)]).mean())

    return {"x0_mse": error([means[orders[i]] for i in kept]),
            "x0_mse_swapped": error([means[swapped[i]] for i in kept]),
            "x0_mse_unconditional": error([reference.mean(0)] * len(kept)),
            "clips": len(kept), "min_reference_clips": min(len(groups[o]) for i in kept for o in (orders[i], swapped[i]))}


@torch.no_grad()
def encoded(pipe: AudioLDMPipeline, mixup_dir: str | Path, records: list[dict], batch: int = 64) -> torch.Tensor:
    """(B, C, t, f) clean latents of the records' clips, scaled by the VAE's scaling factor, `batch` at a time.

    Clips of different lengths (a folder `tclap mixup` did not write) are cut to the shortest: within a
    batch as audio (`clip_audio`), across batches as latent frames, so t is the shortest clip's.
    """
    parts = [clip_latents(pipe, clip_audio(mixup_dir, records[i:i + batch])) for i in range(0, len(records), batch)]
    frames = min(part.shape[2] for part in parts)
    return torch.cat([part[:, :, :frames] for part in parts]) * pipe.vae.config.scaling_factor


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
             timesteps: tuple[int, ...] = TIMESTEPS, seed: int = 0, reference: str | Path | None = None,
             reference_split: str = "train", reference_clips: int = 4000) -> dict:
    """The table rows and latent spreads of one pipeline on `clips` clips of a mixed-up split, and with
    `reference` (a mixed-up folder) the caption-mean bound of its first `reference_clips` clips of
    `reference_split` (`caption_mean_errors`, key `caption_means`)."""
    pipe = load_pipeline(pipeline)
    records = split_records(mixup_dir, split, clips)
    captions, swapped = [r["caption"] for r in records], [r["neg_caption"] for r in records]
    latents = encoded(pipe, mixup_dir, records)
    frames = latents.shape[2] * vae_downsampling(pipe.vae)
    result = {"pipeline": str(pipeline), "clips": len(captions),
              "timesteps": [asdict(r) for r in timestep_errors(pipe, latents, captions, swapped, timesteps, seed)],
              "real_latent_std": float(latents.std()),
              "sampled_latent_std": sampled_latent_std(pipe, captions, frames, seed=seed)}
    if reference is not None:
        known = split_records(reference, reference_split, reference_clips)
        result["caption_means"] = {
            "reference": str(reference), "reference_clips": len(known),
            **caption_mean_errors(latents, [event_order(r["events"]) for r in records],
                                  [event_order(r["neg_events"]) for r in records],
                                  encoded(pipe, reference, known), [event_order(r["events"]) for r in known])}
    return result


def table(result: dict) -> str:
    """Markdown: one column per timestep."""
    rows = result["timesteps"]
    lines = ["| t | " + " | ".join(str(r["timestep"]) for r in rows) + " |", "|---" * (len(rows) + 1) + "|"]
    for key, label in (("target_mse", "target MSE"), ("x0_mse", "x0-MSE, caption"),
                       ("x0_mse_swapped", "x0-MSE, swapped caption"), ("x0_mse_unconditional", 'x0-MSE, ""')):
        lines.append(f"| {label} | " + " | ".join(f"{r[key]:.3g}" for r in rows) + " |")
    text = "\n".join(lines) + (f"\n\nDDIM from noise ends at latent std {result['sampled_latent_std']:.2f} "
                               f"(real latents: {result['real_latent_std']:.2f}).")
    if "caption_means" in result:
        m = result["caption_means"]

        def versus(key: str) -> str:
            return f"{m[key]:.3g}" + (f" ({100 * (m[key] / m['x0_mse'] - 1):+.1f} %)" if m["x0_mse"] > 0 else "")

        text += (f"\n\nBest possible as t -> T (the mean latent of each event order over {m['reference_clips']} "
                 f"reference clips, at least {m['min_reference_clips']} per order; {m['clips']} held-out clips): "
                 f"x0-MSE {m['x0_mse']:.3g} with the caption, {versus('x0_mse_swapped')} swapped, "
                 f'{versus("x0_mse_unconditional")} with "".')
    return text


def main(argv: list[str] | None = None) -> None:
    """`tclap diagnose --pipeline DIR --mixup DIR [--clips 16] [--reference DIR] [--json out.json]`."""
    parser = argparse.ArgumentParser(description="Per-noise-level errors of an AudioLDM UNet on held-out clips.")
    parser.add_argument("--pipeline", required=True, help="pipeline directory (train_audioldm.py output)")
    parser.add_argument("--mixup", required=True, help="mixed-up clip folder (tclap mixup output)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--timesteps", type=int, nargs="+", default=list(TIMESTEPS))
    parser.add_argument("--reference", help="mixed-up folder of the UNet's training clips: also report the "
                        "best possible errors as t -> T, from its per-event-order mean latents")
    parser.add_argument("--reference-split", default="train")
    parser.add_argument("--reference-clips", type=int, default=4000, help="first N clips of --reference-split")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    try:
        result = diagnose(args.pipeline, args.mixup, args.split, args.clips, tuple(args.timesteps),
                          reference=args.reference, reference_split=args.reference_split,
                          reference_clips=args.reference_clips)
    except DataError as error:
        parser.exit(2, f"diagnose: error: {error}\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(table(result))
