"""T-CLAP losses (paper eq. 2-3), in the open_clip manner: one gather helper, named logits,
`forward` returning a dict of already-weighted `*_loss` terms whose sum is the training loss.

- `contrastive_loss` (L_c): symmetric InfoNCE of the base CLAP over the GLOBAL batch, with CLAP's
  two learnable logit scales (audio->text rows use `logit_scale_a`, text->audio rows `logit_scale_t`).
  Embeddings are gathered across processes with gradients, so N processes train exactly like one.
- `temporal_loss` (lambda * L_t): for every sample with a negative caption,
  -log(e^{s a.t+} / (e^{s a.t+} + e^{s a.t-})), averaged. The paper writes plain dot products
  (s = 1); `temporal_scale` picks s: "model" (the model's audio logit scale), "none" (s = 1), or a
  fixed number. "model" is the default because with s = 1 the logits are cosines, L_t's gradient is
  a logit scale smaller than L_c's, and offline it stayed at log 2 for 5,000 steps (docs/training.md).
- `separation_loss` (optional, ours, offline only): mean of relu(cos(t, t_swapped) - margin) over the
  captions with an order-swapped negative, on the text tower alone. Not in the paper: LAION-CLAP's
  text tower starts from a pretrained RoBERTa that already tells "A then B" from "B then A", while
  the offline tower is trained from scratch on order-free captions and embeds the two almost alike
  (cosine 0.99), which leaves L_t at a saddle (docs/known_limits.md).
- `inversion_loss` (optional, the time-order-inversion loss of the SSL draft, §III.D): InfoNCE
  whose denominators also hold order-inverted negatives, weighted alpha_same for the sample's own
  inversion and alpha_cross for the other samples' ones, on both sides: captions Pi(t) for audio
  anchors and swapped audio Pi(a) for caption anchors. It is computed on the local batch.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from tclap.errors import DataError


def gather_with_grad(x: Tensor) -> Tensor:
    """Rows of `x` from every process, in rank order; gradients flow back to each process's rows."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    with warnings.catch_warnings():  # its suggested replacement lives in a private module (_functional_collectives)
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(torch.distributed.nn.functional.all_gather(x), dim=0)


@dataclass
class LossConfig:
    temporal_weight: float = 0.5            # lambda in L = L_c + lambda L_t (paper: 0.5)
    temporal_scale: str | float = "model"   # "model", "none" (paper eq. 3 literally) or a number
    separation_weight: float = 0.0          # > 0 pushes a caption and its swapped twin apart (text only)
    separation_margin: float = 0.5          # ... until their cosine is below this
    inversion_weight: float = 0.0           # > 0 enables the time-order-inversion loss
    alpha_same: float = 1.0
    alpha_cross: float = 1.0

    @property
    def uses_negative_audio(self) -> bool:
        """Whether a term reads order-swapped audio (only the inversion term does: L_t and the hinge
        contrast captions); without one the training data leave those clips out, so they are neither
        decoded nor embedded. A new term that reads `neg_audio_embeds` must be added here, or it gets none."""
        return self.inversion_weight > 0

    def __post_init__(self) -> None:
        if not (self.temporal_scale in ("model", "none") or isinstance(self.temporal_scale, (int, float))):
            raise DataError(f"loss.temporal_scale must be 'model', 'none' or a number, not {self.temporal_scale!r}")
        if min(self.temporal_weight, self.separation_weight, self.inversion_weight, self.alpha_same,
               self.alpha_cross) < 0:
            raise DataError("loss: weights and alphas must be >= 0")
        if not -1.0 <= self.separation_margin <= 1.0:
            raise DataError(f"loss.separation_margin is a cosine, in [-1, 1]; got {self.separation_margin}")


