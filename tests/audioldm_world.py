"""A tiny world for the AudioLDM trainer tests: a small CLAP and a small VAE saved as directories,
and run configs over the shared mixed-up clips (tests/conftest.py), with 1-s clips to stay fast."""
from __future__ import annotations

from pathlib import Path

import torch
import yaml

from audioldm_cond.pipeline import tiny_vae
from audioldm_cond.vocoder import GriffinLimVocoder
from tclap.data.mixup import MANIFEST, read_manifest
from tclap.model import ModelConfig, build_tiny, save_clap

WIDTH = 32  # the tiny CLAP's projection width


def save_tiny_clap(mixup_dir: Path, out: Path, seed: int = 0) -> Path:
    """A random small CLAP whose tokenizer knows the mixed-up captions."""
    captions = [r["caption"] for r in read_manifest(mixup_dir / MANIFEST)]
    model, processor = build_tiny(ModelConfig(projection_dim=WIDTH, vocab_size=300), captions, seed=seed)
    return save_clap(model, processor, out, {"made_by": "test"})


def save_tiny_vae(out: Path, scaling_factor: float = 0.5) -> Path:
    """An untrained tiny VAE with a set scaling factor: enough for the UNet trainer's plumbing."""
    torch.manual_seed(0)
    vae = tiny_vae()
    vae.register_to_config(scaling_factor=scaling_factor)
    vae.save_pretrained(out)
    return out


def save_quick_vocoder(out: Path) -> Path:
    """A Griffin-Lim vocoder with 2 iterations: sample generation in tests costs little."""
    GriffinLimVocoder(n_iter=2).save_pretrained(out)
    return out


def write_config(path: Path, sections: dict) -> Path:
    path.write_text(yaml.safe_dump(sections))
    return path


def ldm_sections(output_dir: Path, mixup_dir: Path, clap_dir: Path, vae_dir: Path, vocoder_dir: Path,
                 **overrides: dict) -> dict:
    """A run config for train_audioldm.py: 1-s clips, batch 4, a few steps; `overrides` merge per section."""
    sections = {
        "model": {"cond": "tclap", "clap": str(clap_dir), "tclap": str(clap_dir), "vae": str(vae_dir),
                  "unet": "tiny", "vocoder": str(vocoder_dir)},
        "data": {"mixup": str(mixup_dir), "seconds": 1.0, "val_clips": 4},
        "condition": {"mode": "mix", "audio_probability": 0.5, "cfg_drop": 0.1},
        "samples": {"prompts": [], "steps": 2, "guidance_scale": 2.0},
        "train": {"output_dir": str(output_dir), "steps": 2, "batch_size": 4, "lr": 1e-3, "warmup_steps": 1,
                  "checkpoint_every": 2, "validate_every": 2, "log_every": 1, "seed": 0},
    }
    for name, values in overrides.items():
        sections[name] = {**sections[name], **values}
    return sections
