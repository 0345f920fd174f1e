from __future__ import annotations

import json

import pytest

from tclap.data.captions import CaptionRow
from tclap.data.negatives import Negative
from tclap.data.negatives_eval import evaluate_backend, normalise
from tclap.data.negatives_job import write_negatives


class Reverse:
    """A stand-in backend: swaps "X then Y" captions, refuses the rest; records its calls."""

    name = "reverse"

    def __init__(self):
        self.calls = []

    def __call__(self, captions):
        self.calls.append(list(captions))
        out = []
        for c in captions:
            if " then " in c:
                a, b = c.split(" then ")
                out.append(Negative(c, f"{b} then {a}", None, (a, b)))
            else:
                out.append(Negative(c, None, "single event", ()))
        return out


def rows(n):
    return [CaptionRow(f"id{i}", f"a{i}.wav", f"dog {i} then cat" if i % 2 else f"rain {i}", f"f.csv:{i}")
            for i in range(n)]


def test_writes_one_record_per_caption_and_counts(tmp_path):
    counts = write_negatives(rows(5), Reverse(), tmp_path / "n.jsonl", batch_size=2)
    records = [json.loads(line) for line in (tmp_path / "n.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [f"id{i}" for i in range(5)]
    assert records[1] == {"id": "id1", "audio": "a1.wav", "caption": "dog 1 then cat",
                          "negative": "cat then dog 1", "reason": None, "backend": "reverse"}
    assert counts["swapped"] == 2 and counts["not swapped: single event"] == 3


def test_rerun_skips_rows_already_written_and_drops_a_truncated_line(tmp_path):
    out = tmp_path / "n.jsonl"
    write_negatives(rows(3), Reverse(), out)
    out.write_text(out.read_text() + '{"id": "id3", "aud')  # killed mid-line
    backend = Reverse()
    counts = write_negatives(rows(6), backend, out, batch_size=10)
    assert backend.calls == [["dog 3 then cat", "rain 4", "dog 5 then cat"]]
    assert counts["reused"] == 3
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [f"id{i}" for i in range(6)]


def test_labelled_scoring_matches_a_hand_count(tmp_path):
    items = [
        {"caption": "dog then cat", "kind": "sequential", "swappable": True, "negatives": ["Cat then dog."]},
        {"caption": "bell then horn", "kind": "sequential", "swappable": True, "negatives": ["horn, then bell"]},
        {"caption": "rain", "kind": "single", "swappable": False, "negatives": []},
        {"caption": "wind then rain", "kind": "tricky", "swappable": False, "negatives": []},
        {"caption": "owl hoots", "kind": "tricky", "swappable": True, "negatives": ["x"]},
    ]
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    report = evaluate_backend(Reverse(), path)
    # produced: 3 (two sequential, one false swap); correct: 2 (punctuation/case ignored)
    assert report["produced"] == 3 and report["correct"] == 2
    assert report["precision"] == pytest.approx(2 / 3) and report["coverage"] == pytest.approx(2 / 3)
    assert report["false_swaps"] == 1 and len(report["mistakes"]) == 2
    assert normalise("Cat,  then dog.") == "cat then dog"


def test_shipped_labelled_set_is_well_formed():
    from tclap.data.negatives_eval import LABELLED_SET

    items = [json.loads(line) for line in LABELLED_SET.read_text().splitlines() if line.strip()]
    assert len(items) >= 60
    assert all(bool(i["negatives"]) == i["swappable"] for i in items)
    assert {i["kind"] for i in items} == {"sequential", "simultaneous", "single", "unordered", "tricky"}
