"""Losses against hand-written loops over the batch (an independent computation)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tclap.losses import LossConfig, TclapLoss


def unit(*shape, seed):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


@pytest.fixture
def batch():
    a, t = unit(6, 8, seed=0), unit(6, 8, seed=1)
    return dict(audio_embeds=a, text_embeds=t, logit_scale_a=torch.tensor(math.log(10.0), dtype=torch.float64),
                logit_scale_t=torch.tensor(math.log(20.0), dtype=torch.float64),
                neg_text_embeds=unit(3, 8, seed=2), neg_text_index=torch.tensor([1, 3, 4]),
                neg_audio_embeds=unit(2, 8, seed=3), neg_audio_index=torch.tensor([3, 4]))


def dot(x, y):
    return float(sum(float(p) * float(q) for p, q in zip(x, y)))


def test_contrastive_loss_matches_a_loop(batch):
    a, t, n = batch["audio_embeds"], batch["text_embeds"], 6
    audio_rows = [-math.log(math.exp(10 * dot(a[i], t[i])) / sum(math.exp(10 * dot(a[i], t[j])) for j in range(n)))
                  for i in range(n)]
    text_rows = [-math.log(math.exp(20 * dot(t[i], a[i])) / sum(math.exp(20 * dot(t[i], a[j])) for j in range(n)))
                 for i in range(n)]
    expected = (sum(audio_rows) / n + sum(text_rows) / n) / 2
    losses = TclapLoss(LossConfig(temporal_weight=0))(batch["audio_embeds"], t, batch["logit_scale_a"],
                                                      batch["logit_scale_t"])
    assert set(losses) == {"contrastive_loss"}
    assert float(losses["contrastive_loss"]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("scale, s", [("model", 10.0), ("none", 1.0), (5.0, 5.0)])
def test_temporal_loss_is_paper_eq3_averaged(batch, scale, s):
    a, t, neg = batch["audio_embeds"], batch["text_embeds"], batch["neg_text_embeds"]
    terms = []
    for k, i in enumerate([1, 3, 4]):
        pos, negative = math.exp(s * dot(a[i], t[i])), math.exp(s * dot(a[i], neg[k]))
        terms.append(-math.log(pos / (pos + negative)))
    losses = TclapLoss(LossConfig(temporal_weight=0.5, temporal_scale=scale))(**batch)
    assert float(losses["temporal_loss"]) == pytest.approx(0.5 * sum(terms) / 3, rel=1e-12)
    assert "inversion_loss" not in losses


def test_inversion_loss_matches_the_draft_formula(batch):
    alpha_same, alpha_cross = 1.0, 0.25
    a, t = batch["audio_embeds"], batch["text_embeds"]

    def tnce(anchors, candidates, inverted, index, s):
        terms = []
        for k, i in enumerate(index):
            denominator = sum(math.exp(s * dot(anchors[i], candidates[j])) for j in range(6))
            denominator += sum((alpha_same if m == k else alpha_cross) * math.exp(s * dot(anchors[i], inverted[m]))
                               for m in range(len(index)))
            terms.append(-math.log(math.exp(s * dot(anchors[i], candidates[i])) / denominator))
        return sum(terms) / len(terms)

    text_side = tnce(a, t, batch["neg_text_embeds"], [1, 3, 4], 10.0)
    audio_side = tnce(t, a, batch["neg_audio_embeds"], [3, 4], 20.0)
    cfg = LossConfig(temporal_weight=0.0, inversion_weight=2.0, alpha_same=alpha_same, alpha_cross=alpha_cross)
    losses = TclapLoss(cfg)(**batch)
    assert float(losses["inversion_loss"]) == pytest.approx(2.0 * (text_side + audio_side) / 2, rel=1e-12)


def test_alpha_zero_removes_the_cross_negatives(batch):
    without = TclapLoss(LossConfig(inversion_weight=1, alpha_cross=0.0))(**batch)["inversion_loss"]
    tiny = TclapLoss(LossConfig(inversion_weight=1, alpha_cross=1e-12))(**batch)["inversion_loss"]
    assert torch.isfinite(without) and float(without) == pytest.approx(float(tiny), rel=1e-9)


def test_no_negatives_means_no_temporal_terms(batch):
    losses = TclapLoss(LossConfig(inversion_weight=1.0))(batch["audio_embeds"], batch["text_embeds"],
                                                        batch["logit_scale_a"], batch["logit_scale_t"],
                                                        batch["neg_text_embeds"][:0], batch["neg_text_index"][:0])
    assert set(losses) == {"contrastive_loss"}


def test_separation_loss_is_the_mean_hinge_on_the_swapped_captions_cosine(batch):
    """relu(cos(t_i, t_swapped) - margin), averaged over the captions that have a swapped twin; text only."""
    cfg = LossConfig(temporal_weight=0.0, separation_weight=2.0, separation_margin=0.1)
    losses = TclapLoss(cfg)(batch["audio_embeds"], batch["text_embeds"], batch["logit_scale_a"],
                            batch["logit_scale_t"], batch["neg_text_embeds"], batch["neg_text_index"])
    hinges = [max(0.0, dot(batch["text_embeds"][i], batch["neg_text_embeds"][k]) - 0.1)
              for k, i in enumerate(batch["neg_text_index"].tolist())]
    assert set(losses) == {"contrastive_loss", "separation_loss"}
    assert float(losses["separation_loss"]) == pytest.approx(2.0 * sum(hinges) / len(hinges), rel=1e-12)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="temporal_scale"):
        LossConfig(temporal_scale="sometimes")
    with pytest.raises(ValueError, match=">= 0"):
        LossConfig(alpha_cross=-1)
    with pytest.raises(ValueError, match="separation_margin is a cosine"):
        LossConfig(separation_margin=1.5)
