"""User-supplied ids that become file names: refused unless they are one plain file name.

An id from a prompts file or manifest names an output file (`out/<id>.wav`). One that holds a path
separator, is `.` or `..`, is empty, holds control characters, or is a name Windows reserves, could
write outside the output folder or fail half-way through a run, so it is refused before any work.
"""
from __future__ import annotations

import re

from tclap.errors import DataError

MAX_LENGTH = 200
LISTING = "prompts.jsonl"  # the listing `tclap generate` writes next to its clips (which prompt made which file)
_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[1-9]|LPT[1-9])(\..*)?", re.IGNORECASE)


def file_id(value: str, where: str) -> str:
    """`value` if it can be used as a file name stem in any folder; else a DataError naming `where`.

    Args:
        value: the id, as read.
        where: the file and line it came from, e.g. "prompts.csv:3".
    """
    problem = None
    if not value.strip():
        problem = "is empty"
    elif value != value.strip():
        problem = "starts or ends with white space"
    elif any(sep in value for sep in ("/", "\\")):
        problem = "holds a path separator"
    elif value in (".", "..") or value.startswith("."):
        problem = "starts with '.'"
    elif any(ord(c) < 32 or ord(c) == 127 for c in value):
        problem = "holds a control character"
    elif _RESERVED.fullmatch(value):
        problem = "is a reserved device name"
    elif len(value) > MAX_LENGTH:
        problem = f"is longer than {MAX_LENGTH} characters"
    if problem:
        raise DataError(f"{where}: id {value!r} {problem}; an id must be a plain file name (it names the output file)")
    return value
