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

Reported over clips: the share in order (`order_accuracy`), its complement STEAM's *ordering error
rate*, and the share with each error, with each clip's matched onsets and offsets (frames) kept for
the per-prompt listing. STEAM takes each class's whole span (first onset to last offset of all its
detections) where this matches the k-th segment to the k-th request; for two distinct events the
onsets, and so the occurrence error, are the same.

Prompts may be an AudioTime test-caption JSON (`tclap.data.benchmarks.read_audiotime`): the events in
order of first onset are the request, and their reference spans are also scored as STEAM's timestamp
task does, by segment-based F1 (Mesaros, Heittola & Virtanen 2016, "Metrics for polyphonic sound
event detection", as `sed_eval.sound_event.SegmentBasedMetrics` computes it with 1-s segments): per
1-s segment and referenced class, active in the reference vs detected, counted over all clips.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tclap_eval.embedders import SCORERS, audio_files, files_by_stem, load_scorer, min_seconds, reference_stem
from tclap.audio import load_audio, strict_audio
from tclap.csv_rows import jsonl_rows
from tclap.data.benchmarks import read_audiotime
from tclap.errors import DataError

Segment = tuple[int, int]  # first frame, one past the last frame
Spans = dict[str, list[tuple[float, float]]]  # class -> (onset, offset) seconds


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


def segment_f1(references: Sequence[Spans], estimates: Sequence[Spans], resolution: float = 1.0) -> dict[str, float]:
    """Segment-based precision, recall and F1 of detected spans against reference spans, over all clips
    (sed_eval's overall `SegmentBasedMetrics`, STEAM's timestamp score).

    A clip is cut into `resolution`-second segments up to its last offset (reference or detected); an
    event covers segments floor(onset / resolution) to ceil(offset / resolution) - 1. For each segment
    and each class the clip's reference names, a segment active in both counts as a true positive,
    only detected as a false positive, only in the reference as a false negative; detections of other
    classes are ignored.

    Args:
        references: per clip, class -> reference (onset, offset) seconds.
        estimates: per clip, class -> detected (onset, offset) seconds.
        resolution: segment length in seconds.
    """
    if len(references) != len(estimates):
        raise DataError(f"segment F1: {len(references)} reference clips for {len(estimates)} detected")
    tp = fp = fn = 0
    for reference, estimate in zip(references, estimates):
        ends = [off for spans in (*reference.values(), *estimate.values()) for _, off in spans]
        n = math.ceil(max(ends, default=0.0) / resolution)
        for label in reference:
            truth, found = (_segment_roll(spans.get(label, []), n, resolution) for spans in (reference, estimate))
            tp += int((truth & found).sum())
            fp += int((~truth & found).sum())
            fn += int((truth & ~found).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {"segment_precision": precision, "segment_recall": recall, "segment_f1": f1}


def _segment_roll(spans: list[tuple[float, float]], n: int, resolution: float) -> np.ndarray:
    roll = np.zeros(n, dtype=bool)
    for onset, offset in spans:
        roll[math.floor(onset / resolution):math.ceil(offset / resolution)] = True
    return roll


def detected_spans(active: np.ndarray, classes: list[str], wanted: Sequence[str], frame_seconds: float,
                   merge_gap: int = 0) -> Spans:
    """Every detected segment of each `wanted` class, in seconds.

    Args:
        active: (T, C) booleans.
        classes: the detector's class names (C).
        wanted: the classes to report.
        frame_seconds: the detector's frame hop.
        merge_gap: see `segments`.
    """
    return {label: [(a * frame_seconds, b * frame_seconds)
                    for a, b in segments(active[:, classes.index(label)], merge_gap)] for label in wanted}


def verdict_row(verdict: ClipOrder, frame_seconds: float) -> dict:
    """One clip's verdict as a table row, with each requested event's onset in seconds ("-": missing)."""
    return {"in_order": verdict.in_order, "non_detection": verdict.non_detection,
            "occurrence_error": verdict.occurrence_error, "overlap_error": verdict.overlap_error,
            "onsets_s": " ".join("-" if s is None else f"{s[0] * frame_seconds:.2f}" for s in verdict.segments)}


def write_rows(path: str | Path, rows: list[dict]) -> None:
    """One CSV row per clip (the columns are the first row's keys)."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_requests(path: str | Path) -> dict[str, list[str]]:
    """Clip id -> requested event classes in order, from a JSON-lines file with `id` and `events` (an
    AudioTime .json is read by `read_audiotime`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: prompts file not found")
    requests = {}
    for where, row in jsonl_rows(path):
        if not row.get("id") or not isinstance(row.get("events"), list) or not row["events"]:
            raise DataError(f"{where}: needs an `id` and a non-empty `events` list of classes")
        requests[str(row["id"])] = [str(e) for e in row["events"]]
    if not requests:
        raise DataError(f"{path}: no prompts")
    return requests


def main(argv: list[str] | None = None) -> None:
    """`python eval/order.py CLIPS_DIR --prompts prompts.jsonl|audiotime.json --detector FILE [--csv clips.csv]`."""
    parser = argparse.ArgumentParser(description="Event-order accuracy (STEAM ordering errors) of generated clips.")
    parser.add_argument("clips", help="folder of generated clips, named <id>.wav")
    parser.add_argument("--prompts", required=True, help="JSON lines with `id` and `events` (classes in order), "
                                                         "or AudioTime test captions (.json: also timestamps)")
    parser.add_argument("--detector", required=True, help="detector file (python eval/detector.py), or "
                                                          "panns-sed:CKPT (PANNs' frame-wise CNN14, real data)")
    parser.add_argument("--merge-gap", type=int, default=0, help="frames of flicker merged into one segment")
    parser.add_argument("--csv", type=Path, help="write one row per clip, with onsets")
    parser.add_argument("--strict", action="store_true",
                        help="a WAV file shorter than its header declares is an error, not a warning")
    args = parser.parse_args(argv)
    if args.strict:
        strict_audio()
    try:
        spec = args.detector if args.detector.partition(":")[0] in SCORERS else f"detector:{args.detector}"
        detector = load_scorer(spec, "activity")
        captions = read_audiotime(args.prompts) if Path(args.prompts).suffix == ".json" else None
        requests = {c.id: c.events for c in captions} if captions else read_requests(args.prompts)
        references = {c.id: c.spans for c in captions} if captions else None
        files = files_by_stem(audio_files(args.clips), args.clips)
        prompt_of = {stem: p for stem in files if (p := reference_stem(stem, requests)) is not None}
        missing = sorted(set(requests) - set(prompt_of.values()))
        if missing:
            raise DataError(f"{args.clips}: no clip for prompt id(s) {', '.join(missing[:5])}"
                            + (f" ... ({len(missing)} in all)" if len(missing) > 5 else ""))
        strays = sorted(set(files) - set(prompt_of))
        if strays:
            warnings.warn(f"{args.clips}: {len(strays)} clip(s) match no prompt id and are not scored: "
                          f"{', '.join(strays[:5])}", stacklevel=1)
        unknown = {i: [e for e in events if e not in detector.classes] for i, events in requests.items()}
        unknown = {i: events for i, events in unknown.items() if events}
        if unknown:
            first = next(iter(unknown))
            raise DataError(f"{args.prompts}: {first!r}: event class(es) {unknown[first]} unknown to the detector "
                            f"({len(unknown)} prompt(s) in all; it knows {', '.join(detector.classes[:20])}"
                            + (" ...)" if len(detector.classes) > 20 else ")"))
        ids = sorted(prompt_of)
        shortest = min_seconds(detector)
        activities = [detector.activity(load_audio(files[i], detector.sample_rate, shortest)) for i in ids]
        scores, verdicts = order_accuracy(
            activities, [[detector.classes.index(e) for e in requests[prompt_of[i]]] for i in ids], args.merge_gap)
        report = {"ordering_error_rate": 1.0 - scores.order_accuracy, **asdict(scores)}
        if references is not None:
            found = [detected_spans(a, detector.classes, references[prompt_of[i]], detector.frame_seconds,
                                    args.merge_gap) for a, i in zip(activities, ids)]
            report.update(segment_f1([references[prompt_of[i]] for i in ids], found))
    except DataError as error:
        parser.error(str(error))
    if args.csv:
        write_rows(args.csv, [{"id": i, "events": " > ".join(requests[prompt_of[i]]),
                               **verdict_row(v, detector.frame_seconds)} for i, v in zip(ids, verdicts)])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
