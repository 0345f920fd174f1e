"""Event-order accuracy of generated clips, from frame-level event activity (AudioTime's STEAM ordering).

A detector gives per-frame activity of each class. For each generated clip, the prompt asks for
events e_1, ..., e_n in that order (a class may be asked for more than once):

- A detected *segment* of a class is a run of consecutive active frames; runs separated by at most
  `merge_gap` inactive frames are one segment (detector flicker). The k-th request of a class is
  matched to that class's k-th segment.
- **non-detection**: some requested event has no segment.
- **occurrence error**: for some consecutive pair, the earlier-requested event's onset is not
  strictly before the later one's.
- **overlap error**: some consecutive pair's spans overlap by at least half of the shorter span.
- A clip is **in order** when it has none of the three. A clip with a missing event counts only as a
  non-detection (its other errors are undefined).

Reported over clips: the share in order (`order_accuracy`) and the share with each error, with each
clip's matched onsets and offsets (frames) kept for the per-prompt listing.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tclap.errors import DataError

Segment = tuple[int, int]  # first frame, one past the last frame


@dataclass(frozen=True)
class ClipOrder:
    """The verdict on one clip, with the segment matched to each requested event (None: not found)."""

    segments: list[Segment | None]
    non_detection: bool
    occurrence_error: bool
    overlap_error: bool

    @property
    def in_order(self) -> bool:
        return not (self.non_detection or self.occurrence_error or self.overlap_error)


@dataclass(frozen=True)
class OrderScores:
    """Shares of clips (0-1) in order and with each kind of error."""

    clips: int
    order_accuracy: float
    non_detection: float
    occurrence_error: float
    overlap_error: float


def segments(active: np.ndarray, merge_gap: int = 0) -> list[Segment]:
    """Runs of True in one class's activity, as (first, end) frames, merging runs split by short gaps.

    Args:
        active: (T,) booleans.
        merge_gap: runs separated by at most this many inactive frames are one segment.
    """
    frames = np.flatnonzero(np.asarray(active, dtype=bool))
    runs: list[list[int]] = []
    for frame in frames:
        if runs and frame - runs[-1][1] <= merge_gap:
            runs[-1][1] = int(frame) + 1
        else:
            runs.append([int(frame), int(frame) + 1])
    return [(first, end) for first, end in runs]


def requested_segments(active: np.ndarray, events: Sequence[int], merge_gap: int = 0) -> list[Segment | None]:
    """The segment matched to each requested event, None where its class has too few segments.

    Args:
        active: (T, C) booleans, frame-level activity of each class.
        events: requested class indices, in the requested order.
        merge_gap: see `segments`.
    """
    active = np.asarray(active, dtype=bool)
    if active.ndim != 2:
        raise DataError(f"activity: need a (frames, classes) array, got shape {active.shape}")
    bad = [e for e in events if not 0 <= e < active.shape[1]]
    if bad:
        raise DataError(f"events: class indices {bad} outside 0..{active.shape[1] - 1}")
    found = {e: segments(active[:, e], merge_gap) for e in set(events)}
    used: dict[int, int] = {}
    matched: list[Segment | None] = []
    for event in events:
        k = used.get(event, 0)
        used[event] = k + 1
        matched.append(found[event][k] if k < len(found[event]) else None)
    return matched


def _overlaps_half(a: Segment, b: Segment) -> bool:
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    return overlap > 0 and overlap >= 0.5 * min(a[1] - a[0], b[1] - b[0])


def judge_clip(active: np.ndarray, events: Sequence[int], merge_gap: int = 0) -> ClipOrder:
    """Non-detection, occurrence and overlap errors of one clip.

    Args:
        active: (T, C) booleans.
        events: requested class indices, in order.
        merge_gap: see `segments`.
    """
    matched = requested_segments(active, events, merge_gap)
    if any(s is None for s in matched):
        return ClipOrder(matched, True, False, False)
    pairs = list(zip(matched[:-1], matched[1:]))
    return ClipOrder(matched, False, any(a[0] >= b[0] for a, b in pairs), any(_overlaps_half(a, b) for a, b in pairs))


def order_accuracy(activities: Sequence[np.ndarray], requests: Sequence[Sequence[int]],
                   merge_gap: int = 0) -> tuple[OrderScores, list[ClipOrder]]:
    """Event-order scores over a set of generated clips, and the verdict on each.

    Args:
        activities: per clip, (T, C) booleans from a detector.
        requests: per clip, the requested class indices in order.
        merge_gap: see `segments`.
    """
    if len(activities) != len(requests) or not activities:
        raise DataError(f"order accuracy: {len(activities)} activity matrices for {len(requests)} "
                        "requests; need the same non-zero number")
    clips = [judge_clip(a, r, merge_gap) for a, r in zip(activities, requests)]
    scores = OrderScores(clips=len(clips), order_accuracy=float(np.mean([c.in_order for c in clips])),
                         non_detection=float(np.mean([c.non_detection for c in clips])),
                         occurrence_error=float(np.mean([c.occurrence_error for c in clips])),
                         overlap_error=float(np.mean([c.overlap_error for c in clips])))
    return scores, clips
