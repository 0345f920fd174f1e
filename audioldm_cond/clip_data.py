"""The clips the AudioLDM trainers read, and the log-mel image their VAE sees.

The VAE and the latent diffusion model learn from audio and its caption alone: the train split of
a mixed-up clip folder (its order-swapped negatives are not used here) and any audio-caption
manifests. Validation reads the mixed-up val split, or a manifest, cropped from the start.
A clip becomes a (B, 1, frames, 64) log-mel image with `frames` a multiple of the VAE's
downsampling, which is also the length AudioLDMPipeline generates for the same number of seconds.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from audioldm_cond.mel import LOG_FLOOR, AudioLdmMel
from tclap.data.datasets import (AudioTextCollator, AudioWindow, CaptionPairs, EpochConcatDataset, MixupClips,
                                 without_fields)
from tclap.errors import DataError


@dataclass
class ClipDataConfig:
    mixup: str | None = None                            # mixed-up clip folder: train split trains, val split validates
    captions: list[str] = field(default_factory=list)   # audio-caption manifests (CSV / JSONL: audio, caption)
    validation: str | None = None                       # mixed-up folder (val split) or manifest; default: mixup
    seconds: float = 4.0                                # clip length in training and validation
    val_clips: int = 200                                # validation uses the first ones


class Clips(EpochConcatDataset):
    """The clip datasets of an AudioLDM run as one; `set_epoch` reaches each, so random crops change per epoch."""


def manifest_clips(clips: Clips) -> int:
    """How many of `training_clips`'s clips come from the caption manifests (they come first)."""
    return sum(len(d) for d in clips.datasets if isinstance(d, CaptionPairs))


def training_clips(cfg: ClipDataConfig, sample_rate: int, seed: int, train: bool = True) -> Clips:
    """All training clips: the mixed-up train split and the caption manifests.

    Args:
        cfg: data section.
        sample_rate: rate the audio is decoded at (the mel front end's).
        seed: random-crop seed.
        train: random crops (True) or crops from the start (False, e.g. for a cache).
    """
    window = AudioWindow(sample_rate, cfg.seconds, train=train)
    sources = [CaptionPairs(path, window, positive_only=True, seed=seed) for path in cfg.captions]
    if cfg.mixup:
        sources.append(MixupClips(cfg.mixup, "train", window, seed=seed))
    if not sources:
        raise DataError("data: no training clips (set data.mixup or data.captions)")
    return Clips([without_fields(s, "neg_caption", "neg_audio") for s in sources])  # audio and caption only


def validation_clips(cfg: ClipDataConfig, sample_rate: int) -> Dataset:
    """The first `val_clips` validation clips, cropped from the start.

    Args:
        cfg: data section (`validation`, else the val split of `mixup`).
        sample_rate: rate the audio is decoded at.
    """
    source = cfg.validation or cfg.mixup
    if source is None:
        raise DataError("data: nothing to validate on (set data.validation or data.mixup)")
    window = AudioWindow(sample_rate, cfg.seconds, train=False)
    dataset = MixupClips(source, "val", window) if Path(source).is_dir() else CaptionPairs(source, window)
    dataset = without_fields(dataset, "neg_caption", "neg_audio")
    dataset.rows = dataset.rows[:cfg.val_clips]
    return dataset


def clip_loader(dataset: Dataset, batch_size: int, seed: int = 0, num_workers: int = 0, shuffle: bool = True,
                collate: Callable | None = AudioTextCollator()) -> DataLoader:
    """Batches of clips (`audio` (B, L), `captions`); shuffled reproducibly from `seed`.

    Args:
        dataset: clips (or, with `collate=None`, samples of equal-shaped tensors).
        batch_size: clips per batch (training drops the last partial batch).
        seed: shuffling seed, kept out of the global RNG so a resumed run sees the same order.
        num_workers: DataLoader workers.
        shuffle: training order (True) or dataset order with a final partial batch (False).
        collate: batch builder; None stacks tensors (torch's default).
    """
    if shuffle and len(dataset) < batch_size:
        raise DataError(f"data: {len(dataset)} training clips cannot fill one batch of {batch_size}")
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=shuffle, collate_fn=collate,
                      generator=torch.Generator().manual_seed(seed), num_workers=num_workers)


def require_audio(batch: dict) -> torch.Tensor:
    """The batch's (B, L) audio; unreadable clips stop the run with their reasons."""
    if batch["skipped"]:
        raise DataError(f"unreadable clip(s): {batch['skipped'][:3]}")
    return batch["audio"]


def mel_frames(seconds: float, mel: AudioLdmMel, downsampling: int) -> int:
    """Mel frames for `seconds` of audio, rounded up to a multiple of the VAE's downsampling, as
    AudioLDMPipeline rounds a requested length.

    Args:
        seconds: clip length.
        mel: the front end (its hop and rate).
        downsampling: the VAE's total downsampling (AudioLDM: 4).
    """
    frames = int(seconds * mel.config.sample_rate / mel.config.hop_length)
    return int(math.ceil(frames / downsampling)) * downsampling


def mel_image(mel: AudioLdmMel, audio: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, L) waveforms -> (B, 1, frames, n_mels) log-mel, cropped at the end or padded with silence.

    Args:
        mel: the AudioLDM front end.
        audio: waveforms at the front end's rate.
        frames: time frames of the image (see `mel_frames`).
    """
    log_mel = mel(audio)[:, :frames]  # (B, T, n_mels); T = L // hop + 1
    missing = frames - log_mel.shape[1]
    if missing > 0:
        log_mel = torch.nn.functional.pad(log_mel, (0, 0, 0, missing), value=math.log(LOG_FLOOR))
    return log_mel.unsqueeze(1)


def vae_downsampling(vae) -> int:
    """Total downsampling of an AutoencoderKL, computed as AudioLDMPipeline does."""
    return 2 ** (len(vae.config.block_out_channels) - 1)
