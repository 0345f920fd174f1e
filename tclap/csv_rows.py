"""Reading CSV and JSON-lines files row by row, each row labelled `file:line` for error messages."""
from __future__ import annotations

import csv
import json
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


def jsonl_rows(path: str | Path) -> Iterator[tuple[str, dict]]:
    """(`path:line`, object) for every non-blank line of a JSON-lines file, lines counted from 1.

    Raises:
        DataError: a line is not valid JSON (the message gives the line and the column in it), or is
            valid JSON but not an object (e.g. a list).
    """
    with open(path, encoding="utf-8") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{path}:{line}"
            try:
                row = json.loads(text.rstrip("\r\n"))
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: malformed JSON at column {error.colno} ({error.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object ({{\"caption\": ...}}), got a {type(row).__name__}")
            yield where, row
