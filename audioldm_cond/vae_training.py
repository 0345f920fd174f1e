"""Train the mel VAE AudioLDM diffuses in: an AutoencoderKL on log-mel images, on `tclap.trainer`.

AudioLDM's diffusion runs in the latent space of a VAE over (time, 64-mel) log-mel images. The
offline world cannot download `cvssp/audioldm-s-full-v2`'s, so it trains `pipeline.tiny_vae()` on
its own clips. Loss: mean absolute log-mel error of the reconstruction of a posterior sample, plus
`kl_weight` x the KL to N(0, I), both per image element (AudioLDM sums both per clip with weight
1e-6, the same ratio). Validation reports the mean absolute log-mel error on the val clips,
reconstructed from the posterior mean. The final folder is an AutoencoderKL `save_pretrained`
directory whose `scaling_factor` is 1 / std of the latents of training clips (LDM's scale-by-std),
so the UNet sees unit-variance latents and the pipeline divides them back out before decoding.

`model.trained: decoder` fine-tunes the decoder of an existing VAE with its encoder frozen (as
Stability AI's `sd-vae-ft-mse` did for Stable Diffusion's VAE): the latent space and `scaling_factor`
stay exactly those of `model.init`, so UNets already trained on it keep working and decode better.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from torch import Tensor, nn
from torch.utils.data import DataLoader

from audioldm_cond.clip_data import (ClipDataConfig, clip_loader, mel_frames, mel_image, require_audio,
                                     training_clips, vae_downsampling, validation_clips)
from audioldm_cond.mel import AudioLdmMel
from audioldm_cond.pipeline import load_component, tiny_vae
from tclap.errors import DataError
from tclap.trainer import TrainConfig, Trainer, TrainerParts

SUMMARY = "vae_summary.json"  # written next to the checkpoints: final error, latent scale, training time


@dataclass
class VaeModelConfig:
    init: str = "tiny"                # "tiny" (pipeline.tiny_vae), or a VAE / pipeline dir or hub id to go on from
    latent_channels: int = 8          # for "tiny" (AudioLDM: 8)
    downsampling: int = 4             # for "tiny": of time and mel, 4 (AudioLDM's) or 8
    kl_weight: float = 1e-6           # per element, relative to the L1 term
    train_frames: int | None = None   # random time crop of the mel image in training (speed); None: the whole clip
    scale_clips: int = 256            # training clips whose latent std sets `scaling_factor`
    trained: str = "all"              # "all", or "decoder": encoder frozen, init's latents and scaling_factor kept

    def __post_init__(self) -> None:
        if self.trained not in ("all", "decoder"):
            raise DataError(f"model.trained: {self.trained!r} is not 'all' or 'decoder'")
        if self.trained == "decoder" and self.init == "tiny":
            raise DataError("model.trained: 'decoder' fine-tunes an existing VAE; set model.init to its directory")


@dataclass
class VaeRunConfig:
    model: VaeModelConfig = field(default_factory=VaeModelConfig)
    data: ClipDataConfig = field(default_factory=ClipDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def load_vae(name_or_dir: str, what: str) -> AutoencoderKL:
    """An AutoencoderKL from a VAE directory, a pipeline directory (its `vae/`) or a hub id.

    Args:
        name_or_dir: where it is.
        what: the config key it came from, named in errors.
    """
    try:
        return load_component("vae", name_or_dir)
    except (DataError, OSError) as error:
        raise DataError(f"{what}: cannot load a VAE from {name_or_dir!r} ({error}); "
                        "train one with train_vae.py or give a pipeline directory / hub id") from None


class VaeWithLoss(nn.Module):
    """The trained module: AutoencoderKL plus the mel front end and the loss (one forward per step).

    Args:
        vae: the autoencoder.
        frames: mel frames of a whole clip (a multiple of the VAE's downsampling).
        train_frames: random crop length in training, or None for whole clips.
        kl_weight: weight of the per-element KL term.
    """

    def __init__(self, vae: AutoencoderKL, frames: int, train_frames: int | None = None, kl_weight: float = 1e-6):
        super().__init__()
        self.vae, self.mel = vae, AudioLdmMel()
        self.frames, self.train_frames, self.kl_weight = frames, train_frames, kl_weight
        downsampling = vae_downsampling(vae)
        if train_frames is not None and (train_frames % downsampling or not 0 < train_frames <= frames):
            raise DataError(f"model.train_frames: {train_frames} must be a multiple of the VAE's downsampling "
                            f"({downsampling}) between {downsampling} and {frames} (a whole clip)")

    def images(self, audio: Tensor) -> Tensor:
        """(B, L) clips -> (B, 1, frames, 64) log-mel images on the VAE's device."""
        return mel_image(self.mel, audio.to(self.vae.device), self.frames)

    def forward(self, audio: Tensor) -> dict[str, Tensor]:
        images = self.images(audio)
        if self.train_frames is not None and self.train_frames < self.frames:
            start = int(torch.randint(0, self.frames - self.train_frames + 1, ()))
            images = images[:, :, start:start + self.train_frames]
        posterior = self.vae.encode(images).latent_dist
        reconstruction = self.vae.decode(posterior.sample()).sample
        kl = posterior.kl().mean() / images[0].numel()
        return {"l1_loss": (reconstruction - images).abs().mean(), "kl_loss": self.kl_weight * kl}

    @torch.no_grad()
    def start_at_mean_level(self, loader: DataLoader) -> None:
        """Set the decoder's output bias to the mean log-mel of the first batch. A fresh decoder outputs
        about 0 while log-mels sit near -9 (half of the bins at the log floor, -11.5); without this,
        the first hundred steps do little but shift that level.

        Args:
            loader: training clips, in order.
        """
        images = self.images(require_audio(next(iter(loader))))
        self.vae.decoder.conv_out.bias.fill_(float(images.mean()))

    @torch.no_grad()
    def reconstruction_error(self, loader: DataLoader) -> float:
        """Mean absolute log-mel error (natural log) of reconstructions from the posterior mean.

        Args:
            loader: clips, in order (see `clip_loader(shuffle=False)`).
        """
        total, count = 0.0, 0
        for batch in loader:
            images = self.images(require_audio(batch))
            reconstruction = self.vae.decode(self.vae.encode(images).latent_dist.mean).sample
            total += float((reconstruction - images).abs().sum())
            count += images.numel()
        return total / count

    @torch.no_grad()
    def mean_image_error(self, loader: DataLoader) -> float:
        """What `reconstruction_error` would be for a VAE that outputs each mel bin's mean: a yardstick.

        Args:
            loader: clips, in order.
        """
        images = torch.cat([self.images(require_audio(batch)) for batch in loader])  # (N, 1, T, n_mels)
        return float((images - images.mean(dim=(0, 1, 2), keepdim=True)).abs().mean())

    @torch.no_grad()
    def latent_std(self, loader: DataLoader, clips: int) -> float:
        """Std of posterior samples (fixed seed) over the first `clips` clips: 1 / scaling_factor.

        Args:
            loader: training clips, in order.
            clips: how many to use (at least one batch).
        """
        generator = torch.Generator(self.vae.device).manual_seed(0)
        latents, seen = [], 0
        for batch in loader:
            latents.append(self.vae.encode(self.images(require_audio(batch))).latent_dist.sample(generator))
            seen += len(latents[-1])
            if seen >= clips:
                break
        return float(torch.cat(latents).flatten().std())


def build_vae(cfg: VaeModelConfig, seed: int) -> AutoencoderKL:
    """The VAE a run starts from: a seeded `tiny_vae()` or an existing one.

    Args:
        cfg: model section.
        seed: initialisation seed for "tiny".
    """
    if cfg.init == "tiny":
        torch.manual_seed(seed)
        return tiny_vae(cfg.latent_channels, cfg.downsampling)
    vae = load_vae(cfg.init, "model.init")
    if cfg.trained == "decoder":  # what maps mels to latents stays as it is
        vae.encoder.requires_grad_(False)
        if vae.quant_conv is not None:
            vae.quant_conv.requires_grad_(False)
    return vae


def scale_by_std(final: Path, module: VaeWithLoss, train_loader: DataLoader, clips: int) -> dict[str, float]:
    """Reload the exported VAE, set `scaling_factor = 1 / latent std` in its config and save it again.

    Args:
        final: the exported VAE directory.
        module: a VaeWithLoss whose VAE is replaced by the exported one.
        train_loader: training clips in order, cropped from the start.
        clips: how many clips measure the std.
    """
    module.vae = AutoencoderKL.from_pretrained(final).to(module.mel.window.device).eval()
    std = module.latent_std(train_loader, clips)
    module.vae.register_to_config(scaling_factor=1.0 / std)
    module.vae.save_pretrained(final, safe_serialization=True)
    return {"latent_std": std, "scaling_factor": 1.0 / std}


def run(cfg: VaeRunConfig, resume: str | None = None, provenance: dict | None = None) -> Path:
    """Train; returns the final VAE directory (`train.output_dir/final`), scaled by std.

    Args:
        cfg: the run config.
        resume: None, "latest" or a checkpoint folder.
        provenance: extra facts recorded in `run_config.json` (e.g. the command line).
    """
    seed, batch_size = cfg.train.seed, cfg.train.batch_size
    mel = AudioLdmMel()
    rate = mel.config.sample_rate
    train, val = training_clips(cfg.data, rate, seed), validation_clips(cfg.data, rate)
    vae = build_vae(cfg.model, seed)
    module = VaeWithLoss(vae, mel_frames(cfg.data.seconds, mel, vae_downsampling(vae)), cfg.model.train_frames,
                         cfg.model.kl_weight)
    output_dir = Path(cfg.train.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": dataclasses.asdict(cfg), **(provenance or {})}
    (output_dir / "run_config.json").write_text(json.dumps(record, indent=2, default=str))
    val_loader = clip_loader(val, batch_size, shuffle=False)
    in_order = clip_loader(training_clips(cfg.data, rate, seed, train=False), batch_size, shuffle=False)
    if cfg.model.init == "tiny":
        module.start_at_mean_level(in_order)

    def loss(trained: VaeWithLoss, batch: dict) -> dict[str, Tensor]:
        return trained(require_audio(batch))

    def export(trained: VaeWithLoss, path: Path) -> None:
        trained.vae.save_pretrained(path, safe_serialization=True)

    def load(trained: VaeWithLoss, path: Path) -> None:
        trained.vae.load_state_dict(AutoencoderKL.from_pretrained(path).state_dict())

    def validate(trained: VaeWithLoss) -> dict[str, float]:
        return {"mel_l1": trained.reconstruction_error(val_loader)}

    trainer = Trainer(cfg.train, TrainerParts(module, clip_loader(train, batch_size, seed, cfg.train.num_workers),
                                              loss, export, load, validate))
    start = time.perf_counter()
    final = trainer.fit(resume)
    seconds = time.perf_counter() - start
    if trainer.accelerator.is_main_process:
        if cfg.model.trained == "decoder":  # same encoder, same latents: keep the factor the UNets were trained with
            module.vae = AutoencoderKL.from_pretrained(final).to(module.mel.window.device).eval()
            factor = module.vae.config.scaling_factor
            summary = {"latent_std": 1.0 / factor, "scaling_factor": factor, "kept_from": cfg.model.init}
        else:
            summary = scale_by_std(final, module, in_order, cfg.model.scale_clips)
        summary.update(val_mel_l1=module.reconstruction_error(val_loader),
                       val_mel_l1_of_mean_image=module.mean_image_error(val_loader), val_clips=len(val),
                       steps=cfg.train.steps, fit_seconds=seconds)
        (output_dir / SUMMARY).write_text(json.dumps(summary, indent=2))
        trainer.accelerator.print(f"val mean |log-mel error| {summary['val_mel_l1']:.4f} "
                                  f"(mean-image yardstick {summary['val_mel_l1_of_mean_image']:.4f}); "
                                  f"scaling_factor {summary['scaling_factor']:.4f}")
    return final
