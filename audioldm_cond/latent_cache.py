"""Encode the training clips once (VAE posteriors, CLAP embeddings) and train from the stored numbers.

Uncached, every step decodes audio, computes log-mels and runs the frozen VAE encoder and the frozen
CLAP, which give the same numbers every epoch but for the random crop. The cache computes them once
per clip from the window at the start of the clip: the trade-off is that a clip longer than
`data.seconds` always shows the same window (no random crops). It keeps the VAE posterior (mean and
log-variance), not one sample of it, so latents are still drawn afresh at each step. Everything sits
in one torch file, held in memory while training: 2 x channels x frames/4 x 16 floats per clip
(100 kB for a 4-s clip with 8 latent channels) plus the embeddings, fine for tens of thousands of clips.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import PartialState
from torch import Tensor
from torch.utils.data import Dataset
from tqdm import tqdm

from audioldm_cond.clip_data import Clips, clip_loader, require_audio


class FeatureCache(Dataset):
    """Stored per-clip features; item i is `{name: tensor[i]}`.

    Args:
        features: equal-length tensors, e.g. latent_params (N, 2C, t, f), text_embeds (N, D).
    """

    def __init__(self, features: dict[str, Tensor]):
        self.features = features

    def __len__(self) -> int:
        return len(next(iter(self.features.values())))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {name: values[index] for name, values in self.features.items()}


def fingerprint(module: torch.nn.Module) -> float:
    """A number that changes when the weights do: a cache made with other weights is not reused."""
    with torch.no_grad():
        return float(sum(p.double().sum() for p in module.parameters()))


def build_features(encode: Callable[[Tensor, list[str]], dict[str, Tensor]], clips: Clips,
                   batch_size: int) -> dict[str, Tensor]:
    """Run `encode` over all clips in order; results on the CPU.

    Args:
        encode: (audio (B, L), captions) -> {name: (B, ...) tensor}, deterministic.
        clips: clips cropped from the start (`training_clips(..., train=False)`).
        batch_size: clips per encoder call.
    """
    parts: dict[str, list[Tensor]] = {}
    for batch in tqdm(clip_loader(clips, batch_size, shuffle=False), desc="cache", unit="batch"):
        for name, values in encode(require_audio(batch), batch["captions"]).items():
            parts.setdefault(name, []).append(values.cpu())
    return {name: torch.cat(values) for name, values in parts.items()}


def load_or_build(path: str | Path, encode: Callable[[Tensor, list[str]], dict[str, Tensor]], clips: Clips,
                  batch_size: int, meta: dict) -> FeatureCache:
    """The cache at `path` when it was made with `meta`; otherwise build it there (main process first).

    Args:
        path: the torch file.
        encode: see `build_features`.
        clips: the training clips, cropped from the start.
        batch_size: clips per encoder call while building.
        meta: what the features depend on (clip ids, seconds, weights fingerprints, condition mode).
    """
    path, state = Path(path), PartialState()
    with state.main_process_first():
        if path.is_file():
            stored = torch.load(path, map_location="cpu")
            if stored["meta"] == meta:
                return FeatureCache(stored["features"])
            state.print(f"{path}: made for other clips, weights or settings; rebuilding")
        features = build_features(encode, clips, batch_size)
        if state.is_main_process:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"meta": meta, "features": features}, path)
    return FeatureCache(features)
