"""Reading a CSV file with required columns, each row labelled `file:line` for error messages."""
from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from tclap.errors import DataError


def csv_rows(path: str | Path, columns: Sequence[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """(`path:line`, row) for every data row; a missing required column is an error naming it.

    Args:
        path: the CSV file (with a header row).
        columns: the columns every row must have.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        found = reader.fieldnames or []
        missing = [c for c in columns if c not in found]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(found)}")
        for line, row in enumerate(reader, start=2):
            yield f"{path}:{line}", row
