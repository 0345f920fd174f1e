"""Readers for public temporal-order benchmarks, so encoders can be compared with published numbers.

CompA-order (Ghosh et al., "CompA: Addressing the Gap in Compositional Reasoning in Audio-Language
Models", ICLR 2024, arXiv:2310.08753) is a CSV with one row per item: a clip (`pair_file`), the same
events in the reverse order (`reversed_pair_file`), and a caption for each (`pair_caption`,
`reversed_pair_caption`); audio file names are relative to a folder. Published group scores:
CompA-CLAP 33.85, LAION-CLAP 5.50 (random 16.7).
"""
from __future__ import annotations

from pathlib import Path

from tclap.csv_rows import csv_rows
from tclap.errors import DataError

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
