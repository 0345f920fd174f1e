"""Order-swapped negative captions: the shared result type and the rule-based backend."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Negative:
    """A backend's answer for one caption."""

    caption: str
    negative: str | None      # None when the caption cannot be swapped
    reason: str | None        # why not, e.g. "single event", "simultaneous: 'while'"
    events: tuple[str, ...]   # event clauses in temporal order as parsed (may be empty)
