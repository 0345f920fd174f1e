"""The CLAP model we train: transformers' `ClapModel` plus its processor, as a checkpoint directory.

A checkpoint is a self-contained `save_pretrained` directory (safetensors weights, config, tokenizer,
feature-extractor config), so `ClapModel.from_pretrained(dir)` and
`ClapTextModelWithProjection.from_pretrained(dir)` (AudioLDM's text encoder) both load it.
`init: tiny` builds the offline model (small HTSAT and text tower, tokenizer trained on the
captions); any other `init` is a hub id (`laion/clap-htsat-unfused`) or a local directory.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

from tclap.features import ClapLogMel
from tclap.tokenizer import train_tokenizer

PROVENANCE = "tclap_provenance.json"  # what produced a checkpoint: configs, data, steps


def _tiny_audio() -> dict:
    # 32 mels, spec 64 -> HTSAT sees a 64 x 64 image of up to 128 frames; 2 stages of width 32/64.
    # Window 8 makes the last stage (8 x 8 tokens) attend globally, as in LAION's HTSAT: with local
    # windows only and average pooling the tower cannot tell which half of the clip an event is in.
    return dict(num_mel_bins=32, spec_size=64, window_size=8, patch_size=4, patch_stride=[4, 4],
                patch_embeds_hidden_size=32, depths=[2, 2], num_attention_heads=[2, 4], num_hidden_layers=2,
                hidden_size=64, hidden_dropout_prob=0.0)


def _tiny_text() -> dict:
    return dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                max_position_embeddings=80, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _offline_features() -> dict:
    # 16 kHz, 4-s window, hop 512 -> 126 frames (HTSAT's limit here is 128).
    return dict(sampling_rate=16000, feature_size=32, fft_window_size=1024, hop_length=512, max_length_s=4,
                frequency_min=0, frequency_max=8000, truncation="rand_trunc", padding="repeatpad")


@dataclass
class ModelConfig:
    """Which CLAP to start from. `audio`, `text`, `features`, `vocab_size` apply to `init: tiny` only."""

    init: str = "tiny"
    projection_dim: int = 128
    vocab_size: int = 1000
    audio: dict = field(default_factory=_tiny_audio)
    text: dict = field(default_factory=_tiny_text)
    features: dict = field(default_factory=_offline_features)


def build_tiny(cfg: ModelConfig, captions: Iterable[str], seed: int = 0) -> tuple[ClapModel, ClapProcessor]:
    """A randomly initialised small CLAP, with a tokenizer trained on `captions`.

    Args:
        cfg: sizes of the towers and the front end.
        captions: text the tokenizer is trained on (all captions the model will see).
        seed: initialisation seed.
    """
    tokenizer = train_tokenizer(captions, vocab_size=cfg.vocab_size,
                                max_length=cfg.text["max_position_embeddings"] - 2)
    config = ClapConfig(
        text_config={**cfg.text, "vocab_size": len(tokenizer), "projection_dim": cfg.projection_dim},
        audio_config={**cfg.audio, "projection_dim": cfg.projection_dim},
        projection_dim=cfg.projection_dim)
    torch.manual_seed(seed)
    model = ClapModel(config)
    processor = ClapProcessor(feature_extractor=ClapFeatureExtractor(**cfg.features), tokenizer=tokenizer)
    return model, processor


def load_clap(name_or_dir: str | Path) -> tuple[ClapModel, ClapProcessor]:
    """A pretrained CLAP and its processor from a hub id or a `save_pretrained` directory."""
    return ClapModel.from_pretrained(str(name_or_dir)), ClapProcessor.from_pretrained(str(name_or_dir))


def save_clap(model: ClapModel, processor: ClapProcessor, out_dir: str | Path, provenance: dict) -> Path:
    """Write a self-contained checkpoint directory, with what produced it."""
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    processor.feature_extractor.save_pretrained(out_dir)  # preprocessor_config.json, for transformers 4.x readers
    (out_dir / PROVENANCE).write_text(json.dumps(provenance, indent=2, default=str))
    return out_dir


class ClapEncoder(nn.Module):
    """A ClapModel with its batched torch front end and its tokenizer: L2-normalised embeddings out.

    Args:
        model: the CLAP.
        processor: its processor (feature-extractor settings and tokenizer).
    """

    def __init__(self, model: ClapModel, processor: ClapProcessor):
        super().__init__()
        self.model = model
        self.tokenizer = processor.tokenizer
        self.front_end = ClapLogMel.from_feature_extractor(processor.feature_extractor)
        self.sample_rate = processor.feature_extractor.sampling_rate
        self.window = int(processor.feature_extractor.max_length_s * self.sample_rate)

    def tokenize(self, texts: list[str]) -> dict[str, Tensor]:
        return dict(self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt"))

    def audio_embeds(self, waveform: Tensor) -> Tensor:
        """(B, L) waveforms at `sample_rate`, L <= window -> (B, D) unit vectors."""
        features = self.front_end(waveform)  # input_features (B, C, T, n_mels), is_longer (B, 1)
        pooled = self.model.audio_model(**features).pooler_output
        return F.normalize(self.model.audio_projection(pooled), dim=-1)

    def text_embeds(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Token ids (B, S) -> (B, D) unit vectors."""
        pooled = self.model.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return F.normalize(self.model.text_projection(pooled), dim=-1)
