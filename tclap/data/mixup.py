"""Mixed-up clips (paper §2.3): events of distinct classes concatenated, with swapped negatives.

Each record has the clip, a positive caption with an ordering phrase, the negative caption (same
phrase, events permuted), the negative audio (the same segments, in the permuted order) and every
event's label, onset and offset. Clip `i` depends only on (seed, i) and the library, so a killed
build resumes where it stopped and gives the same clips, whatever the number of workers.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tclap.audio import SILENCE_DB, load_audio, normalize_rms, peak_db, trim_silence, write_wav
from tclap.data.library import META, SPLITS, LibraryFile, SoundLibrary, assign_folds, read_library
from tclap.data.phrasing import Phrasing, label_text, phrasings
from tclap.errors import DataError

MANIFEST = "manifest.jsonl"
SETTINGS = "mixup.json"


@dataclass
class MixupConfig:
    """How mixed-up clips are built. Defaults are the paper's (10-s clips, 2 events)."""

    clips: int = 1000
    split_fractions: dict[str, float] = field(
        default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    events: list[int] = field(default_factory=lambda: [2])  # event counts drawn uniformly (2 or 3)
    sample_rate: int = 16000
    clip_seconds: float = 10.0
    gap_seconds: list[float] = field(default_factory=lambda: [0.1, 0.5])  # min, max silence between
    crossfade_seconds: float = 0.0  # > 0: consecutive events may overlap by up to this, crossfaded
    level_db: float = -20.0         # RMS level of each event
    level_jitter_db: float = 3.0    # +- uniform jitter around level_db
    trim_db: float = 35.0           # silence trimming threshold, dB below the file's loudest frame
    min_event_seconds: float = 0.15
    test_folds: list[int] | None = None  # default: the highest fold
    val_folds: list[int] | None = None   # default: the one below
    seed: int = 0
    skip_bad_files: bool = True     # False: the first unusable source file is an error

    def __post_init__(self) -> None:
        if not set(self.events) <= {2, 3}:
            raise DataError(f"events: counts must be 2 or 3, got {self.events}")
        if set(self.split_fractions) - set(SPLITS) or abs(sum(self.split_fractions.values()) - 1) > 1e-6:
            raise DataError(f"split_fractions: keys from {SPLITS} summing to 1, got {self.split_fractions}")
        if not 0 <= self.gap_seconds[0] <= self.gap_seconds[1]:
            raise DataError(f"gap_seconds: need 0 <= min <= max, got {self.gap_seconds}")
        budget = self.clip_seconds - max(self.events) * (self.gap_seconds[1] + self.min_event_seconds)
        if self.clips < 1 or budget <= 0:
            raise DataError(f"clip_seconds {self.clip_seconds} too short for {max(self.events)} events "
                            f"with gaps {self.gap_seconds}, or clips < 1")


@functools.lru_cache(maxsize=512)
def load_event(path: Path, sample_rate: int, trim_db: float, min_seconds: float) -> np.ndarray:
    """The sounding part of a single-event file; DataError if it is unreadable, silent or too short."""
    audio = load_audio(path, sample_rate)
    if peak_db(audio) < SILENCE_DB:
        raise DataError(f"{path}: silent (peak below {SILENCE_DB:.0f} dBFS)")
    event = trim_silence(audio, trim_db)
    if len(event) < min_seconds * sample_rate:
        raise DataError(f"{path}: event too short after trimming silence "
                        f"({len(event) / sample_rate:.3f} s < {min_seconds} s)")
    return event


def _check_file(item: tuple[LibraryFile, MixupConfig]) -> str | None:
    file, cfg = item
    try:
        load_event(file.path, cfg.sample_rate, cfg.trim_db, cfg.min_event_seconds)
    except DataError as error:
        return str(error)
    return None


def split_sizes(cfg: MixupConfig) -> dict[str, int]:
    """Number of clips per split; rounding leftovers go to train."""
    sizes = {s: int(cfg.clips * cfg.split_fractions.get(s, 0.0)) for s in SPLITS}
    sizes["train"] += cfg.clips - sum(sizes.values())
    return sizes


@dataclass(frozen=True)
class ClipPlan:
    """Everything random about one clip, drawn in the main process from (seed, index)."""

    id: str
    split: str
    sources: tuple[LibraryFile, ...]   # in temporal order
    permutation: tuple[int, ...]       # negative order, a non-identity permutation of range(n)
    phrasing: Phrasing
    layout_seed: tuple[int, ...]


def plan_clips(cfg: MixupConfig, usable: dict[str, dict[str, list[LibraryFile]]]) -> list[ClipPlan]:
    """Draw every clip's events, order, negative permutation and phrasing.

    Args:
        cfg: build settings.
        usable: split -> category -> usable source files of that split.
    """
    plans, index = [], 0
    for split, size in split_sizes(cfg).items():
        by_category = usable[split]
        if size and len(by_category) < max(cfg.events):
            raise DataError(f"split {split!r} has {len(by_category)} usable categories; "
                            f"{max(cfg.events)} distinct ones are needed per clip")
        for _ in range(size):
            rng = np.random.default_rng([cfg.seed, index])
            n = int(rng.choice(cfg.events))
            categories = rng.choice(sorted(by_category), size=n, replace=False)
            sources = tuple(by_category[c][rng.integers(len(by_category[c]))] for c in categories)
            permutation = tuple(range(n))
            while permutation == tuple(range(n)):
                permutation = tuple(int(i) for i in rng.permutation(n))
            options = phrasings(n, include_unseen=(split == "test"))
            phrasing = options[rng.integers(len(options))]
            plans.append(ClipPlan(f"mix{index:06d}", split, sources, permutation, phrasing,
                                  (cfg.seed, index, 1)))
            index += 1
    return plans


def _layout(segments: list[np.ndarray], gaps: list[int], overlaps: list[int], lead: int,
            length: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Place segments one after another; returns the clip and each segment's (start, end) sample."""
    clip = np.zeros(length, dtype=np.float32)
    spans, t = [], lead
    for k, segment in enumerate(segments):
        if k > 0:
            t += gaps[k - 1] - overlaps[k - 1]
        overlap_in = overlaps[k - 1] if k > 0 else 0
        overlap_out = overlaps[k] if k < len(overlaps) else 0
        faded = segment.copy()
        if overlap_in:
            faded[:overlap_in] *= np.linspace(0, 1, overlap_in, dtype=np.float32)
        if overlap_out:
            faded[-overlap_out:] *= np.linspace(1, 0, overlap_out, dtype=np.float32)
        clip[t:t + len(faded)] += faded
        spans.append((t, t + len(faded)))
        t += len(faded)
    return clip, spans


def render_clip(plan: ClipPlan, cfg: MixupConfig) -> tuple[np.ndarray, np.ndarray, dict]:
    """Audio of the clip and of its negative, plus the manifest record (without file paths)."""
    rng = np.random.default_rng(plan.layout_seed)
    sr, n = cfg.sample_rate, len(plan.sources)
    length = int(round(cfg.clip_seconds * sr))
    gaps = [int(rng.uniform(*cfg.gap_seconds) * sr) for _ in range(n - 1)]
    budget = length - sum(gaps)
    segments = []
    for source in plan.sources:
        event = load_event(source.path, sr, cfg.trim_db, cfg.min_event_seconds)
        event = event[: budget // n]  # keep the onset of events too long to fit
        fade = min(len(event), int(0.01 * sr))  # 10 ms fade-out avoids a click where we cut
        event = event.copy()
        event[len(event) - fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
        level = cfg.level_db + rng.uniform(-cfg.level_jitter_db, cfg.level_jitter_db)
        segments.append(normalize_rms(event, level))
    max_overlap = int(cfg.crossfade_seconds * sr)
    shortest = min(len(s) for s in segments)  # bounds overlaps in both the clip and its negative
    overlaps = [min(int(rng.uniform(0, max_overlap)), shortest // 2) for _ in range(n - 1)]
    used = sum(len(s) for s in segments) + sum(gaps) - sum(overlaps)
    lead = int(rng.integers(0, length - used + 1))
    order = list(plan.permutation)
    positive, spans = _layout(segments, gaps, overlaps, lead, length)
    negative, neg_spans = _layout([segments[i] for i in order], gaps, overlaps, lead, length)
    for clip in (positive, negative):
        peak = np.max(np.abs(clip))
        if peak > 0.99:
            clip *= 0.99 / peak
    labels = [label_text(s.category) for s in plan.sources]

    def events(sources: list[LibraryFile], where: list[tuple[int, int]]) -> list[dict]:
        return [{"label": label_text(s.category), "category": s.category, "source": s.path.name,
                 "onset": round(a / sr, 6), "offset": round(b / sr, 6)} for s, (a, b) in zip(sources, where)]

    record = {
        "id": plan.id, "split": plan.split, "sample_rate": sr, "duration": cfg.clip_seconds,
        "caption": plan.phrasing.render(labels),
        "neg_caption": plan.phrasing.render([labels[i] for i in order]),
        "phrasing": plan.phrasing.template, "phrasing_seen": plan.phrasing.seen,
        "before_after": plan.phrasing.before_after, "word_order_reversed": plan.phrasing.reversed,
        "n_events": n,
        "events": events(list(plan.sources), spans),
        "neg_events": events([plan.sources[i] for i in order], neg_spans),
    }
    return positive, negative, record


def _build_one(item: tuple[ClipPlan, MixupConfig, Path]) -> dict:
    """Worker: render and write one clip. Errors come back as records, never as a worker traceback."""
    plan, cfg, out = item
    try:
        positive, negative, record = render_clip(plan, cfg)
        record["audio"], record["neg_audio"] = f"audio/{plan.id}.wav", f"audio/{plan.id}.neg.wav"
        write_wav(out / record["audio"], positive, cfg.sample_rate)
        write_wav(out / record["neg_audio"], negative, cfg.sample_rate)
        return record
    except Exception as error:  # noqa: BLE001 - reported with the clip and its sources
        return {"id": plan.id, "error": f"{type(error).__name__}: {error}",
                "sources": [str(s.path) for s in plan.sources]}


def read_manifest(path: Path) -> list[dict]:
    """Manifest records; a truncated last line (a killed run) is dropped, any other bad line is an error."""
    records = []
    if not path.exists():
        return records
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise DataError(f"{path}:{number}: malformed JSON line") from None
    return records


def resume_jsonl(path: Path) -> list[dict]:
    """Records already in a JSONL output; the file is rewritten without a truncated last line."""
    records = read_manifest(path)
    if path.exists():
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def read_settings(mixup_dir: str | Path) -> dict:
    """A mixed-up folder's build settings (its `mixup.json`), with `library` as a resolved Path.

    The file names the library absolutely and, where the library lies under the clips folder's parent
    (the main job's `world/` beside `mixup/`), also relatively (`library_beside`), with the SHA-256 of
    its meta CSV. The relative name wins where it leads to a meta CSV with that digest, so a results
    folder moved or copied whole reads its own library; otherwise (a clips folder moved on its own,
    or a `mixup.json` written before the relative name existed) the absolute name serves. The two
    locating entries are not returned: `library` is the answer.

    Raises:
        DataError: `mixup_dir` holds no `mixup.json` (not a folder built by `tclap mixup`).
    """
    path = Path(mixup_dir) / SETTINGS
    if not path.is_file():
        raise DataError(f"{path}: not found; is {mixup_dir} a folder built by `tclap mixup`?")
    settings = json.loads(path.read_text())
    beside, digest = settings.pop("library_beside", None), settings.pop("library_meta_sha256", None)
    own = beside is not None and _meta_digest(path.parent / beside) == digest
    return {**settings, "library": (path.parent / beside if own else Path(settings["library"])).resolve()}


def _meta_digest(library: Path) -> str | None:
    """SHA-256 of a library's meta CSV; None where it has none."""
    meta = library / META
    return hashlib.sha256(meta.read_bytes()).hexdigest() if meta.is_file() else None


def _check_settings(out: Path, cfg: MixupConfig, library: Path) -> None:
    """Refuse to resume into a folder built with other settings (its clips would not match)."""
    library, folder = library.resolve(), out.resolve()
    settings = {"library": library, **dataclasses.asdict(cfg)}
    if (out / SETTINGS).exists():
        previous = read_settings(out)
        changed = sorted(k for k in settings if previous.get(k) != settings[k] and k != "skip_bad_files")
        if changed:
            raise DataError(f"{out}: already holds clips built with other settings ({', '.join(changed)}); "
                            "use a new --out or the same settings")
    if library.is_relative_to(folder.parent):
        settings.update(library_beside=os.path.relpath(library, folder), library_meta_sha256=_meta_digest(library))
    (out / SETTINGS).write_text(json.dumps({**settings, "library": str(library)}, indent=2))


def _pool(workers: int):
    """One worker pool for a whole build; fork where the platform has it (spawn re-imports librosa)."""
    if workers <= 1:
        return contextlib.nullcontext(None)
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn").Pool(workers)


def _map(pool, function, items: list, desc: str) -> Iterator:
    """Ordered map with a progress bar; in-process without a pool."""
    mapped = pool.imap(function, items, chunksize=8) if pool is not None else map(function, items)
    yield from tqdm(mapped, total=len(items), desc=desc, leave=False)


@dataclass
class MixupReport:
    built: int = 0
    reused: int = 0
    skipped_files: dict[str, str] = field(default_factory=dict)  # path -> reason
    failed_clips: dict[str, str] = field(default_factory=dict)   # clip id -> error
    per_split: Counter = field(default_factory=Counter)


def build_mixup(library_dir: str | Path, out: str | Path, cfg: MixupConfig, workers: int = 1) -> MixupReport:
    """Build (or finish building) a mixed-up set in `out`: `audio/*.wav` + `manifest.jsonl`.

    Args:
        library_dir: sound library in ESC-50 layout.
        out: output folder; clips already in its manifest are kept, not rebuilt.
        cfg: build settings.
        workers: processes rendering clips in parallel.
    """
    library_dir, out = Path(library_dir), Path(out)
    library = read_library(library_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    _check_settings(out, cfg, library_dir)
    report = MixupReport()
    with _pool(workers) as pool:
        usable = _usable_files(library, cfg, pool, report)
        _build_missing(usable, out, cfg, pool, report)
    if report.failed_clips:
        first = next(iter(report.failed_clips.items()))
        raise DataError(f"{len(report.failed_clips)} clip(s) failed, first {first[0]}: {first[1]}; "
                        "the others are saved, rerun to retry")
    return report


def _build_missing(usable: dict, out: Path, cfg: MixupConfig, pool, report: MixupReport) -> None:
    """Render the clips not yet in the manifest, appending each record as it is written."""
    manifest = out / MANIFEST
    done = {r["id"] for r in resume_jsonl(manifest)}
    plans = plan_clips(cfg, usable)
    todo = [p for p in plans if p.id not in done]
    report.reused = len(plans) - len(todo)
    with open(manifest, "a", encoding="utf-8") as handle:
        for record in _map(pool, _build_one, [(p, cfg, out) for p in todo], "mixup"):
            if "error" in record:
                report.failed_clips[record["id"]] = f"{record['error']} (sources: {record['sources']})"
                continue
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            report.built += 1
    for record in read_manifest(manifest):
        report.per_split[record["split"]] += 1


def _usable_files(library: SoundLibrary, cfg: MixupConfig, pool,
                  report: MixupReport) -> dict[str, dict[str, list[LibraryFile]]]:
    """Check every source file once; group usable ones by split and category."""
    reasons = list(_map(pool, _check_file, [(f, cfg) for f in library.files], "checking files"))
    for file, reason in zip(library.files, reasons):
        if reason is not None:
            if not cfg.skip_bad_files:
                raise DataError(reason)
            report.skipped_files[str(file.path)] = reason
    bad = set(report.skipped_files)
    folds = assign_folds(library.folds, cfg.test_folds, cfg.val_folds)
    usable: dict[str, dict[str, list[LibraryFile]]] = {}
    for split in SPLITS:
        groups: dict[str, list[LibraryFile]] = {}
        for file in library.in_folds(folds[split]):
            if str(file.path) not in bad:
                groups.setdefault(file.category, []).append(file)
        usable[split] = groups
    return usable
