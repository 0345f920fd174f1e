"""Fine-tune a CLAP into T-CLAP (or pretrain the offline baseline) on `accelerate`.

A run config has four sections, each a dataclass: `model` (ModelConfig), `data` (DataConfig),
`loss` (LossConfig), `train` (TrainConfig). Batches mix positive-only pairs and temporal samples
at `data.batch_mix`; the temporal samples bring negative captions, which go through the text tower
in the same forward pass as the positives, and, for mixed-up clips, negative audio, which goes through
the audio tower only when a loss term reads it (`LossConfig.uses_negative_audio`).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import PartialState
from torch import Tensor, nn
from torch.utils.data import DataLoader

from tclap.data.datasets import (AudioTextCollator, AudioWindow, CaptionPairs, EpochConcatDataset, MixedBatchSampler,
                                 MixupClips, Oversampled, mixup_rows, without_fields)
from tclap.errors import DataError
from tclap.evaluation import t_classify
from tclap.losses import LossConfig, TclapLoss
from tclap.model import ClapEncoder, ModelConfig, build_tiny, load_clap, save_clap
from tclap.trainer import TrainConfig, Trainer, TrainerParts


@dataclass
class DataConfig:
    mixup: str | None = None                                 # mixed-up clip folder (negative caption + audio)
    temporal_captions: list[str] = field(default_factory=list)  # manifests with a `negative` column
    positive_only: list[str] = field(default_factory=list)      # manifests of audio-caption pairs
    # times each positive_only file is drawn per epoch (default 1 each); repeats lengthen the epoch
    positive_only_repeats: list[int] = field(default_factory=list)
    batch_mix: dict[str, float] = field(default_factory=lambda: {"positive_only": 4, "temporal": 1})
    validation: str | None = None   # mixed-up clip folder whose val split is scored in training (default: mixup)
    word_insertion: float = 0.0     # probability that a training caption gets a random word (tclap.data.augment)
    word_insertion_from: int = 0    # ... from this epoch on (an epoch: one pass over the positive-only set)
    # a batch never holds both orders of one mixed-up event pair (MixedBatchSampler's `orders`), as in a real
    # caption set; offline, such batches let the lambda = 0 control learn order through L_c (docs/results.md)
    one_order_per_batch: bool = False

    def __post_init__(self) -> None:
        repeats = self.positive_only_repeats
        if repeats and not (isinstance(repeats, list) and len(repeats) == len(self.positive_only) and all(
                type(k) is int and k >= 1 for k in repeats)):
            raise DataError(f"data.positive_only_repeats: a list of one whole number >= 1 per data.positive_only "
                            f"file ({len(self.positive_only)}), got {repeats!r}")


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    freeze: list[str] = field(default_factory=list)  # ClapModel sub-modules kept fixed, e.g. [audio_model]


class EncoderWithLoss(nn.Module):
    """The trained module: ClapEncoder + loss, so DDP sees one forward per step. The ClapModel
    sub-modules named in `frozen` stay in eval mode in training too (their BatchNorm statistics fixed)."""

    def __init__(self, encoder: ClapEncoder, loss: TclapLoss, frozen: Sequence[str] = ()):
        super().__init__()
        self.encoder, self.criterion, self.frozen = encoder, loss, tuple(frozen)

    def train(self, mode: bool = True) -> EncoderWithLoss:
        super().train(mode)
        for name in self.frozen:
            part = getattr(self.encoder.model, name)
            if isinstance(part, nn.Module):  # a frozen parameter (logit_scale_a) has no mode
                part.eval()
        return self

    def forward(self, batch: dict) -> dict[str, Tensor]:
        b = len(batch["captions"])
        audio = torch.cat([batch["audio"], batch["neg_audio"]])          # (B + M, L)
        audio_embeds = self.encoder.audio_embeds(audio)                  # (B + M, D)
        text_embeds = self.encoder.text_embeds(batch["text"]["input_ids"], batch["text"]["attention_mask"])  # (B + K, D)
        model = self.encoder.model
        return self.criterion(audio_embeds[:b], text_embeds[:b], model.logit_scale_a, model.logit_scale_t,
                              text_embeds[b:], batch["neg_caption_index"], audio_embeds[b:], batch["neg_audio_index"])


def build_datasets(cfg: DataConfig, window: AudioWindow, seed: int, negative_audio: bool = True) -> tuple[list, list]:
    """(positive-only datasets, temporal datasets) for the training split; without `negative_audio` the
    temporal samples bring their negative captions only (the swapped clips cost a third of the audio
    forward of a half-temporal batch, and only the inversion term reads them)."""
    kw = {"seed": seed, "word_insertion": cfg.word_insertion, "word_insertion_from": cfg.word_insertion_from}
    positive = []
    for path, repeats in zip(cfg.positive_only, cfg.positive_only_repeats or [1] * len(cfg.positive_only)):
        pairs = CaptionPairs(path, window, positive_only=True, **kw)
        # each row listed `repeats` times per epoch (as OpenCLIP's --train-data-upsampling-factors), each
        # listing with its own crop and inserted word
        positive.append(Oversampled(pairs, len(pairs), repeats) if repeats > 1 else pairs)
    temporal = [CaptionPairs(p, window, temporal_only=True, **kw) for p in cfg.temporal_captions]
    if cfg.mixup:
        temporal.append(MixupClips(cfg.mixup, "train", window, **kw))
    if not negative_audio:
        temporal = [without_fields(d, "neg_audio") for d in temporal]
    if not positive and not temporal:
        raise DataError("data: no training data (set data.mixup, data.temporal_captions or data.positive_only)")
    return positive, temporal


def _captions(datasets: list) -> list[str]:
    """Every caption once (an oversampled file's rows too: repeats do not change the tiny tokenizer)."""
    rows = [r for d in datasets for r in getattr(d, "dataset", d).rows]
    return [t for r in rows for t in (r["caption"], r.get("neg_caption")) if t]


def prepare(cfg: RunConfig) -> tuple[EncoderWithLoss, DataLoader, object]:
    """Model, training dataloader and processor for a run."""
    seed = cfg.train.seed
    if cfg.model.init == "tiny":
        max_length_s = cfg.model.features["max_length_s"]
        window = AudioWindow(cfg.model.features["sampling_rate"], max_length_s, train=True)
        positive, temporal = build_datasets(cfg.data, window, seed, cfg.loss.uses_negative_audio)
        model, processor = build_tiny(cfg.model, _captions(positive + temporal), seed=seed)
    else:
        model, processor = load_clap(cfg.model.init)
        fe = processor.feature_extractor
        window = AudioWindow(fe.sampling_rate, fe.max_length_s, train=True)
        positive, temporal = build_datasets(cfg.data, window, seed, cfg.loss.uses_negative_audio)
    for name in cfg.freeze:
        if not hasattr(model, name):
            raise DataError(f"freeze: ClapModel has no sub-module or parameter {name!r}")
        getattr(model, name).requires_grad_(False)
    orders = [r.get("order") for d in temporal for r in d.rows] if cfg.data.one_order_per_batch else None
    if orders is not None and not any(orders):
        raise DataError("data.one_order_per_batch needs mixed-up clips (data.mixup), whose manifest names each "
                        "clip's events in time order; caption sets (data.temporal_captions) name none")
    # with N processes, accelerate deals sampler batch i to process i % N and L_c gathers the N of a step
    group = PartialState().num_processes if orders is not None else 1
    sampler = MixedBatchSampler(sum(map(len, positive)), sum(map(len, temporal)), cfg.train.batch_size,
                                cfg.data.batch_mix, seed=seed, orders=orders, group=group)
    loader = DataLoader(EpochConcatDataset(positive + temporal), batch_sampler=sampler,
                        collate_fn=AudioTextCollator(processor.tokenizer), num_workers=cfg.train.num_workers)
    return EncoderWithLoss(ClapEncoder(model, processor), TclapLoss(cfg.loss), cfg.freeze), loader, processor


def run(cfg: RunConfig, resume: str | None = None, provenance: dict | None = None) -> Path:
    """Train; returns the final checkpoint directory (`train.output_dir/final`)."""
    module, loader, processor = prepare(cfg)
    output_dir = Path(cfg.train.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": dataclasses.asdict(cfg), **(provenance or {})}
    (output_dir / "run_config.json").write_text(json.dumps(record, indent=2, default=str))

    def loss(model: nn.Module, batch: dict) -> dict[str, Tensor]:
        if batch["skipped"]:
            raise DataError(f"unreadable training sample(s): {batch['skipped'][:3]}")
        return model(batch)

    def export(trained: EncoderWithLoss, path: Path) -> None:
        save_clap(trained.encoder.model, processor, path, record)

    def load(trained: EncoderWithLoss, path: Path) -> None:
        trained.encoder.model.load_state_dict(type(trained.encoder.model).from_pretrained(path).state_dict())

    validate = None
    if cfg.data.validation or cfg.data.mixup:
        val, _ = mixup_rows(cfg.data.validation or cfg.data.mixup, "val")

        def validate(trained: EncoderWithLoss) -> dict[str, float]:
            return t_classify(trained.encoder, val)

    parts = TrainerParts(module, loader, loss, export, load, validate)
    return Trainer(cfg.train, parts).fit(resume)
