"""Read caption files (AudioCaps CSV, Clotho CSV, JSON lines, one caption per line) into uniform rows.

The negative-caption job needs every caption with a stable id (to resume) and the audio file it
belongs to (to pair it with the negative later), whatever layout the dataset ships in.
"""
from __future__ import annotations

import csv
import io
import re
import string
from dataclasses import dataclass
from pathlib import Path

from tclap.csv_rows import jsonl_rows
from tclap.errors import DataError

CLOTHO_CAPTIONS = tuple(f"caption_{k}" for k in range(1, 6))
LAYOUTS = {
    "AudioCaps": ("audiocap_id", "youtube_id", "start_time", "caption"),
    "Clotho": ("file_name", *CLOTHO_CAPTIONS),
}
FORMATS = (".csv", ".jsonl", ".txt")  # AudioCaps/Clotho CSV, JSON lines with `caption`, one caption per line
DEFAULT_AUDIO_NAME = {"AudioCaps": "{youtube_id}_{start_time}.wav", "Clotho": "{file_name}"}


@dataclass(frozen=True)
class CaptionRow:
    id: str        # unique within the file: audiocap_id, "{file_name}#{k}" or "line{n}"
    audio: str     # audio file name the caption belongs to ("" for plain text)
    caption: str
    source: str    # "path:line", for error messages


def read_captions(path: str | Path, audio_name: str | None = None) -> list[CaptionRow]:
    """All captions of a file, checked, in file order.

    Args:
        path: an AudioCaps or Clotho CSV (layout told by the header), a JSON-lines file (`caption`,
            optional `id` and `audio` per line) or a .txt file, one caption per line (blank lines skipped).
        audio_name: `str.format` template over the CSV's columns giving the audio file name
            (default `{youtube_id}_{start_time}.wav` for AudioCaps, `{file_name}` for Clotho).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"{path}: unknown caption file type {suffix or '(none)'!r}; "
                        f"captions come as {', '.join(FORMATS)}")
    text = _read_text(path)
    if suffix == ".csv":
        rows = _read_csv(path, text, audio_name)
    elif audio_name is not None:
        raise DataError(f"{path}: audio_name applies to CSV files only ({suffix} has no columns)")
    elif suffix == ".jsonl":
        rows = _read_jsonl(path)
    else:
        rows = [CaptionRow(f"line{n}", "", line.strip(), f"{path}:{n}")
                for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not rows:
        raise DataError(f"{path}: no captions")
    return rows


def _read_jsonl(path: Path) -> list[CaptionRow]:
    """Rows of a JSON-lines file: `caption`, optional `id` (default `line{n}`) and `audio`."""
    rows, first_seen = [], {}
    for where, record in jsonl_rows(path):
        caption = str(record.get("caption") or "").strip()
        if not caption:
            raise DataError(f"{where}: empty or missing `caption`")
        row = CaptionRow(str(record.get("id") or f"line{where.rsplit(':', 1)[1]}"), str(record.get("audio") or ""),
                         caption, where)
        if row.id in first_seen:
            raise DataError(f"{where}: duplicate id {row.id!r} (first at {first_seen[row.id]})")
        first_seen[row.id] = where
        rows.append(row)
    return rows


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: caption file not found")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte {data[error.start]:#04x})") from None


def _read_csv(path: Path, text: str, audio_name: str | None) -> list[CaptionRow]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip() for name in next(reader, [])]
        layout = _layout(path, header)
        template = audio_name if audio_name is not None else DEFAULT_AUDIO_NAME[layout]
        _check_template(path, template, header)
        rows, first_seen = [], {}
        start = reader.line_num + 1
        for fields in reader:
            where, start = f"{path}:{start}", reader.line_num + 1
            if not fields:
                continue
            if len(fields) != len(header):
                raise DataError(f"{where}: expected {len(header)} fields ({', '.join(header)}), "
                                f"got {len(fields)}")
            record = {name: value.strip() for name, value in zip(header, fields)}
            audio = _audio_name(template, record, where)
            for row in _layout_rows(layout, record, audio, where):
                if row.id in first_seen:
                    raise DataError(f"{where}: duplicate id {row.id!r} (first at {first_seen[row.id]})")
                first_seen[row.id] = where
                rows.append(row)
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({error})") from None
    return rows


def _layout(path: Path, header: list[str]) -> str:
    """The layout whose columns the header holds; else an error naming the closest one's gaps."""
    missing = {name: [c for c in columns if c not in header] for name, columns in LAYOUTS.items()}
    for name, gaps in missing.items():
        if not gaps:
            return name
    closest = min(missing, key=lambda name: len(missing[name]))
    raise DataError(f"{path}:1: header is neither AudioCaps ({', '.join(LAYOUTS['AudioCaps'])}) nor "
                    f"Clotho ({', '.join(LAYOUTS['Clotho'])}); closest is {closest}, missing column(s) "
                    f"{', '.join(missing[closest])}; found {', '.join(header) or 'nothing'}")


def _check_template(path: Path, template: str, header: list[str]) -> None:
    """Fail before reading rows when `audio_name` names a column the file lacks."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as error:
        raise DataError(f"{path}: bad audio_name template {template!r}: {error}") from None
    for field in fields:
        column = re.split(r"[.\[]", field)[0]
        if column not in header:
            raise DataError(f"{path}: audio_name template {template!r} uses unknown column "
                            f"{column!r}; columns are {', '.join(header)}")


def _audio_name(template: str, record: dict[str, str], where: str) -> str:
    try:
        return template.format_map(record)
    except (ValueError, IndexError, KeyError, AttributeError) as error:
        raise DataError(f"{where}: audio_name template {template!r} fails on this row: {error}") from None


def _layout_rows(layout: str, record: dict[str, str], audio: str, where: str) -> list[CaptionRow]:
    """One row per caption column: one for AudioCaps, five for Clotho."""
    if layout == "AudioCaps":
        id_column, caption_columns = "audiocap_id", ("caption",)
    else:
        id_column, caption_columns = "file_name", CLOTHO_CAPTIONS
    if not record[id_column]:
        raise DataError(f"{where}: empty {id_column!r}")
    rows = []
    for k, column in enumerate(caption_columns, start=1):
        if not record[column]:
            raise DataError(f"{where}: empty caption in column {column!r}")
        row_id = record[id_column] if layout == "AudioCaps" else f"{record[id_column]}#{k}"
        rows.append(CaptionRow(row_id, audio, record[column], where))
    return rows
