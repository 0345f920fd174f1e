"""Event-order accuracy of generated clips, from frame-level event activity.

The STEAM paper's text is not in our paper folder, so the definitions are ours, stated here:

- A detected *segment* of a class is a run of consecutive active frames of that class; runs
  separated by at most `merge_gap` inactive frames count as one (detector flicker).
- A prompt asks for events e_1, ..., e_n in that order; a class may be asked for more than once.
  The k-th request of a class is matched to the k-th detected segment of that class, and the
  request's onset is that segment's first frame.
- A clip has *all events detected* when every class has at least as many segments as requests.
- A clip is *in order* when all events are detected and the matched onsets strictly increase
  (two requested events starting on the same frame are not in order).

Reported: the share of clips with all events detected, and the share in order (out of all clips,
so in_order <= all_detected).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tclap.errors import DataError


@dataclass(frozen=True)
class OrderScores:
    """Shares of clips with every requested event detected, and with them in the requested order."""

    clips: int
    all_detected: float
    in_order: float


def segment_onsets(active: np.ndarray, merge_gap: int = 0) -> list[int]:
    """First frames of the runs of True in one class's activity, merging runs split by short gaps.

    Args:
        active: (T,) booleans.
        merge_gap: runs separated by at most this many inactive frames are one segment.
    """
    frames = np.flatnonzero(np.asarray(active, dtype=bool))
    if frames.size == 0:
        return []
    starts = [int(frames[0])]
    for previous, frame in zip(frames[:-1], frames[1:]):
        if frame - previous - 1 > merge_gap:
            starts.append(int(frame))
    return starts


def requested_onsets(active: np.ndarray, events: Sequence[int], merge_gap: int = 0) -> list[int | None]:
    """Onset frame matched to each requested event, None where the class has too few segments.

    Args:
        active: (T, C) booleans, frame-level activity of each class.
        events: requested class indices, in the requested order.
        merge_gap: see `segment_onsets`.
    """
    active = np.asarray(active, dtype=bool)
    if active.ndim != 2:
        raise DataError(f"activity: need a (frames, classes) array, got shape {active.shape}")
    bad = [e for e in events if not 0 <= e < active.shape[1]]
    if bad:
        raise DataError(f"events: class indices {bad} outside 0..{active.shape[1] - 1}")
    onsets: dict[int, list[int]] = {}
    seen: dict[int, int] = {}
    matched: list[int | None] = []
    for event in events:
        if event not in onsets:
            onsets[event] = segment_onsets(active[:, event], merge_gap)
        k = seen.get(event, 0)
        seen[event] = k + 1
        matched.append(onsets[event][k] if k < len(onsets[event]) else None)
    return matched


def clip_in_order(active: np.ndarray, events: Sequence[int], merge_gap: int = 0) -> tuple[bool, bool]:
    """(all events detected, in the requested order) for one clip.

    Args:
        active: (T, C) booleans.
        events: requested class indices, in order.
        merge_gap: see `segment_onsets`.
    """
    onsets = requested_onsets(active, events, merge_gap)
    if any(onset is None for onset in onsets):
        return False, False
    return True, all(a < b for a, b in zip(onsets[:-1], onsets[1:]))


def order_accuracy(activities: Sequence[np.ndarray], requests: Sequence[Sequence[int]],
                   merge_gap: int = 0) -> OrderScores:
    """Event-order accuracy over a set of generated clips.

    Args:
        activities: per clip, (T, C) booleans from a detector.
        requests: per clip, the requested class indices in order.
        merge_gap: see `segment_onsets`.
    """
    if len(activities) != len(requests) or not activities:
        raise DataError(f"order accuracy: {len(activities)} activity matrices for {len(requests)} "
                        "requests; need the same non-zero number")
    results = [clip_in_order(a, r, merge_gap) for a, r in zip(activities, requests)]
    return OrderScores(clips=len(results), all_detected=float(np.mean([d for d, _ in results])),
                       in_order=float(np.mean([o for _, o in results])))
