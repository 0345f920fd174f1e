"""Readers for public temporal-order benchmarks, so encoders can be compared with published numbers.

CompA-order (Ghosh et al., "CompA: Addressing the Gap in Compositional Reasoning in Audio-Language
Models", ICLR 2024, arXiv:2310.08753) is a CSV with one row per item: a clip (`pair_file`), the same
events in the reverse order (`reversed_pair_file`), and a caption for each (`pair_caption`,
`reversed_pair_caption`); audio file names are relative to a folder. Published group scores:
CompA-CLAP 33.85, LAION-CLAP 5.50 (random 16.7).

AudioTime (Xie et al., "AudioTime: A Temporally-aligned Audio-text Benchmark Dataset", arXiv:2407.02857)
gives its test captions as JSON, `{"<id>": {"caption": "...", "event": {"<AudioSet label>": [[onset,
offset], ...], ...}}, ...}` in seconds; its STEAM metrics score generated clips against those events.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from tclap.csv_rows import csv_rows
from tclap.errors import DataError
from tclap.names import file_id

COMPA_ORDER_COLUMNS = ("pair_file", "reversed_pair_file", "pair_caption", "reversed_pair_caption")


def read_compa_order(path: str | Path, audio_root: str | Path | None = None) -> list[dict]:
    """The items of a CompA-order CSV as evaluation rows: `id` (`file:line`), `audio`, `caption`,
    `neg_caption` (the reversed caption) and `neg_audio` (the reversed clip), as `embed_rows` takes them.

    Args:
        path: the CSV.
        audio_root: folder the file names are relative to (default: the CSV's folder).

    Raises:
        DataError: the file or a column is missing, a field is empty, or an audio file is missing or
            lies outside `audio_root`; each names the file and line.
    """
    path = Path(path)
    root = Path(audio_root) if audio_root is not None else path.parent
    if not path.is_file():
        raise DataError(f"{path}: CompA-order file not found")
    rows = []
    for where, row in csv_rows(path, COMPA_ORDER_COLUMNS):
        values = {column: (row.get(column) or "").strip() for column in COMPA_ORDER_COLUMNS}
        empty = [column for column, value in values.items() if not value]
        if empty:
            raise DataError(f"{where}: empty {', '.join(empty)}")
        audio = [_audio_file(root, values[column], where) for column in ("pair_file", "reversed_pair_file")]
        rows.append({"id": where, "audio": audio[0], "caption": values["pair_caption"],
                     "neg_caption": values["reversed_pair_caption"], "neg_audio": audio[1]})
    if not rows:
        raise DataError(f"{path}: no items")
    return rows


def _audio_file(root: Path, name: str, where: str) -> Path:
    """`root / name`, which must be a file inside `root`."""
    audio = root / name
    if not audio.resolve().is_relative_to(root.resolve()):
        raise DataError(f"{where}: {name!r} points outside the audio folder {root}")
    if not audio.is_file():
        raise DataError(f"{where}: audio file {audio} not found")
    return audio


@dataclass(frozen=True)
class TimedCaption:
    """One AudioTime caption: `id` (a plain file name), `caption`, the requested `events` in order of first
    onset, and each event's reference `spans` as (onset, offset) seconds."""

    id: str
    caption: str
    events: list[str]
    spans: dict[str, list[tuple[float, float]]]


def read_audiotime(path: str | Path) -> list[TimedCaption]:
    """The captions of an AudioTime JSON file, in file order.

    Raises:
        DataError: the file is missing or not a JSON object of captions; an id is not a plain file name
            (`tclap.names.file_id`); a caption is empty; `event` is not a non-empty object of labels to
            non-empty lists of [onset, offset] with 0 <= onset < offset. Each names the file and id.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: AudioTime file not found")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not JSON ({error})") from None
    if not isinstance(items, dict) or not items:
        raise DataError(f"{path}: expected a non-empty JSON object of id -> {{caption, event}}")
    captions = []
    for raw_id, item in items.items():
        where = f"{path}: {raw_id!r}"
        clip_id = file_id(str(raw_id), where)
        caption = item.get("caption") if isinstance(item, dict) else None
        if not isinstance(caption, str) or not caption.strip():
            raise DataError(f"{where}: empty or missing `caption`")
        spans = _event_spans(item.get("event"), where)
        events = sorted(spans, key=lambda label: (spans[label][0][0], label))
        captions.append(TimedCaption(clip_id, caption.strip(), events, spans))
    return captions


def _event_spans(event, where: str) -> dict[str, list[tuple[float, float]]]:
    """`{label: [[onset, offset], ...]}` checked and sorted by onset."""
    if not isinstance(event, dict) or not event:
        raise DataError(f"{where}: `event` must be a non-empty object of label -> [[onset, offset], ...]")
    spans = {}
    for label, pairs in event.items():
        if not label.strip() or not isinstance(pairs, list) or not pairs:
            raise DataError(f"{where}: event {label!r} needs a non-empty list of [onset, offset]")
        checked = []
        for pair in pairs:
            ok = (isinstance(pair, list) and len(pair) == 2
                  and all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in pair))
            if not ok or not 0 <= pair[0] < pair[1]:
                raise DataError(f"{where}: event {label!r} span {pair!r} is not [onset, offset] with "
                                "0 <= onset < offset (seconds)")
            checked.append((float(pair[0]), float(pair[1])))
        spans[label] = sorted(checked)
    return spans
