"""Event-order accuracy (STEAM ordering errors) on hand-built activity matrices."""
from __future__ import annotations

import numpy as np
import pytest

from tclap_eval.order import (detected_spans, judge_clip, order_accuracy, requested_segments, segment_f1,
                              segments)
from tclap.errors import DataError


def _activity(frames: int, classes: int, spans: list[tuple[int, int, int]]) -> np.ndarray:
    """(class, first, last) inclusive spans -> (frames, classes) booleans."""
    active = np.zeros((frames, classes), dtype=bool)
    for c, first, last in spans:
        active[first:last + 1, c] = True
    return active


def _errors(clip) -> tuple[bool, bool, bool, bool]:
    return clip.non_detection, clip.occurrence_error, clip.overlap_error, clip.in_order


def test_segments_and_gap_merging():
    column = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1], dtype=bool)
    assert segments(column) == [(1, 3), (5, 6), (7, 9)]
    assert segments(column, merge_gap=1) == [(1, 3), (5, 9)]
    assert segments(column, merge_gap=2) == [(1, 9)]
    assert segments(np.zeros(4, dtype=bool)) == []


def test_in_order_and_reversed():
    active = _activity(20, 3, [(0, 2, 6), (2, 10, 15)])
    assert _errors(judge_clip(active, [0, 2])) == (False, False, False, True)
    assert _errors(judge_clip(active, [2, 0])) == (False, True, False, False)
    assert judge_clip(active, [0, 2]).segments == [(2, 7), (10, 16)]


def test_missing_event_is_only_a_non_detection():
    active = _activity(20, 3, [(0, 2, 6)])
    assert _errors(judge_clip(active, [0, 1])) == (True, False, False, False)
    assert judge_clip(active, [0, 1]).segments == [(2, 7), None]


def test_tied_onsets_are_an_occurrence_error():
    active = _activity(20, 3, [(0, 4, 8), (1, 4, 12)])
    assert judge_clip(active, [0, 1]).occurrence_error and judge_clip(active, [1, 0]).occurrence_error


def test_overlap_error_at_half_the_shorter_span():
    # A = frames 0-9 (10), B = frames 5-8 (4): overlap 4 >= 2 -> error, though A starts first.
    assert _errors(judge_clip(_activity(20, 2, [(0, 0, 9), (1, 5, 8)]), [0, 1])) == (False, False, True, False)
    # A = 0-9 (10), B = 8-17 (10): overlap 2 < 5 -> in order.
    assert judge_clip(_activity(20, 2, [(0, 0, 9), (1, 8, 17)]), [0, 1]).in_order
    # A = 0-9, B = 5-14: overlap 5 = half of 10 -> error.
    assert judge_clip(_activity(20, 2, [(0, 0, 9), (1, 5, 14)]), [0, 1]).overlap_error


def test_repeated_events_match_segments_in_turn():
    active = _activity(30, 2, [(0, 1, 4), (1, 8, 12), (0, 18, 22)])  # A B A
    assert requested_segments(active, [0, 1, 0]) == [(1, 5), (8, 13), (18, 23)]
    assert judge_clip(active, [0, 1, 0]).in_order
    assert judge_clip(active, [1, 0, 0]).occurrence_error
    single_a = _activity(30, 2, [(0, 1, 4), (1, 8, 12)])
    assert judge_clip(single_a, [0, 1, 0]).non_detection


def test_order_accuracy_shares():
    good = _activity(20, 2, [(0, 1, 5), (1, 8, 12)])
    reversed_ = _activity(20, 2, [(1, 1, 5), (0, 8, 12)])
    missing = _activity(20, 2, [(0, 1, 5)])
    overlapping = _activity(20, 2, [(0, 1, 12), (1, 3, 10)])
    scores, clips = order_accuracy([good, reversed_, missing, overlapping, good], [[0, 1]] * 5)
    assert scores.clips == 5 and len(clips) == 5
    assert scores.order_accuracy == pytest.approx(0.4)
    assert (scores.non_detection, scores.occurrence_error, scores.overlap_error) == pytest.approx((0.2, 0.2, 0.2))


def test_bad_input_is_a_data_error():
    with pytest.raises(DataError, match="outside"):
        judge_clip(np.zeros((5, 2), dtype=bool), [0, 2])
    with pytest.raises(DataError, match="same non-zero number"):
        order_accuracy([np.zeros((5, 2), dtype=bool)], [])
    with pytest.raises(DataError, match="frames, classes"):
        judge_clip(np.zeros(5, dtype=bool), [0])


def test_segment_f1_is_sed_evals_segment_based_score_by_hand():
    """1-s segments; an event covers floor(onset) .. ceil(offset) - 1; classes the reference lacks are ignored."""
    references = [{"a": [(0.5, 2.2)], "b": [(3.0, 4.0)]}, {"a": [(0.0, 1.0)]}]
    estimates = [{"a": [(0.0, 1.0)], "b": [(2.5, 4.0)], "c": [(0.0, 4.0)]}, {}]
    # clip 1 (4 segments): a ref {0,1,2} est {0}: TP 1, FN 2; b ref {3} est {2,3}: TP 1, FP 1. clip 2: a FN 1.
    scores = segment_f1(references, estimates)
    assert scores == pytest.approx({"segment_precision": 2 / 3, "segment_recall": 2 / 5, "segment_f1": 4 / 8})
    assert segment_f1(references[:1], references[:1])["segment_f1"] == 1.0
    with pytest.raises(DataError, match="2 reference clips for 1 detected"):
        segment_f1(references, estimates[:1])


def test_detected_spans_are_each_wanted_classes_segments_in_seconds():
    active = _activity(20, 3, [(0, 2, 4), (0, 10, 11), (2, 5, 7)])
    assert detected_spans(active, ["a", "b", "c"], ["a", "b"], frame_seconds=0.5) == {
        "a": [(1.0, 2.5), (5.0, 6.0)], "b": []}
