"""A labelled single-event sound library in ESC-50 layout: `audio/*.wav` + `meta/esc50.csv`.

The synthesised offline world, real ESC-50 and a user's own recordings all go through this reader.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tclap.csv_rows import csv_rows
from tclap.errors import DataError

META_COLUMNS = ("filename", "fold", "target", "category")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LibraryFile:
    path: Path
    fold: int
    target: int
    category: str


@dataclass(frozen=True)
class SoundLibrary:
    root: Path
    files: tuple[LibraryFile, ...]

    @property
    def categories(self) -> list[str]:
        return sorted({f.category for f in self.files})

    @property
    def folds(self) -> list[int]:
        return sorted({f.fold for f in self.files})

    def in_folds(self, folds: Sequence[int]) -> list[LibraryFile]:
        return [f for f in self.files if f.fold in set(folds)]


META = "meta/esc50.csv"  # the meta CSV's place in an ESC-50 layout folder


def read_library(root: str | Path, meta: str = META) -> SoundLibrary:
    """Read and check a library: required columns, integer folds, one category per target, files present.

    Args:
        root: library folder holding `audio/` and the meta CSV.
        meta: path of the meta CSV, relative to `root`.
    """
    root = Path(root)
    meta_path = root / meta
    if not meta_path.is_file():
        raise DataError(f"{meta_path}: meta CSV not found (expected ESC-50 layout: audio/*.wav + {meta})")
    files, category_of = [], {}
    for where, row in csv_rows(meta_path, META_COLUMNS):
        try:
            fold, target = int(row["fold"]), int(row["target"])
        except (TypeError, ValueError):
            raise DataError(f"{where}: fold and target must be integers, got "
                            f"fold={row['fold']!r} target={row['target']!r}") from None
        category = (row["category"] or "").strip()
        if not category or not (row["filename"] or "").strip():
            raise DataError(f"{where}: empty filename or category")
        if category_of.setdefault(target, category) != category:
            raise DataError(f"{where}: target {target} is {category!r} here but "
                            f"{category_of[target]!r} earlier")
        path = root / "audio" / row["filename"].strip()
        if not path.is_file():
            raise DataError(f"{where}: audio file {path} not found")
        files.append(LibraryFile(path, fold, target, category))
    if not files:
        raise DataError(f"{meta_path}: no rows")
    return SoundLibrary(root, tuple(files))


def assign_folds(folds: Sequence[int], test_folds: Sequence[int] | None = None,
                 val_folds: Sequence[int] | None = None) -> dict[str, list[int]]:
    """Split fold numbers into train/val/test; by default the last fold is test, the one before val.

    Args:
        folds: all fold numbers present in the library.
        test_folds: folds reserved for testing (default: the highest).
        val_folds: folds reserved for validation (default: the second highest; none if only 2 folds).
    """
    folds = sorted(set(folds))
    test = list(test_folds) if test_folds else folds[-1:]
    val = list(val_folds) if val_folds is not None else [f for f in folds if f not in test][-1:]
    if len(folds) < 3 and val_folds is None:
        val = []
    train = [f for f in folds if f not in test and f not in val]
    unknown = sorted((set(test) | set(val)) - set(folds))
    if unknown:
        raise DataError(f"folds {unknown} are not in the library (it has {folds})")
    if set(test) & set(val):
        raise DataError(f"test folds {test} and val folds {val} overlap")
    if not train:
        raise DataError(f"no training folds left: library folds {folds}, test {test}, val {val}")
    return {"train": train, "val": val, "test": test}
