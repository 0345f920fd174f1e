"""audioldm_eval's paired KL: hand-computed examples, scipy's rel_entr, and stem pairing."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, rel_entr, softmax

from tclap_eval.kl import EPS, pair_by_stem, paired_kl
from tclap.errors import DataError


def test_hand_computed_two_class_example():
    # logits [log 3, 0] -> p = (3/4, 1/4); logits [0, 0] -> q = (1/2, 1/2)
    ref, gen = {"a": np.array([np.log(3.0), 0.0])}, {"a": np.array([0.0, 0.0])}
    expected = 0.75 * np.log(0.75 / (0.5 + EPS)) + 0.25 * np.log(0.25 / (0.5 + EPS))
    assert paired_kl(ref, gen).softmax == pytest.approx(expected, rel=1e-9)


def test_direction_is_reference_to_generated():
    ref, gen = {"a": np.array([2.0, 0.0, -1.0])}, {"a": np.array([0.0, 1.0, 0.0])}
    forward, backward = paired_kl(ref, gen).softmax, paired_kl(gen, ref).softmax
    p, q = softmax(ref["a"]), softmax(gen["a"])
    assert forward == pytest.approx(rel_entr(p, q + EPS).sum(), rel=1e-6)
    assert forward != pytest.approx(backward, rel=1e-3)


def test_mean_over_clips_matches_rel_entr():
    rng = np.random.default_rng(0)
    ref = {f"clip{i}": rng.standard_normal(527) * 3 for i in range(4)}
    gen = {f"clip{i}": rng.standard_normal(527) * 3 for i in range(4)}
    scores = paired_kl(ref, gen)
    softmax_expected = np.mean([rel_entr(softmax(ref[k]), softmax(gen[k]) + EPS).sum() for k in ref])
    sigmoid_expected = np.mean([np.sum(expit(ref[k]) * np.log(expit(ref[k]) / (expit(gen[k]) + EPS)))
                                for k in ref])
    assert scores.pairs == 4
    assert scores.softmax == pytest.approx(softmax_expected, rel=1e-9)
    assert scores.sigmoid == pytest.approx(sigmoid_expected, rel=1e-9)


def test_extreme_logits_stay_finite():
    ref, gen = {"a": np.array([-900.0, 900.0])}, {"a": np.array([900.0, -900.0])}
    scores = paired_kl(ref, gen)
    assert np.isfinite(scores.softmax) and np.isfinite(scores.sigmoid)
    assert scores.softmax == pytest.approx(-np.log(EPS), rel=1e-6)  # all mass on a class q gives 0


def test_unpaired_clips_are_named():
    ref = {"a": np.zeros(3), "b": np.zeros(3)}
    gen = {"a": np.zeros(3), "c": np.zeros(3)}
    with pytest.raises(DataError, match=r"no generated clip: b.*no reference: c"):
        paired_kl(ref, gen)


def test_pair_by_stem_matches_across_extensions_and_folders():
    pairs = pair_by_stem(["ref/x.wav", "ref/y.wav"], ["gen/y.flac", "gen/x.wav"])
    assert [(str(r), str(g)) for r, g in pairs] == [("ref/x.wav", "gen/x.wav"), ("ref/y.wav", "gen/y.flac")]
    with pytest.raises(DataError, match="share the stem 'x'"):
        pair_by_stem(["a/x.wav", "b/x.wav"], ["x.wav"])
    with pytest.raises(DataError, match="no reference: z"):
        pair_by_stem(["x.wav"], ["x.wav", "z.wav"])


def test_pairing_above_99_percent_scores_the_pairs_and_names_the_rest():
    ref = {f"c{i:03d}": np.array([0.0, 1.0]) for i in range(200)}
    gen = {k: v for k, v in ref.items() if k not in ("c007", "c100")}  # 198 of 200: 99 %
    with pytest.warns(UserWarning, match="198 pairs.*no generated clip: c007, c100"):
        assert paired_kl(ref, gen).pairs == 198
    del gen["c150"]  # 197 of 200: below 99 %
    with pytest.raises(DataError, match=r"197 of 200 clips paired, 99% needed.*c007, c100, c150"):
        paired_kl(ref, gen)


def test_waveforms_of_one_prompt_pair_with_its_reference_and_an_ambiguous_stem_is_refused():
    pairs = pair_by_stem(["ref/a.wav", "ref/b.wav"], ["g/a_0.wav", "g/a_1.wav", "g/b_0.wav", "g/b.wav"])
    assert [(r.name, g.name) for r, g in pairs] == [("a.wav", "a_0.wav"), ("a.wav", "a_1.wav"), ("b.wav", "b.wav"),
                                                    ("b.wav", "b_0.wav")]
    with pytest.raises(DataError, match="no reference: a_x"):
        pair_by_stem(["a.wav"], ["a_0.wav", "a_x.wav"])  # only digits after the last "_" name a waveform
    with pytest.raises(DataError, match="'b_1' is both an id of its own and waveform 1 of 'b'"):
        pair_by_stem(["ref/b.wav", "ref/b_1.wav"], ["g/b_0.wav", "g/b_1.wav"])


def test_kl_over_waveforms_is_the_mean_of_one_term_per_waveform():
    ref = {"a": np.array([2.0, 0.0]), "b": np.array([0.0, 1.0])}
    gen = {"a_0": np.array([1.0, 0.0]), "a_1": np.array([0.0, 0.0]), "b_0": np.array([0.0, 3.0])}
    terms = [rel_entr(softmax(r), softmax(g)).sum() for r, g in
             ((ref["a"], gen["a_0"]), (ref["a"], gen["a_1"]), (ref["b"], gen["b_0"]))]
    scores = paired_kl(ref, gen)
    assert scores.pairs == 3 and scores.softmax == pytest.approx(np.mean(terms), abs=1e-5)  # EPS 1e-6 offset
