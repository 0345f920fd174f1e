"""Retrieval R@k and mAP@10, against hand-worked matrices and Mei et al.'s loop (LAION-CLAP's reference)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fake_embedder import DictEmbedder
from tclap.errors import DataError
from tclap.retrieval import retrieval_metrics, rows_retrieval

# 5 captions, 3 clips: captions 0, 1 -> clip 0; caption 2 -> clip 1; captions 3, 4 -> clip 2.
SIM = torch.tensor([[0.9, 0.1, 0.5],
                    [0.2, 0.8, 0.5],
                    [0.3, 0.7, 0.1],
                    [0.6, 0.1, 0.4],
                    [0.5, 0.6, 0.55]])
AUDIO_OF_TEXT = torch.tensor([0, 0, 1, 2, 2])


def test_hand_worked_example_with_several_captions_per_clip():
    m = retrieval_metrics(SIM, AUDIO_OF_TEXT)
    # T2A ranks of each caption's clip: 0, 2, 0, 1, 1
    assert m["t2a_R@1"] == pytest.approx(100 * 2 / 5)
    assert m["t2a_R@5"] == m["t2a_R@10"] == 100.0
    assert m["t2a_mAP@10"] == pytest.approx(100 * (1 + 1 / 3 + 1 + 1 / 2 + 1 / 2) / 5)
    # A2T: clip 0 ranks its captions at 0 and 4; clip 1 at 1 (0.1 tie between captions 0 and 3: lower index first);
    # clip 2 at 0 and 3 (0.5 tie between captions 0 and 1).
    assert m["a2t_R@1"] == pytest.approx(100 * 2 / 3)
    assert m["a2t_R@5"] == 100.0
    ap = [(1 / 1 + 2 / 5) / 2, (1 / 2) / 1, (1 / 1 + 2 / 4) / 2]
    assert m["a2t_mAP@10"] == pytest.approx(100 * np.mean(ap))
    assert (m["n_text"], m["n_audio"]) == (5, 3)


def test_ranks_from_10_on_count_as_misses():
    sim = torch.eye(12)
    sim[0] = torch.tensor([1.5] + [12.0 - j for j in range(1, 12)])  # clip 0 is 11th for caption 0
    m = retrieval_metrics(sim, torch.arange(12))
    assert m["t2a_R@10"] == pytest.approx(100 * 11 / 12)
    assert m["t2a_mAP@10"] == pytest.approx(100 * 11 / 12)
    # every clip j >= 1 sees caption 0 above its own caption (position 1; the 1.0 tie for clip 11 too)
    assert m["a2t_R@1"] == pytest.approx(100 / 12)
    assert m["a2t_mAP@10"] == pytest.approx(100 * (1 + 11 * 0.5) / 12)


def mei_reference(sim_audio_text: np.ndarray) -> dict[str, float]:
    """Mei et al.'s a2t/t2a (audio-text_retrieval tools/utils.py), 5 consecutive captions per clip."""
    n = sim_audio_text.shape[0]
    best, ap = np.zeros(n), np.zeros(n)
    for index in range(n):
        order = np.argsort(sim_audio_text[index])[::-1]
        found = sorted(int(np.where(order == i)[0][0]) for i in range(5 * index, 5 * index + 5))
        best[index] = found[0]
        hits = np.array([r + 1 for r in found if r < 10])
        ap[index] = np.sum(np.arange(1, len(hits) + 1) / hits) / 5 if len(hits) else 0.0
    ranks = np.zeros(5 * n)
    for index in range(n):
        for i in range(5 * index, 5 * index + 5):
            order = np.argsort(sim_audio_text[:, i])[::-1]
            ranks[i] = np.where(order == index)[0][0]
    return {"a2t_R@1": 100 * np.mean(best < 1), "a2t_R@10": 100 * np.mean(best < 10), "a2t_mAP@10": 100 * ap.mean(),
            "t2a_R@1": 100 * np.mean(ranks < 1), "t2a_R@5": 100 * np.mean(ranks < 5),
            "t2a_mAP@10": 100 * np.mean(np.where(ranks < 10, 1 / (ranks + 1), 0.0))}


def test_matches_the_reference_loop_on_a_random_clotho_like_set():
    generator = torch.Generator().manual_seed(0)
    audio = torch.nn.functional.normalize(torch.randn(30, 8, generator=generator), dim=-1)
    text = torch.nn.functional.normalize(audio.repeat_interleave(5, 0) + torch.randn(150, 8, generator=generator),
                                         dim=-1)
    ours = retrieval_metrics(text @ audio.T, torch.arange(30).repeat_interleave(5))
    reference = mei_reference((audio @ text.T).double().numpy())
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value), key
    assert 0 < ours["a2t_mAP@10"] < 100 and 0 < ours["t2a_R@1"] < 100


def test_rows_sharing_an_audio_path_are_one_clip():
    embedder = DictEmbedder(audio={"x.wav": [1, 0], "y.wav": [0, 1]},
                            text={"x one": [1, 0.1], "x two": [0.2, 1], "y": [0.3, 1]})
    rows = [{"audio": "d/x.wav", "caption": "x one"}, {"audio": "d/y.wav", "caption": "y"},
            {"audio": "d/x.wav", "caption": "x two"}]
    m = rows_retrieval(embedder, rows, "manifest.csv")
    assert m["n_audio"] == 2 and m["n_text"] == 3
    assert m["t2a_R@1"] == pytest.approx(100 * 2 / 3)       # "x two" is closer to y.wav
    # clip x ranks its captions at 0 and 2 ("y" is between); clip y ranks "y" at 0 ("x two" ties, comes later)
    assert m["a2t_mAP@10"] == pytest.approx(100 * ((1 + 2 / 3) / 2 + 1) / 2)
    with pytest.raises(DataError, match="manifest.csv: no captions"):
        rows_retrieval(embedder, [], "manifest.csv")