class TclapLoss(nn.Module):
    """L = L_c + lambda L_t (+ the optional inversion term); see the module docstring."""

    def __init__(self, config: LossConfig | None = None):
        super().__init__()
        self.config = config or LossConfig()

    def contrastive_logits(self, audio_embeds: Tensor, text_embeds: Tensor, logit_scale_a: Tensor,
                           logit_scale_t: Tensor) -> tuple[Tensor, Tensor]:
        """Global-batch logits: audio rows (N, N) and text rows (N, N)."""
        audio_all, text_all = gather_with_grad(audio_embeds), gather_with_grad(text_embeds)  # (N, D)
        logits_per_audio = logit_scale_a.exp() * audio_all @ text_all.T  # (N, N)
        logits_per_text = logit_scale_t.exp() * text_all @ audio_all.T   # (N, N)
        return logits_per_audio, logits_per_text

    def contrastive(self, audio_embeds: Tensor, text_embeds: Tensor, logit_scale_a: Tensor,
                    logit_scale_t: Tensor) -> Tensor:
        logits_per_audio, logits_per_text = self.contrastive_logits(
            audio_embeds, text_embeds, logit_scale_a, logit_scale_t)
        labels = torch.arange(len(logits_per_audio), device=logits_per_audio.device)
        return (F.cross_entropy(logits_per_audio, labels) + F.cross_entropy(logits_per_text, labels)) / 2

    def temporal_scale(self, logit_scale_a: Tensor) -> Tensor:
        scale = self.config.temporal_scale
        if scale == "model":
            return logit_scale_a.exp()
        return logit_scale_a.new_tensor(1.0 if scale == "none" else float(scale))

    def temporal(self, audio_embeds: Tensor, text_embeds: Tensor, neg_text_embeds: Tensor,
                 neg_text_index: Tensor, logit_scale_a: Tensor) -> Tensor:
        """Mean over samples with a negative caption of -log softmax over (t+, t-) given the audio."""
        audio = audio_embeds[neg_text_index]                          # (K, D)
        positive = (audio * text_embeds[neg_text_index]).sum(-1)      # (K,)
        negative = (audio * neg_text_embeds).sum(-1)                  # (K,)
        logits = self.temporal_scale(logit_scale_a) * torch.stack([positive, negative], dim=1)  # (K, 2)
        return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))

    def separation(self, text_embeds: Tensor, neg_text_embeds: Tensor, neg_text_index: Tensor) -> Tensor:
        """Mean over captions with a swapped twin of relu(cos(t, t_swapped) - margin); unit vectors in."""
        cosine = (text_embeds[neg_text_index] * neg_text_embeds).sum(-1)  # (K,)
        return F.relu(cosine - self.config.separation_margin).mean()

    def inversion(self, anchors: Tensor, candidates: Tensor, inverted: Tensor, inverted_index: Tensor,
                  logit_scale: Tensor) -> Tensor:
        """TNCE over anchors that have an inverted counterpart among `inverted`.

        Args:
            anchors: (B, D) embeddings of one modality.
            candidates: (B, D) embeddings of the other modality; row i matches anchor i.
            inverted: (K, D) order-inverted embeddings of the other modality.
            inverted_index: (K,) which sample each inverted embedding belongs to.
            logit_scale: log of the scale applied to all logits.
        """
        scale = logit_scale.exp()
        rows = anchors[inverted_index]                                   # (K, D)
        batch_logits = scale * rows @ candidates.T                       # (K, B)
        inverted_logits = scale * rows @ inverted.T                      # (K, K)
        same = torch.eye(len(rows), dtype=torch.bool, device=rows.device)
        weights = torch.full_like(inverted_logits, self.config.alpha_cross).masked_fill(same, self.config.alpha_same)
        inverted_logits = inverted_logits + torch.log(weights)  # alpha * e^x = e^(x + log alpha); log 0 = -inf
        logits = torch.cat([batch_logits, inverted_logits], dim=1)       # (K, B + K)
        return F.cross_entropy(logits, inverted_index)

    def forward(self, audio_embeds: Tensor, text_embeds: Tensor, logit_scale_a: Tensor, logit_scale_t: Tensor,
                neg_text_embeds: Tensor | None = None, neg_text_index: Tensor | None = None,
                neg_audio_embeds: Tensor | None = None, neg_audio_index: Tensor | None = None) -> dict[str, Tensor]:
        """Named, weighted loss terms. Embeddings are L2-normalised, (B, D); negatives are indexed into B.

        Args:
            audio_embeds: (B, D) audio embeddings of this process's batch.
            text_embeds: (B, D) caption embeddings, row i describing audio i.
            logit_scale_a: the model's log audio logit scale.
            logit_scale_t: the model's log text logit scale.
            neg_text_embeds: (K, D) embeddings of order-swapped captions.
            neg_text_index: (K,) sample each negative caption belongs to.
            neg_audio_embeds: (M, D) embeddings of order-swapped audio.
            neg_audio_index: (M,) sample each negative audio belongs to.
        """
        cfg = self.config
        losses = {"contrastive_loss": self.contrastive(audio_embeds, text_embeds, logit_scale_a, logit_scale_t)}
        has_neg_text = neg_text_embeds is not None and len(neg_text_embeds) > 0
        has_neg_audio = neg_audio_embeds is not None and len(neg_audio_embeds) > 0
        if cfg.temporal_weight and has_neg_text:
            losses["temporal_loss"] = cfg.temporal_weight * self.temporal(
                audio_embeds, text_embeds, neg_text_embeds, neg_text_index, logit_scale_a)
        if cfg.separation_weight and has_neg_text:
            losses["separation_loss"] = cfg.separation_weight * self.separation(
                text_embeds, neg_text_embeds, neg_text_index)
        if cfg.inversion_weight and (has_neg_text or has_neg_audio):
            terms = []
            if has_neg_text:
                terms.append(self.inversion(audio_embeds, text_embeds, neg_text_embeds, neg_text_index, logit_scale_a))
            if has_neg_audio:
                terms.append(self.inversion(text_embeds, audio_embeds, neg_audio_embeds, neg_audio_index, logit_scale_t))
            losses["inversion_loss"] = cfg.inversion_weight * torch.stack(terms).mean()
        return losses
