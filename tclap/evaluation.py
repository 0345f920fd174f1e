"""Encoder evaluation: embeddings of a dataset, and T-Classify (paper §3.3).

T-Classify T2A: share of items with sim(a, t+) > sim(a, t-). A2T: share of items with
sim(a+, t) > sim(a-, t). Reported as percentages.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from tclap.data.datasets import AudioTextCollator
from tclap.model import ClapEncoder


@torch.no_grad()
def embed_pairs(encoder: ClapEncoder, dataset, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Unit embeddings of every item's audio, caption, and (where present) negative caption and audio.

    Returns `audio`, `text` (N, D); `neg_text` (K, D) with `neg_text_index` (K,); `neg_audio` (M, D)
    with `neg_audio_index` (M,).
    """
    was_training = encoder.training
    encoder.eval()
    parts: dict[str, list] = {k: [] for k in ("audio", "text", "neg_text", "neg_text_index", "neg_audio",
                                               "neg_audio_index")}
    offset = 0
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=AudioTextCollator()):
        if batch["skipped"]:
            raise ValueError(f"unreadable evaluation sample(s): {batch['skipped'][:3]}")
        texts = encoder.tokenize(batch["captions"] + batch["neg_captions"])
        text = encoder.text_embeds(texts["input_ids"], texts["attention_mask"])
        audio = encoder.audio_embeds(torch.cat([batch["audio"], batch["neg_audio"]]))
        b = len(batch["captions"])
        parts["audio"].append(audio[:b])
        parts["text"].append(text[:b])
        parts["neg_text"].append(text[b:])
        parts["neg_text_index"].append(batch["neg_caption_index"] + offset)
        parts["neg_audio"].append(audio[b:])
        parts["neg_audio_index"].append(batch["neg_audio_index"] + offset)
        offset += b
    encoder.train(was_training)
    return {k: torch.cat(v) for k, v in parts.items()}


def tclassify_decisions(e: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-item T-Classify outcomes (1.0 = right) from `embed_pairs` output.

    Returns T2A over the items with a negative caption (K,) and A2T over those with a negative audio (M,),
    in the order of `neg_text_index` and `neg_audio_index`.
    """
    audio, text = e["audio"][e["neg_text_index"]], e["text"][e["neg_text_index"]]
    t2a = ((audio * text).sum(-1) > (audio * e["neg_text"]).sum(-1)).float()               # (K,)
    text, audio = e["text"][e["neg_audio_index"]], e["audio"][e["neg_audio_index"]]
    a2t = ((text * audio).sum(-1) > (text * e["neg_audio"]).sum(-1)).float()               # (M,)
    return t2a, a2t


def t_classify(encoder: ClapEncoder, dataset, batch_size: int = 32) -> dict[str, float]:
    """T2A and A2T T-Classify accuracy (%) over the items that have the needed negative."""
    t2a, a2t = tclassify_decisions(embed_pairs(encoder, dataset, batch_size))
    result = {}
    if len(t2a):
        result["tclassify_t2a"] = 100.0 * float(t2a.mean())
    if len(a2t):
        result["tclassify_a2t"] = 100.0 * float(a2t.mean())
    return result


def t_classify_breakdown(encoder: ClapEncoder, root, split: str = "test", batch_size: int = 32) -> dict[str, float]:
    """T-Classify on a mixed-up split: overall, and by phrasing seen / unseen in training and before/after.

    Args:
        encoder: the model.
        root: a folder built by `tclap mixup`.
        split: which split to score.
        batch_size: clips per forward pass.
    """
    from tclap.data.datasets import AudioWindow, MixupClips

    window = AudioWindow(encoder.sample_rate, encoder.window / encoder.sample_rate, train=False)
    clips = MixupClips(root, split, window)
    t2a, a2t = tclassify_decisions(embed_pairs(encoder, clips, batch_size))  # every clip has both negatives: (N,)
    groups = {"": [True] * len(clips.records),
              "_seen_phrasing": [r["phrasing_seen"] for r in clips.records],
              "_unseen_phrasing": [not r["phrasing_seen"] for r in clips.records],
              "_before_after": [r["before_after"] for r in clips.records]}
    result = {}
    for suffix, mask in groups.items():
        mask = torch.tensor(mask)
        if mask.any():
            result[f"tclassify_t2a{suffix}"] = 100.0 * float(t2a[mask].mean())
            result[f"tclassify_a2t{suffix}"] = 100.0 * float(a2t[mask].mean())
            result[f"n{suffix or '_items'}"] = int(mask.sum())
    return result
