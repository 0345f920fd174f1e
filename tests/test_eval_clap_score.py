"""CLAP score on hand-chosen embeddings."""
from __future__ import annotations

import math

import pytest

from tclap_eval.clap_score import check_judge, clap_scores
from fake_embedder import DictEmbedder
from tclap.errors import DataError


def test_scores_are_the_cosines_of_each_clip_with_its_own_prompt():
    embedder = DictEmbedder(audio={"a.wav": [1.0, 0.0], "b.wav": [3.0, 4.0]},
                            text={"beep then siren": [2.0, 0.0], "siren then beep": [0.0, 1.0]})
    scores = clap_scores(embedder, ["a.wav", "b.wav"], ["beep then siren", "siren then beep"])
    # a . t1 = 1 (parallel); b = (0.6, 0.8) against (0, 1): 0.8. Unnormalised inputs are normalised first.
    assert scores.tolist() == pytest.approx([1.0, 0.8])
    swapped = clap_scores(embedder, ["a.wav", "b.wav"], ["siren then beep", "beep then siren"])
    assert swapped.tolist() == pytest.approx([0.0, 0.6])
    assert math.isclose(float(scores.mean()), 0.9, rel_tol=1e-6)


def test_mismatched_counts_and_a_judge_under_test_are_refused(tmp_path):
    embedder = DictEmbedder(audio={"a.wav": [1.0, 0.0]}, text={"x": [1.0, 0.0]})
    with pytest.raises(DataError, match="1 clips for 2 prompts"):
        clap_scores(embedder, ["a.wav"], ["x", "x"])
    (tmp_path / "tclap").mkdir()
    with pytest.raises(DataError, match="judge is also a conditioning encoder"):
        check_judge(tmp_path / "tclap", [tmp_path / "clap", tmp_path / "tclap"])
    check_judge(tmp_path / "judge", [tmp_path / "clap", tmp_path / "tclap"])
