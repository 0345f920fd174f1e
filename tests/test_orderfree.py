from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tclap.data.datasets import read_pairs
from tclap.data.library import read_library
from tclap.data.mixup import MANIFEST, read_manifest, read_settings
from tclap.data.orderfree import write_order_free_pairs
from tclap.errors import DataError


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_pairs_cover_the_split_clips_and_the_single_events_of_its_folds(mixup_dir, tmp_path):
    n = write_order_free_pairs(mixup_dir, tmp_path / "all.jsonl")
    rows = _rows(tmp_path / "all.jsonl")
    clips = [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == "train"]
    library = read_library(read_settings(mixup_dir)["library"])
    train_folds = sorted(library.folds)[:-2]                       # the last two are test and val
    singles = [f for f in library.files if f.fold in train_folds]
    assert n == len(rows) == len(clips) + len(singles)
    for row, clip in zip(rows, clips):
        labels = [e["label"] for e in clip["events"]]
        assert row["id"] == f"{clip['id']}-orderfree"
        assert all(label in row["caption"] for label in labels)
        assert not any(word in row["caption"].split() for word in ("then", "before", "after", "followed"))
    assert [r["id"] for r in rows[len(clips):]] == [f"{f.path.stem}-single" for f in singles]


def test_each_kind_alone_is_its_rows_of_the_combined_file(mixup_dir, tmp_path):
    write_order_free_pairs(mixup_dir, tmp_path / "all.jsonl", seed=3)
    write_order_free_pairs(mixup_dir, tmp_path / "mixup.jsonl", seed=3, kinds=("mixup",))
    write_order_free_pairs(mixup_dir, tmp_path / "single.jsonl", seed=3, kinds=("single",))
    parts = _rows(tmp_path / "mixup.jsonl"), _rows(tmp_path / "single.jsonl")
    assert parts[0] and parts[1]
    assert all(r["id"].endswith("-orderfree") for r in parts[0])
    assert all(r["id"].endswith("-single") for r in parts[1])
    assert parts[0] + parts[1] == _rows(tmp_path / "all.jsonl")


@pytest.mark.parametrize("kinds", [(), ("singles",)])
def test_unknown_kinds_are_named(mixup_dir, tmp_path, kinds):
    with pytest.raises(DataError, match="kinds"):
        write_order_free_pairs(mixup_dir, tmp_path / "x.jsonl", kinds=kinds)
    assert not (tmp_path / "x.jsonl").exists()


def test_audio_paths_under_the_jsonl_folder_are_relative_so_the_folder_can_move(mixup_dir, tmp_path):
    job = tmp_path / "job"
    shutil.copytree(mixup_dir, job / "mixup")            # the clips move with the job; the library stays outside
    write_order_free_pairs(job / "mixup", job / "pairs.jsonl")
    rows = _rows(job / "pairs.jsonl")
    clips = [r for r in rows if r["id"].endswith("-orderfree")]
    singles = [r for r in rows if r["id"].endswith("-single")]
    assert clips and singles
    assert all(r["audio"].startswith("mixup/") for r in clips)
    assert all(Path(r["audio"]).is_absolute() for r in singles)
    job.rename(tmp_path / "moved")
    for row in read_pairs(tmp_path / "moved" / "pairs.jsonl"):
        assert row["audio"].is_file(), row["audio"]
