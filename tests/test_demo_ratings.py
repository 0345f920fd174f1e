"""The MOS database: validation, one rating per rater and sample, many writers, summary, CSV export."""
from __future__ import annotations

import csv
import math
import sqlite3
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from tclap_demo.ratings import DuplicateRating, RatingStore, summarise, summary_table, validated
from tclap.errors import DataError


def rating(rater="r1", sample="s1", model="T-CLAP", mos_r=4, mos_t=5):
    return validated(rater, sample, model, "bell and then beep", mos_r, mos_t)


def test_wal_mode_and_a_rating_round_trip(tmp_path):
    store = RatingStore(tmp_path / "db" / "ratings.sqlite")
    store.add(rating())
    assert sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.ratings() == [rating()]
    assert store.rated_by("r1") == {"s1"} and store.rated_by("r2") == set()


@pytest.mark.parametrize("field, kwargs", [
    ("mos_r", {"mos_r": 0}), ("mos_r", {"mos_r": 6}), ("mos_t", {"mos_t": None}), ("mos_t", {"mos_t": 3.5}),
    ("mos_r", {"mos_r": True}), ("mos_t", {"mos_t": "five"}), ("rater", {"rater": "  "}),
    ("rater", {"rater": "x" * 65}), ("sample", {"sample": ""}),
])
def test_bad_values_are_refused_naming_the_field(field, kwargs):
    with pytest.raises(DataError, match=f"^{field}:"):
        rating(**kwargs)


def test_scores_given_as_radio_strings_are_accepted():
    assert rating(mos_r="3", mos_t="1").mos_r == 3


def test_a_second_rating_of_the_same_sample_is_refused_and_not_counted(tmp_path):
    store = RatingStore(tmp_path / "ratings.sqlite")
    store.add(rating(mos_r=4))
    with pytest.raises(DuplicateRating, match="r1.*s1"):
        store.add(rating(mos_r=1))
    store.add(rating(rater="r2"))
    assert [(r.rater, r.mos_r) for r in store.ratings()] == [("r1", 4), ("r2", 4)]


def test_summary_matches_a_hand_computed_t_interval(tmp_path):
    store = RatingStore(tmp_path / "ratings.sqlite")
    for i, score in enumerate([1, 2, 3, 4, 5]):
        store.add(rating(rater=f"r{i}", mos_r=score, mos_t=3))
    store.add(rating(rater="solo", model="CLAP", mos_r=2, mos_t=2))
    by_key = {(s.model, s.metric): s for s in store.summary()}
    # mean 3, sample sd sqrt(2.5), t(0.975, df=4) = 2.776 (a t table): 2.776 * sqrt(2.5) / sqrt(5) = 1.963
    r = by_key[("T-CLAP", "mos_r")]
    assert (r.n, r.mean) == (5, 3.0) and r.ci95 == pytest.approx(1.963, abs=1e-3)
    assert by_key[("T-CLAP", "mos_t")].ci95 == 0.0
    assert math.isnan(by_key[("CLAP", "mos_r")].ci95)  # one rating: no interval
    table = summary_table(store.summary())
    assert "| T-CLAP | 3.00 ± 1.96 (n=5) | 3.00 ± 0.00 (n=5) |" in table and "| CLAP | 2.00 ± n/a (n=1)" in table


def test_summarise_large_sample_approaches_the_normal_interval():
    scores = [1, 5] * 500  # sd ~ 2.001, z = 1.96
    assert summarise("m", "mos_r", scores).ci95 == pytest.approx(1.96 * 2.001 / math.sqrt(1000), rel=2e-3)


def test_csv_export_has_every_rating(tmp_path):
    store = RatingStore(tmp_path / "ratings.sqlite")
    store.add(rating())
    store.add(rating(rater="r2", sample="s2", model="CLAP", mos_r=1, mos_t=2))
    rows = list(csv.DictReader(open(store.export_csv(tmp_path / "out.csv"))))
    assert [(r["rater"], r["sample"], r["model"], r["mos_r"], r["mos_t"]) for r in rows] == [
        ("r1", "s1", "T-CLAP", "4", "5"), ("r2", "s2", "CLAP", "1", "2")]
    assert all(float(r["time"]) > 0 and r["prompt"] == "bell and then beep" for r in rows)


def _rate_many(path, worker: int) -> tuple[int, int]:
    """One process: 4 threads, each rating 10 samples for 3 raters shared with other workers."""
    store = RatingStore(path)

    def thread(t: int) -> tuple[int, int]:
        saved = refused = 0
        for sample in range(10):
            try:
                store.add(rating(rater=f"rater{t % 3}", sample=f"s{sample}", mos_r=1 + (worker + t) % 5))
                saved += 1
            except DuplicateRating:
                refused += 1
        return saved, refused

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(thread, range(4)))
    return sum(s for s, _ in results), sum(r for _, r in results)


@pytest.mark.slow
def test_many_processes_and_threads_lose_and_duplicate_nothing(tmp_path):
    path = tmp_path / "ratings.sqlite"
    RatingStore(path)
    with ProcessPoolExecutor(3) as pool:
        results = list(pool.map(_rate_many, [path] * 3, range(3)))
    saved = sum(s for s, _ in results)
    # 3 workers x 4 threads x 10 attempts over 3 raters x 10 samples: exactly 30 land, the rest are refused
    assert saved == 30 and sum(r for _, r in results) == 3 * 4 * 10 - 30
    ratings = RatingStore(path).ratings()
    assert len(ratings) == 30 and len({(r.rater, r.sample) for r in ratings}) == 30


def test_cli_prints_the_summary_and_exports(tmp_path, capsys):
    from tclap.cli import main

    store = RatingStore(tmp_path / "ratings.sqlite")
    store.add(rating())
    main(["ratings", str(store.path), "--csv", str(tmp_path / "all.csv")])
    out = capsys.readouterr().out
    assert "| T-CLAP | 4.00 ± n/a (n=1) | 5.00 ± n/a (n=1) |" in out and "wrote 1 ratings" in out
    assert len(list(csv.DictReader(open(tmp_path / "all.csv")))) == 1
