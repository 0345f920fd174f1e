"""Text-to-audio and audio-to-text retrieval: R@1, R@5, R@10 and mAP@10 (paper §3.3, Table 1).

The protocol is LAION-CLAP's `evaluate_clotho_audiocaps` (laion_clap/training/train.py, itself
adapted from Mei et al.'s audio-text_retrieval), which handles several captions per clip (Clotho
has 5, AudioCaps test 5):

- T2A: every caption is a query over all clips; r = 0-based rank of its clip. R@k = share of
  captions with r < k; mAP@10 = mean of 1 / (r + 1) when r < 10, else 0.
- A2T: every clip is a query over all captions. R@k uses the rank of the best-ranked matching
  caption. mAP@10 is average precision cut at 10: with the matching captions' 0-based ranks
  sorted, r_1 < r_2 < ..., AP = sum over r_j < 10 of j / (r_j + 1), divided by the clip's number of
  captions. (LAION's code skips the sort its docstring asks for; we sort, as Mei et al. do, which
  gives the textbook average precision.)

Ranks come from a stable descending sort, so ties go to the lower index. Values are percentages.
Clips without a caption are distractors for T2A and are not A2T queries.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from tclap.embedding_cache import Embedder
from tclap.errors import DataError

KS = (1, 5, 10)


def _positions(sim: Tensor) -> Tensor:
    """0-based position of every column in its row's stable descending order: (Q, N) -> (Q, N)."""
    order = torch.sort(sim, dim=1, descending=True, stable=True).indices
    return torch.argsort(order, dim=1)


def retrieval_metrics(sim: Tensor, audio_of_text: Tensor) -> dict[str, float]:
    """Retrieval scores (%) from caption-clip similarities.

    Args:
        sim: (n_text, n_audio) similarities.
        audio_of_text: (n_text,) index of each caption's clip.
    Returns:
        `t2a_R@1`, `t2a_R@5`, `t2a_R@10`, `t2a_mAP@10`, the same with `a2t_`, and `n_text`, `n_audio`.
    """
    t2a_rank = _positions(sim)[torch.arange(len(sim)), audio_of_text].float()                   # (n_text,)
    text_rank = _positions(sim.T)                                                               # (n_audio, n_text)
    best, ap = [], []
    for clip in audio_of_text.unique().tolist():
        ranks = text_rank[clip, audio_of_text == clip].sort().values.float()                    # (c,)
        best.append(ranks[0])
        hits = torch.arange(1, len(ranks) + 1) / (ranks + 1)
        ap.append(hits[ranks < 10].sum() / len(ranks))
    a2t_rank, a2t_ap = torch.stack(best), torch.stack(ap)
    metrics: dict[str, float] = {}
    for name, rank in (("t2a", t2a_rank), ("a2t", a2t_rank)):
        for k in KS:
            metrics[f"{name}_R@{k}"] = 100.0 * float((rank < k).float().mean())
    metrics["t2a_mAP@10"] = 100.0 * float(torch.where(t2a_rank < 10, 1 / (t2a_rank + 1), 0.0).mean())
    metrics["a2t_mAP@10"] = 100.0 * float(a2t_ap.mean())
    metrics["n_text"], metrics["n_audio"] = sim.shape
    return metrics


def rows_retrieval(embedder: Embedder, rows: list[dict], source: str | Path) -> dict[str, float]:
    """Retrieval over dataset rows: `read_pairs(manifest)` (one row per caption; rows sharing an audio
    path are one clip's captions, e.g. Clotho's 5) or `mixup_rows(root, split)[0]` (each clip, its caption).

    Args:
        embedder: the model with its embedding cache.
        rows: dicts with `audio` (path) and `caption`.
        source: where the rows come from, for the error message when there are none.
    """
    if not rows:
        raise DataError(f"{source}: no captions to retrieve")
    clip_of_path: dict[Path, int] = {}
    audio_of_text = torch.tensor([clip_of_path.setdefault(Path(r["audio"]), len(clip_of_path)) for r in rows])
    audio = embedder.audio(list(clip_of_path))
    text = embedder.text([r["caption"] for r in rows])
    return retrieval_metrics(text @ audio.T, audio_of_text)
