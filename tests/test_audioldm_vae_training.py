"""Mel VAE training: loss terms, train_vae.py end to end (scale-by-std, validation error), bad input."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL

from audioldm_cond.mel import AudioLdmMel
from audioldm_cond.pipeline import tiny_vae
from tclap.config import read_run_config
from audioldm_cond.vae_training import SUMMARY, VaeRunConfig, VaeWithLoss
from audioldm_world import write_config
from tclap.audio import load_audio
from tclap.data.mixup import MANIFEST, read_manifest
from tclap.errors import DataError

ROOT = Path(__file__).resolve().parent.parent


def vae_sections(output_dir: Path, mixup_dir: Path, **model) -> dict:
    return {"model": {"init": "tiny", "train_frames": 32, "kl_weight": 1e-3, "scale_clips": 12, **model},
            "data": {"mixup": str(mixup_dir), "seconds": 1.0, "val_clips": 6},
            "train": {"output_dir": str(output_dir), "steps": 3, "batch_size": 4, "lr": 1e-3, "warmup_steps": 1,
                      "checkpoint_every": 3, "validate_every": 3, "log_every": 1, "seed": 0}}


def first_seconds(mixup_dir: Path, split: str, n: int) -> torch.Tensor:
    """(n, 16000): the first second of the first n clips of a split, decoded here."""
    records = [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == split][:n]
    return torch.stack([torch.from_numpy(load_audio(mixup_dir / r["audio"], 16000)[:16000]) for r in records])


def test_loss_is_l1_of_a_posterior_sample_plus_weighted_per_element_kl():
    torch.manual_seed(0)
    module = VaeWithLoss(tiny_vae(), frames=100, kl_weight=0.01)
    audio = torch.randn(2, 16000) * 0.1
    torch.manual_seed(1)
    terms = module(audio)
    images = AudioLdmMel()(audio)[:, None, :100]  # (2, 1, 100, 64)
    with torch.no_grad():
        posterior = module.vae.encode(images).latent_dist
        torch.manual_seed(1)
        reconstruction = module.vae.decode(posterior.sample()).sample
    mean, logvar = posterior.mean.double(), posterior.logvar.double()
    kl_per_clip = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(dim=(1, 2, 3))
    assert float(terms["kl_loss"].detach()) == pytest.approx(0.01 * float(kl_per_clip.mean()) / (100 * 64), rel=1e-4)
    assert float(terms["l1_loss"].detach()) == pytest.approx(float((reconstruction - images).abs().mean()), rel=1e-5)


def test_train_vae_scales_latents_to_unit_std_and_reports_the_validation_error(mixup_dir, tmp_path):
    from train_vae import main

    main(["--config", str(write_config(tmp_path / "vae.yaml", vae_sections(tmp_path / "run", mixup_dir)))])
    vae = AutoencoderKL.from_pretrained(tmp_path / "run" / "final")
    summary = json.loads((tmp_path / "run" / SUMMARY).read_text())
    assert vae.config.scaling_factor == pytest.approx(summary["scaling_factor"]) and summary["val_clips"] == 6
    with torch.no_grad():
        train_images = AudioLdmMel()(first_seconds(mixup_dir, "train", 12))[:, None, :100]
        latents = vae.encode(train_images).latent_dist.sample(torch.Generator().manual_seed(5))
        val_images = AudioLdmMel()(first_seconds(mixup_dir, "val", 6))[:, None, :100]
        reconstruction = vae(val_images, sample_posterior=False).sample
    assert float((latents * vae.config.scaling_factor).std()) == pytest.approx(1.0, abs=0.05)
    assert summary["val_mel_l1"] == pytest.approx(float((reconstruction - val_images).abs().mean()), rel=1e-4)
    yardstick = (val_images - val_images.mean(dim=(0, 1, 2), keepdim=True)).abs().mean()
    assert summary["val_mel_l1_of_mean_image"] == pytest.approx(float(yardstick), rel=1e-4)
    names = {r["name"] for r in csv.DictReader(open(tmp_path / "run" / "metrics.csv"))}
    assert {"loss", "l1_loss", "kl_loss", "val/mel_l1"} <= names


def test_bad_settings_are_named(mixup_dir, tmp_path, capsys):
    from train_vae import main

    bad_crop = write_config(tmp_path / "crop.yaml", vae_sections(tmp_path / "run", mixup_dir, train_frames=30))
    with pytest.raises(SystemExit):
        main(["--config", str(bad_crop)])
    assert "model.train_frames: 30 must be a multiple of the VAE's downsampling (4)" in capsys.readouterr().err
    missing = write_config(tmp_path / "init.yaml", vae_sections(tmp_path / "run", mixup_dir,
                                                                init=str(tmp_path / "no_vae")))
    with pytest.raises(SystemExit):
        main(["--config", str(missing)])
    assert f"model.init: cannot load a VAE from '{tmp_path / 'no_vae'}'" in capsys.readouterr().err


def test_offline_config_parses():
    cfg = read_run_config(VaeRunConfig, ROOT / "configs/audioldm/vae_offline.yaml", ["train.steps=5"])
    assert cfg.data.mixup == "results/offline/mixup" and cfg.train.steps == 5 and cfg.model.latent_channels == 8
    with pytest.raises(DataError, match="unknown key"):
        read_run_config(VaeRunConfig, ROOT / "configs/audioldm/vae_offline.yaml", ["model.channels=4"])


def test_decoder_fine_tuning_keeps_the_encoder_and_the_scaling_factor(mixup_dir, tmp_path):
    from train_vae import main

    main(["--config", str(write_config(tmp_path / "vae.yaml", vae_sections(tmp_path / "first", mixup_dir)))])
    first = AutoencoderKL.from_pretrained(tmp_path / "first" / "final")
    sections = vae_sections(tmp_path / "decoder", mixup_dir, init=str(tmp_path / "first" / "final"), trained="decoder")
    main(["--config", str(write_config(tmp_path / "decoder.yaml", sections))])
    tuned = AutoencoderKL.from_pretrained(tmp_path / "decoder" / "final")
    before, after = first.state_dict(), tuned.state_dict()
    frozen = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    assert tuned.config.scaling_factor == first.config.scaling_factor
    summary = json.loads((tmp_path / "decoder" / SUMMARY).read_text())
    assert summary["scaling_factor"] == first.config.scaling_factor and summary["kept_from"] == str(tmp_path / "first" / "final")


def test_decoder_fine_tuning_needs_an_existing_vae():
    with pytest.raises(DataError, match="model.trained: 'decoder' fine-tunes an existing VAE"):
        read_run_config(VaeRunConfig, ROOT / "configs/audioldm/vae_offline.yaml", ["model.trained=decoder"])
    with pytest.raises(DataError, match="model.trained: 'encoder' is not 'all' or 'decoder'"):
        read_run_config(VaeRunConfig, ROOT / "configs/audioldm/vae_offline.yaml", ["model.trained=encoder"])
