"""What the demo does, with no Gradio in sight: generate one prompt with every pipeline, find its events,
and say whether each clip plays them in the order the prompt asks.

`Studio` holds the loaded pipelines (by display name) and, when there is one, the offline event
detector; the app owns one `Studio` object instead of module-level model globals. Every pipeline
gets the same prompt, seed and settings, so the only difference between clips is the model. The
verdict on a clip is `tclap_eval.order.judge_clip` (AudioTime's STEAM errors) on the detector's activity,
the rule `tclap experiment generation` scores with, put into words.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import librosa
import numpy as np

from audioldm_cond.generation import fit_prompt
from audioldm_cond.pipeline import generate, load_pipeline
from tclap_eval.detector import EventDetector
from tclap_eval.order import ClipOrder, detected_spans, judge_clip
from tclap.data.negatives import swap_event_order
from tclap.data.phrasing import label_text
from tclap.errors import DataError

SHIPPED = Path(__file__).resolve().parent / "checkpoints"
MIN_EVENT_SECONDS = 0.1  # shorter detections are flicker: not drawn, unless a verdict cites one


@dataclass(frozen=True)
class Event:
    """One detected sound event: class name and its span in seconds."""

    name: str
    start: float
    end: float


@dataclass(frozen=True)
class Request:
    """The known classes a prompt asks for, in the order they should sound, and whether it asks for an order."""

    classes: list[str]
    ordered: bool


@dataclass(frozen=True)
class Clip:
    """One pipeline's answer to a prompt."""

    model: str
    audio: np.ndarray      # (L,) float32
    sample_rate: int
    events: list[Event]    # sorted by onset; empty without a detector
    seed: int = 0
    order: ClipOrder | None = None  # the STEAM verdict; None without a detector or a known class
    verdict: str = ""      # the verdict in words ("in order: siren 1.4 s → knock 2.6 s")


@dataclass(frozen=True)
class Settings:
    """Sampling settings shared by every pipeline in one comparison."""

    seconds: float = 4.0
    steps: int = 20
    guidance_scale: float = 2.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1.0 <= self.seconds <= 30.0:
            raise DataError(f"seconds: must be within 1-30 (got {self.seconds})")
        if not 1 <= self.steps <= 200:
            raise DataError(f"steps: must be within 1-200 (got {self.steps})")
        if not 0.0 <= self.guidance_scale <= 20.0:
            raise DataError(f"guidance_scale: must be within 0-20 (got {self.guidance_scale})")
        if self.seed < 0:
            raise DataError(f"seed: must be >= 0 (got {self.seed})")


def requested(prompt: str, classes: list[str]) -> Request:
    """Which of `classes` the prompt names, in the order it asks them to sound.

    The prompt is cut into event clauses in temporal order by the negative-caption rules
    (`swap_event_order`: "chirp after hum" -> hum, chirp); within a clause, classes count in written
    order. A prompt without an ordering word ("siren and knock", "a beep") asks for its classes in no
    particular order. A class matches as its caption text or its name ("drum roll", "drum_roll"),
    singular or plural.

    Args:
        prompt: the text prompt.
        classes: the detector's class names.
    """
    clauses = swap_event_order(prompt).events
    patterns = {c: re.compile(r"\b" + re.escape(label_text(c)).replace(r"\ ", "[ _]") + r"(?:s|es)?\b", re.IGNORECASE)
                for c in classes}
    found = []
    for clause in clauses or (prompt,):
        hits = sorted((m.start(), c) for c, pattern in patterns.items() for m in pattern.finditer(clause))
        found += [c for _, c in hits]
    return Request(found, ordered=bool(clauses) and len(found) > 1)


def judge(active: np.ndarray, request: Request, classes: list[str]) -> ClipOrder:
    """`tclap_eval.order.judge_clip` of a clip against what the prompt asks; with no order asked, only a
    missing event counts against it.

    Args:
        active: (T, n_classes) detector activity.
        request: `requested(prompt, classes)`, with at least one class.
        classes: the detector's class names.
    """
    order = judge_clip(active, [classes.index(c) for c in request.classes])
    return order if request.ordered else replace(order, occurrence_error=False, overlap_error=False)


