"""MOS ratings in SQLite: one row per rater per sample, validated, safe under many concurrent writers.

The paper's Table 4 asks raters for MOS_r (overall quality) and MOS_t (does the event order match
the text), 1-5. The database runs in WAL mode so readers never block the writer; each call opens its
own connection, so threads and processes can share one file. A second rating of the same sample by
the same rater is refused, never counted twice.
"""
from __future__ import annotations

import csv
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scipy import stats

from tclap.errors import DataError

SCORES = (1, 2, 3, 4, 5)
METRICS = ("mos_r", "mos_t")
CSV_COLUMNS = ("rater", "sample", "model", "prompt", "mos_r", "mos_t", "time")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    rater TEXT NOT NULL,
    sample TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    mos_r INTEGER NOT NULL CHECK (mos_r BETWEEN 1 AND 5),
    mos_t INTEGER NOT NULL CHECK (mos_t BETWEEN 1 AND 5),
    time REAL NOT NULL,
    PRIMARY KEY (rater, sample)
)"""


class DuplicateRating(DataError):
    """The rater has already rated this sample."""


@dataclass(frozen=True)
class Rating:
    rater: str
    sample: str
    model: str
    prompt: str
    mos_r: int
    mos_t: int


@dataclass(frozen=True)
class Summary:
    """Mean and 95% confidence interval (Student's t) of one metric of one model."""

    model: str
    metric: str
    n: int
    mean: float
    ci95: float   # half-width; nan with fewer than two ratings


def _score(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value).strip() not in {str(s) for s in SCORES}:
        raise DataError(f"{name}: must be one of 1, 2, 3, 4, 5 (got {value!r})")
    return int(value)


def check_rater(rater: str | None) -> str:
    """The rater id, stripped; `DataError` unless it has 1-64 characters."""
    rater = (rater or "").strip()
    if not rater or len(rater) > 64:
        raise DataError("rater: give an id of 1-64 characters")
    return rater


def validated(rater: str, sample: str, model: str, prompt: str, mos_r, mos_t) -> Rating:
    """A `Rating` with its fields checked; bad input raises `DataError` naming the field."""
    rater = check_rater(rater)
    for name, value in (("sample", sample), ("model", model), ("prompt", prompt)):
        if not value:
            raise DataError(f"{name}: empty")
    return Rating(rater, sample, model, prompt, _score("mos_r", mos_r), _score("mos_t", mos_t))


class RatingStore:
    """The ratings database at `path` (created with its parent folder if absent)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own (autocommit), closed after use: threads and processes share only the file."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    def add(self, rating: Rating) -> None:
        """Store one validated rating; raises `DuplicateRating` if the rater rated the sample before."""
        with self._connection() as db:
            try:
                db.execute("INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (rating.rater, rating.sample, rating.model, rating.prompt, rating.mos_r, rating.mos_t,
                            time.time()))
            except sqlite3.IntegrityError as error:
                raise DuplicateRating(f"rater {rating.rater!r} has already rated sample {rating.sample!r}") from error

    def rated_by(self, rater: str) -> set[str]:
        """Samples this rater has rated."""
        with self._connection() as db:
            return {row[0] for row in db.execute("SELECT sample FROM ratings WHERE rater = ?", (rater,))}

    def _rows(self) -> list[tuple]:
        """Every rating as (rater, sample, model, prompt, mos_r, mos_t, time), oldest first."""
        with self._connection() as db:
            return db.execute(f"SELECT {', '.join(CSV_COLUMNS)} FROM ratings ORDER BY time, rater, sample").fetchall()

    def ratings(self) -> list[Rating]:
        return [Rating(*row[:-1]) for row in self._rows()]

    def summary(self) -> list[Summary]:
        """Per model and metric: count, mean and 95% CI half-width."""
        return summaries(self.ratings())

    def export_csv(self, path: str | Path) -> Path:
        """Every rating, one row each, with its time."""
        path = Path(path)
        rows = self._rows()
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(rows)
        return path


def summaries(ratings: list[Rating]) -> list[Summary]:
    """Per model (sorted) and metric: count, mean and 95% CI half-width."""
    by_model: dict[str, list[Rating]] = {}
    for rating in ratings:
        by_model.setdefault(rating.model, []).append(rating)
    return [summarise(model, metric, [getattr(r, metric) for r in rows])
            for model, rows in sorted(by_model.items()) for metric in METRICS]


def summarise(model: str, metric: str, scores: list[int]) -> Summary:
    """Mean and the half-width of its 95% Student-t confidence interval."""
    n = len(scores)
    mean = sum(scores) / n
    if n < 2:
        return Summary(model, metric, n, mean, math.nan)
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1))
    return Summary(model, metric, n, mean, float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n))


def summary_table(summaries: list[Summary]) -> str:
    """Markdown: one row per model, MOS_r and MOS_t as mean ± CI (n)."""
    cells: dict[str, dict[str, str]] = {}
    for s in summaries:
        ci = "n/a" if math.isnan(s.ci95) else f"{s.ci95:.2f}"
        cells.setdefault(s.model, {})[s.metric] = f"{s.mean:.2f} ± {ci} (n={s.n})"
    lines = ["| model | MOS_r | MOS_t |", "|---|---|---|"]
    lines += [f"| {model} | {row['mos_r']} | {row['mos_t']} |" for model, row in cells.items()]
    return "\n".join(lines)
