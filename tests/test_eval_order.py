"""Event-order accuracy on hand-built activity matrices."""
from __future__ import annotations

import numpy as np
import pytest

from eval.order import clip_in_order, order_accuracy, requested_onsets, segment_onsets
from tclap.errors import DataError


def _activity(frames: int, classes: int, spans: list[tuple[int, int, int]]) -> np.ndarray:
    """(class, first, last) inclusive spans -> (frames, classes) booleans."""
    active = np.zeros((frames, classes), dtype=bool)
    for c, first, last in spans:
        active[first:last + 1, c] = True
    return active


def test_segments_and_gap_merging():
    column = np.array([0, 1, 1, 0, 0, 1, 0, 1, 1], dtype=bool)
    assert segment_onsets(column) == [1, 5, 7]
    assert segment_onsets(column, merge_gap=1) == [1, 5]
    assert segment_onsets(column, merge_gap=2) == [1]
    assert segment_onsets(np.zeros(4, dtype=bool)) == []


def test_in_order_and_reversed():
    active = _activity(20, 3, [(0, 2, 6), (2, 10, 15)])
    assert clip_in_order(active, [0, 2]) == (True, True)
    assert clip_in_order(active, [2, 0]) == (True, False)


def test_missing_event_is_neither_detected_nor_in_order():
    active = _activity(20, 3, [(0, 2, 6)])
    assert clip_in_order(active, [0, 1]) == (False, False)


def test_tied_onsets_are_not_in_order():
    active = _activity(20, 3, [(0, 4, 8), (1, 4, 12)])
    assert clip_in_order(active, [0, 1]) == (True, False)
    assert clip_in_order(active, [1, 0]) == (True, False)


def test_overlapping_events_are_ordered_by_onset():
    active = _activity(20, 3, [(0, 2, 12), (1, 5, 18)])
    assert clip_in_order(active, [0, 1]) == (True, True)


def test_repeated_events_match_segments_in_turn():
    active = _activity(30, 2, [(0, 1, 4), (1, 8, 12), (0, 18, 22)])  # A B A
    assert requested_onsets(active, [0, 1, 0]) == [1, 8, 18]
    assert clip_in_order(active, [0, 1, 0]) == (True, True)
    assert clip_in_order(active, [1, 0, 0]) == (True, False)
    single_a = _activity(30, 2, [(0, 1, 4), (1, 8, 12)])
    assert clip_in_order(single_a, [0, 1, 0]) == (False, False)


def test_order_accuracy_shares():
    good = _activity(20, 2, [(0, 1, 5), (1, 8, 12)])
    reversed_ = _activity(20, 2, [(1, 1, 5), (0, 8, 12)])
    missing = _activity(20, 2, [(0, 1, 5)])
    scores = order_accuracy([good, reversed_, missing, good], [[0, 1]] * 4)
    assert scores.clips == 4
    assert scores.all_detected == pytest.approx(0.75)
    assert scores.in_order == pytest.approx(0.5)


def test_bad_input_is_a_data_error():
    with pytest.raises(DataError, match="outside"):
        clip_in_order(np.zeros((5, 2), dtype=bool), [0, 2])
    with pytest.raises(DataError, match="same non-zero number"):
        order_accuracy([np.zeros((5, 2), dtype=bool)], [])