def verdict_text(order: ClipOrder, request: Request, frame_seconds: float) -> str:
    """A clip's STEAM verdict in words: "in order: siren 1.4 s → knock 2.6 s", "wrong order: ...",
    "events overlap: ...", "knock not detected", and for one event or no asked order, "found: ...".

    Args:
        order: `tclap_eval.order.judge_clip` of the clip against `request.classes`.
        request: what the prompt asked for.
        frame_seconds: the detector's frame hop in seconds.
    """
    named = [(label_text(c), segment) for c, segment in zip(request.classes, order.segments)]
    if order.non_detection:
        return " and ".join(dict.fromkeys(n for n, s in named if s is None)) + " not detected"
    by_onset = sorted(named, key=lambda item: item[1][0])
    onsets = " → ".join(f"{n} {s[0] * frame_seconds:.1f} s" for n, s in by_onset)
    if not request.ordered:
        return f"found: {onsets}"
    if order.occurrence_error:
        return f"wrong order: {onsets}"
    if order.overlap_error:
        return "events overlap: " + ", ".join(f"{n} {s[0] * frame_seconds:.1f}-{s[1] * frame_seconds:.1f} s"
                                              for n, s in by_onset)
    return f"in order: {onsets}"


def tally(clips: list[Clip]) -> dict[str, int]:
    """How many clips came out in order, in the wrong order, overlapping, or with an event missing
    (clips without a verdict are not counted)."""
    counts = Counter()
    for clip in clips:
        if clip.order is not None:
            counts[next(kind for kind, bad in (("event missing", clip.order.non_detection),
                                               ("wrong order", clip.order.occurrence_error),
                                               ("overlap", clip.order.overlap_error), ("in order", True)) if bad)] += 1
    return {kind: counts[kind] for kind in ("in order", "wrong order", "overlap", "event missing")}


def swapped_prompt(prompt: str) -> str:
    """The prompt with its events in reverse order (the negative-caption rules); says why when it cannot."""
    negative = swap_event_order(prompt)
    if negative.negative is None:
        raise DataError(f"prompt: cannot swap the event order ({negative.reason})")
    return negative.negative


def parse_pipelines(values: list[str]) -> dict[str, str]:
    """`NAME=DIR` flags -> {name: dir}, in the order given."""
    pipelines = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise DataError(f"--pipeline: expected NAME=DIR, got {value!r}")
        pipelines[name.strip()] = path.strip()
    return pipelines


