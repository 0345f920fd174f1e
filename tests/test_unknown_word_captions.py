"""scripts/unknown_word_captions.py: the word's place by hand, and a copy of a mixed-up folder."""
from __future__ import annotations

import pytest

from scripts.unknown_word_captions import main, with_word, write_unknown_word_copy
from tclap.data.datasets import AudioWindow, MixupClips
from tclap.data.mixup import MANIFEST, read_manifest
from tclap.errors import DataError


@pytest.mark.parametrize("phrasing, expected", [
    ("{1} after {0}", "{1} W after {0}"),
    ("{0} and then {1}", "{0} W and then {1}"),
    ("first {0}, then {1}", "first {0}, W then {1}"),
    ("{0}, after that {1}", "{0}, W after that {1}"),
    ("after {0}, {1}", "after {0}, W {1}"),
])
def test_the_word_goes_after_the_first_event_and_its_comma(phrasing, expected):
    assert with_word(phrasing, "W") == expected


def test_the_copy_changes_the_split_captions_alike_and_keeps_the_rest(mixup_dir, tmp_path):
    out = tmp_path / "copy"
    assert write_unknown_word_copy(mixup_dir, out, split="val") == 10
    before, after = read_manifest(mixup_dir / MANIFEST), read_manifest(out / MANIFEST)
    known = {w for r in before for t in (r["caption"], r["neg_caption"]) for w in t.replace(",", " ").split()}
    for old, new in zip(before, after):
        if old["split"] != "val":
            assert new == old
            continue
        added = [w for w in new["caption"].replace(",", " ").split() if w not in known]
        assert len(added) == 1 and new["caption"].replace(f" {added[0]}", "", 1) == old["caption"]
        assert new["neg_caption"].replace(f" {added[0]}", "", 1) == old["neg_caption"]
        first = old["events"][0]["label"] if old["phrasing"].index("{0}") < old["phrasing"].index("{1}") \
            else old["events"][1]["label"]
        assert f"{first} {added[0]}" in new["caption"].replace(",", "")
    clip = MixupClips(out, "val", AudioWindow(16000, 1.0, train=False))[0]   # the audio is reachable
    assert clip["audio"].shape == (16000,)
    assert clip["caption"] == next(r["caption"] for r in after if r["split"] == "val")


def test_an_existing_folder_is_refused_and_left_alone(mixup_dir, tmp_path, capsys):
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit, match="exists"):
        main(["--mixup", str(mixup_dir), "--out", str(tmp_path / "copy")])
    assert [p.name for p in (tmp_path / "copy").iterdir()] == ["mine.txt"]
    with pytest.raises(DataError, match="no two-event clips in split 'test2'"):
        write_unknown_word_copy(mixup_dir, tmp_path / "other", split="test2")
    assert not (tmp_path / "other").exists()
