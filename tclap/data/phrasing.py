"""Caption templates that state the order of sound events, for mixed-up clips.

`{i}` in a template is the i-th event in time. Some templates are reserved for evaluation, so that
generalisation to unseen wording can be measured; "before/after" templates are tagged, and those
whose word order is the reverse of the event order ("{1} after {0}") are marked `reversed`.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Phrasing:
    template: str
    seen: bool           # False: reserved for evaluation, never in a training caption
    before_after: bool   # the relation is stated with before/after/preceded

    @property
    def slots(self) -> list[int]:
        return [int(i) for i in re.findall(r"\{(\d)\}", self.template)]

    @property
    def n_events(self) -> int:
        return len(self.slots)

    @property
    def reversed(self) -> bool:
        """True when the events are named in another order than they sound."""
        return self.slots != sorted(self.slots)

    def render(self, labels: Sequence[str]) -> str:
        """The caption for events `labels`, given in temporal order."""
        if len(labels) != self.n_events:
            raise ValueError(f"{self.template!r} takes {self.n_events} events, got {len(labels)}")
        return self.template.format(*labels)


def _p(template: str, seen: bool, before_after: bool = False) -> Phrasing:
    return Phrasing(template, seen, before_after)


PHRASINGS: tuple[Phrasing, ...] = (
    _p("{0} followed by {1}", True),
    _p("{0} and then {1}", True),
    _p("first {0}, then {1}", True),
    _p("{0}, after that {1}", True),
    _p("{0}, then {1}", True),
    _p("{0} before {1}", True, before_after=True),
    _p("{1} after {0}", True, before_after=True),
    _p("{0}, and afterwards {1}", False),
    _p("{0}, later {1}", False),
    _p("{0}, next {1}", False),
    _p("{0} comes before {1}", False, before_after=True),
    _p("{1} comes after {0}", False, before_after=True),
    _p("{1}, preceded by {0}", False, before_after=True),
    _p("{0} followed by {1} and then {2}", True),
    _p("first {0}, then {1}, then {2}", True),
    _p("{0}, {1}, and then {2}", True),
    _p("{0} before {1}, then {2}", True, before_after=True),
    _p("{0}, after that {1}, and finally {2}", False),
    _p("{0}, then {1}, and later {2}", False),
)


def phrasings(n_events: int, include_unseen: bool) -> list[Phrasing]:
    """Templates for `n_events` events; unseen ones only when `include_unseen` (evaluation splits)."""
    return [p for p in PHRASINGS if p.n_events == n_events and (p.seen or include_unseen)]


def label_text(category: str) -> str:
    """How a library category reads in a caption: `crying_baby` -> `crying baby`."""
    return category.replace("_", " ").strip()