class Studio:
    """Pipelines by display name, an optional event detector, and a prompt-length limit.

    Args:
        pipelines: display name -> loaded AudioLDMPipeline.
        detector: frame-level event detector, or None.
        max_prompt_chars: longer prompts are refused.

    The detector is the offline world's: its classes are all the offline pipelines know, so with a
    detector `known_classes` lists them and a prompt that names none of them is refused before
    generating. Without one (a hub-scale pipeline) there is no list, no check and no verdict.
    """

    def __init__(self, pipelines: dict, detector: EventDetector | None = None, max_prompt_chars: int = 200):
        if not pipelines:
            raise DataError("pipelines: give at least one")
        self.pipelines, self.detector, self.max_prompt_chars = dict(pipelines), detector, max_prompt_chars
        self.known_classes = [label_text(c) for c in detector.classes] if detector else None
        for pipe in self.pipelines.values():
            pipe.set_progress_bar_config(disable=True)

    @classmethod
    def load(cls, pipeline_dirs: dict[str, str | Path], detector: str | Path | None = None,
             max_prompt_chars: int = 200) -> Studio:
        """Load pipeline directories (or hub ids) and the detector file, if given."""
        pipelines = {name: load_pipeline(path) for name, path in pipeline_dirs.items()}
        return cls(pipelines, EventDetector.load(detector) if detector else None, max_prompt_chars)

    def check_prompt(self, prompt: str) -> str:
        prompt = (prompt or "").strip()
        if not prompt:
            raise DataError("prompt: empty")
        if len(prompt) > self.max_prompt_chars:
            raise DataError(f"prompt: {len(prompt)} characters; the limit is {self.max_prompt_chars}")
        if self.detector and not self.request(prompt).classes:
            raise DataError("prompt: names none of the sounds this demo's models know "
                            f"({', '.join(self.known_classes)}); pipelines trained on other sounds run with "
                            "--no-detector")
        return prompt

    def compare(self, prompt: str, settings: Settings = Settings()) -> list[Clip]:
        """The prompt generated by every pipeline with the same settings and seed, in pipeline order."""
        prompt = self.check_prompt(prompt)
        request = self.request(prompt)
        clips = []
        for name, pipe in self.pipelines.items():
            audio = generate(pipe, [fit_prompt(pipe, prompt)], settings.seconds, settings.steps,
                             settings.guidance_scale, settings.seed)[0].astype(np.float32)
            clips.append(self._judged(Clip(name, audio, pipe.vocoder.config.sampling_rate, [], settings.seed),
                                      request))
        return clips

    def request(self, prompt: str) -> Request:
        """What the prompt asks for among the detector's classes (nothing without a detector)."""
        return requested(prompt, self.detector.classes) if self.detector else Request([], False)

    def compare_seeds(self, prompt: str, settings: Settings, n: int) -> dict[str, list[Clip]]:
        """The prompt generated with seeds `settings.seed` ... `settings.seed + n - 1` by every pipeline
        (each clip is the one `compare` gives for its seed): {pipeline name: n clips}.

        Args:
            prompt: the text prompt.
            settings: shared settings; the seed is the first one.
            n: how many seeds, 1-16.
        """
        if not 1 <= n <= 16:
            raise DataError(f"seeds: must be within 1-16 (got {n})")
        runs = [self.compare(prompt, replace(settings, seed=settings.seed + k)) for k in range(n)]
        return {name: [run[i] for run in runs] for i, name in enumerate(self.pipelines)}

    def _judged(self, clip: Clip, request: Request) -> Clip:
        """The clip with its detected events and, when the prompt names known classes, its verdict."""
        if self.detector is None:
            return clip
        events, active = self._detect(clip.audio, clip.sample_rate)
        if not request.classes:
            return replace(clip, events=events, verdict="no known sound named: nothing to check")
        order = judge(active, request, self.detector.classes)
        step = self.detector.frame_seconds
        cited = [Event(c, segment[0] * step, segment[1] * step)
                 for c, segment in zip(request.classes, order.segments) if segment is not None]
        shown = sorted(set(events) | set(cited), key=lambda e: (e.start, e.name))  # what the verdict cites is drawn
        return replace(clip, events=shown, order=order, verdict=verdict_text(order, request, step))

    def events(self, audio: np.ndarray, sample_rate: int) -> list[Event]:
        """Detected events of at least MIN_EVENT_SECONDS, by onset (none without a detector)."""
        return self._detect(audio, sample_rate)[0] if self.detector else []

    def _detect(self, audio: np.ndarray, sample_rate: int) -> tuple[list[Event], np.ndarray]:
        """(shown events, (T, n_classes) frame activity) of a clip at any sample rate."""
        if sample_rate != self.detector.sample_rate:
            audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=self.detector.sample_rate)
        active = self.detector.activity(audio)
        step = self.detector.frame_seconds
        spans = detected_spans(active, self.detector.classes, self.detector.classes, step)
        # length as frames x hop, as before: end - start can fall a hair under a span of exactly 0.1 s (10 ms hops)
        found = [Event(name, start, end) for name, runs in spans.items()
                 for start, end in runs if round((end - start) / step) * step >= MIN_EVENT_SECONDS]
        return sorted(found, key=lambda e: (e.start, e.name)), active
