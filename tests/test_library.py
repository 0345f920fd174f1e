from __future__ import annotations

import shutil

import pytest

from tclap.data.library import assign_folds, read_library
from tclap.errors import DataError


def test_reads_the_synthesised_world(world):
    library = read_library(world)
    assert len(library.files) == 60 and len(library.categories) == 12
    assert library.folds == [1, 2, 3, 4, 5]
    assert all(f.path.is_file() for f in library.files)


def copy_world(world, tmp_path):
    target = tmp_path / "lib"
    shutil.copytree(world, target)
    return target, target / "meta" / "esc50.csv"


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("category", "label", 1), "missing column"),
    (lambda text: text.replace(",1,", ",one,", 1), "must be integers"),
    (lambda text: text.replace(".wav", "_gone.wav", 1), "not found"),
])
def test_bad_meta_is_named(world, tmp_path, edit, message):
    root, meta = copy_world(world, tmp_path)
    meta.write_text(edit(meta.read_text()))
    with pytest.raises(DataError, match=message) as error:
        read_library(root)
    assert "esc50.csv" in str(error.value)


def test_one_category_per_target(world, tmp_path):
    root, meta = copy_world(world, tmp_path)
    lines = meta.read_text().splitlines()
    header, first = lines[0], lines[1].split(",")
    first[3] = "not_" + first[3]
    meta.write_text("\n".join([header, *lines[2:], ",".join(first)]) + "\n")
    with pytest.raises(DataError, match="target"):
        read_library(root)


def test_missing_meta(tmp_path):
    with pytest.raises(DataError, match="meta CSV not found"):
        read_library(tmp_path)


def test_fold_assignment():
    assert assign_folds([1, 2, 3, 4, 5]) == {"train": [1, 2, 3], "val": [4], "test": [5]}
    assert assign_folds([1, 2], None, None) == {"train": [1], "val": [], "test": [2]}
    assert assign_folds([1, 2, 3, 4, 5], [1], [2]) == {"train": [3, 4, 5], "val": [2], "test": [1]}
    with pytest.raises(DataError, match="not in the library"):
        assign_folds([1, 2, 3], [7])
    with pytest.raises(DataError, match="overlap"):
        assign_folds([1, 2, 3], [3], [3])
