"""Score a negative-caption backend on the hand-labelled caption set.

A produced negative is correct when, after lowercasing, dropping punctuation and folding spaces,
it equals one of the item's hand-written acceptable negatives. Precision = correct / produced;
coverage = correct / swappable items. Negatives produced for captions with no sequence count
against precision ("false swaps").
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tclap.csv_rows import jsonl_rows
from tclap.data.negatives import Negative

LABELLED_SET = Path(__file__).parent / "resources" / "labelled_captions.jsonl"


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def evaluate_backend(backend: Callable[[list[str]], list[Negative]], path: str | Path = LABELLED_SET) -> dict:
    """Precision, coverage and per-kind counts of `backend` on a labelled JSONL set.

    Args:
        backend: callable mapping captions to `Negative`s.
        path: JSONL with `caption`, `kind`, `swappable`, `negatives` (acceptable answers).
    """
    items = [item for _, item in jsonl_rows(path)]
    results = backend([item["caption"] for item in items])
    per_kind: dict[str, Counter] = {}
    mistakes = []
    for item, result in zip(items, results, strict=True):
        counts = per_kind.setdefault(item["kind"], Counter())
        counts["items"] += 1
        counts["swappable"] += item["swappable"]
        if result.negative is None:
            if item["swappable"]:
                mistakes.append({"caption": item["caption"], "got": None, "reason": result.reason})
            continue
        counts["produced"] += 1
        correct = normalise(result.negative) in {normalise(n) for n in item["negatives"]}
        counts["correct"] += correct
        if not correct:
            mistakes.append({"caption": item["caption"], "got": result.negative,
                             "expected": item["negatives"], "false_swap": not item["swappable"]})
    total = sum(per_kind.values(), Counter())
    return {
        "items": total["items"], "swappable": total["swappable"], "produced": total["produced"],
        "correct": total["correct"],
        "precision": total["correct"] / total["produced"] if total["produced"] else 0.0,
        "coverage": total["correct"] / total["swappable"] if total["swappable"] else 0.0,
        "false_swaps": sum(1 for m in mistakes if m.get("false_swap")),
        "per_kind": {k: dict(v) for k, v in sorted(per_kind.items())},
        "mistakes": mistakes,
    }
