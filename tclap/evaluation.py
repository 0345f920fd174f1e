"""Encoder evaluation: embeddings of a dataset, T-Classify (paper §3.3) and CompA-order scores.

T-Classify T2A: share of items with sim(a, t+) > sim(a, t-). A2T: share of items with
sim(a+, t) > sim(a-, t). The CompA-order paired scores (Winoground style) ask for both directions
of an item at once: the clip and its order-swapped twin must each prefer their own caption. All are
reported as percentages.
"""
from __future__ import annotations

import torch

from tclap.embedding_cache import Embedder
from tclap.model import ClapEncoder


def tclassify_margins(e: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-item T-Classify margins from `embed_rows` output: > 0 means the model got the item right.

    Returns T2A sim(a, t+) - sim(a, t-) over the items with a negative caption (K,) and A2T
    sim(a+, t) - sim(a-, t) over those with a negative audio (M,), in the order of `neg_text_index`
    and `neg_audio_index`.
    """
    audio, text = e["audio"][e["neg_text_index"]], e["text"][e["neg_text_index"]]
    t2a = (audio * text).sum(-1) - (audio * e["neg_text"]).sum(-1)                           # (K,)
    text, audio = e["text"][e["neg_audio_index"]], e["audio"][e["neg_audio_index"]]
    a2t = (text * audio).sum(-1) - (text * e["neg_audio"]).sum(-1)                           # (M,)
    return t2a, a2t


def tclassify_decisions(e: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-item T-Classify outcomes (1.0 = right) from `embed_rows` output, ordered as `tclassify_margins`."""
    t2a, a2t = tclassify_margins(e)
    return (t2a > 0).float(), (a2t > 0).float()


def compa_order_decisions(e: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-item CompA-order paired scores (Winoground style) over the items with both negatives.

    Caption T0 describes audio A0; the negative caption T1 describes the negative audio A1.
    text: s(T0,A0) > s(T1,A0) and s(T1,A1) > s(T0,A1) (each audio picks its caption);
    audio: s(T0,A0) > s(T0,A1) and s(T1,A1) > s(T1,A0) (each caption picks its audio);
    group: both. Returns `index` (P,) of those items and the three outcomes (P,), 1.0 = right.
    """
    text_row = {int(i): k for k, i in enumerate(e["neg_text_index"])}
    audio_row = {int(i): k for k, i in enumerate(e["neg_audio_index"])}
    index = sorted(text_row.keys() & audio_row.keys())
    t0, a0 = e["text"][index], e["audio"][index]                                                # (P, D)
    t1, a1 = e["neg_text"][[text_row[i] for i in index]], e["neg_audio"][[audio_row[i] for i in index]]

    def sim(t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return (t * a).sum(-1)

    text = (sim(t0, a0) > sim(t1, a0)) & (sim(t1, a1) > sim(t0, a1))
    audio = (sim(t0, a0) > sim(t0, a1)) & (sim(t1, a1) > sim(t1, a0))
    return {"index": torch.tensor(index, dtype=torch.long), "text": text.float(), "audio": audio.float(),
            "group": (text & audio).float()}


def swap_similarity(e: dict[str, torch.Tensor]) -> dict[str, float]:
    """How far each tower tells an item from its order-swapped twin, from `embed_rows` output.

    `swap_cosine_text`: mean cos(t, t_swapped) over the items with a negative caption;
    `pairwise_cosine_text`: mean cos over all pairs of distinct captions, the scale to read it
    against (an order-blind tower gives swap 1.0, whatever the spread); the same two for audio.
    Embeddings are unit vectors, so a cosine is a dot product.
    """
    result = {}
    for side, negatives, index in (("text", "neg_text", "neg_text_index"), ("audio", "neg_audio", "neg_audio_index")):
        anchors = e[side]
        if len(e[index]):
            result[f"swap_cosine_{side}"] = float((anchors[e[index]] * e[negatives]).sum(-1).mean())
        if len(anchors) > 1:
            gram = anchors @ anchors.T
            n = len(anchors)
            result[f"pairwise_cosine_{side}"] = float((gram.sum() - gram.diagonal().sum()) / (n * (n - 1)))
    return result


def embed_rows(embedder: Embedder, rows: list[dict]) -> dict[str, torch.Tensor]:
    """`embed_rows` output for dataset rows (`audio`, `caption`, optional `neg_caption` / `neg_audio`),
    through an `Embedder`, so repeated files and captions are embedded once (and cached on disk).

    Args:
        embedder: the model with its embedding cache.
        rows: e.g. from `mixup_rows` or `read_pairs`.
    """
    with_text = [i for i, r in enumerate(rows) if r.get("neg_caption")]
    with_audio = [i for i, r in enumerate(rows) if r.get("neg_audio")]
    e = {"audio": embedder.audio([r["audio"] for r in rows]), "text": embedder.text([r["caption"] for r in rows]),
         "neg_text_index": torch.tensor(with_text, dtype=torch.long),
         "neg_audio_index": torch.tensor(with_audio, dtype=torch.long)}
    e["neg_text"] = embedder.text([rows[i]["neg_caption"] for i in with_text]) if with_text else e["text"][:0]
    e["neg_audio"] = embedder.audio([rows[i]["neg_audio"] for i in with_audio]) if with_audio else e["audio"][:0]
    return e


def t_classify(encoder: ClapEncoder, rows: list[dict], batch_size: int = 32) -> dict[str, float]:
    """T2A and A2T T-Classify accuracy (%) over the rows that have the needed negative.

    Embeddings are computed afresh (in memory only): this is what training validation calls on a
    model whose weights change between calls.

    Args:
        encoder: the model.
        rows: e.g. `mixup_rows(root, "val")[0]`.
        batch_size: files or captions per forward pass.
    """
    t2a, a2t = tclassify_decisions(embed_rows(Embedder(encoder, batch_size=batch_size), rows))
    result = {}
    if len(t2a):
        result["tclassify_t2a"] = 100.0 * float(t2a.mean())
    if len(a2t):
        result["tclassify_a2t"] = 100.0 * float(a2t.mean())
    return result


def t_classify_breakdown(e: dict[str, torch.Tensor], records: list[dict]) -> dict[str, float]:
    """T-Classify and CompA-order scores of a mixed-up split: overall and by subgroup.

    Subgroups: phrasing seen / unseen in training, before/after phrasings, number of events and, where
    the records say it (`word_order_reversed`, manifests since 2026-11), captions that name the events
    against their time order ("{1} after {0}"), overall and among the unseen phrasings, beside the
    unseen ones that name them in time order. A text tower that goes by the order of mention on the
    unseen phrasings is right on the latter and wrong on the former. Where the records name their
    template (`phrasing`), each template is a subgroup too (`_phrasing[{1} comes after {0}]`).
    Keys: `tclassify_t2a`, `tclassify_a2t`, `compa_text`, `compa_audio`, `compa_group` (%), and the item
    count `n_items`, each with a subgroup suffix (`_seen_phrasing`, `_unseen_phrasing`, `_before_after`,
    `_2_events`, ..., `_reversed_wording`, `_unseen_reversed_wording`, `_unseen_time_order_wording`,
    `_phrasing[<template>]`) for the subgroups; an empty subgroup has no keys.

    Args:
        e: `embed_rows` output for the split's clips, in manifest order.
        records: their manifest records (`phrasing_seen`, `before_after`, `n_events`, optionally
            `word_order_reversed` and `phrasing`).
    """
    t2a, a2t = tclassify_decisions(e)
    compa = compa_order_decisions(e)
    scores = {"tclassify_t2a": (t2a, e["neg_text_index"]), "tclassify_a2t": (a2t, e["neg_audio_index"]),
              **{f"compa_{k}": (compa[k], compa["index"]) for k in ("text", "audio", "group")}}
    groups = {"": [True] * len(records),
              "_seen_phrasing": [r["phrasing_seen"] for r in records],
              "_unseen_phrasing": [not r["phrasing_seen"] for r in records],
              "_before_after": [r["before_after"] for r in records]}
    for n in sorted({r["n_events"] for r in records}):
        groups[f"_{n}_events"] = [r["n_events"] == n for r in records]
    if records and all("word_order_reversed" in r for r in records):
        groups["_reversed_wording"] = [r["word_order_reversed"] for r in records]
        groups["_unseen_reversed_wording"] = [r["word_order_reversed"] and not r["phrasing_seen"] for r in records]
        groups["_unseen_time_order_wording"] = [not (r["word_order_reversed"] or r["phrasing_seen"])
                                                for r in records]
    if records and all("phrasing" in r for r in records):
        for phrasing in sorted({r["phrasing"] for r in records}):
            groups[f"_phrasing[{phrasing}]"] = [r["phrasing"] == phrasing for r in records]
    result = {}
    for suffix, mask in groups.items():
        mask = torch.tensor(mask)
        if not mask.any():
            continue
        for name, (outcome, index) in scores.items():
            chosen = outcome[mask[index]]
            if len(chosen):
                result[name + suffix] = 100.0 * float(chosen.mean())
        result[f"n{suffix or '_items'}"] = int(mask.sum())
    return result
