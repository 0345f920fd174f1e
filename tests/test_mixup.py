from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SMALL_MIXUP
from tclap.audio import load_audio
from tclap.data.library import read_library
from tclap.data.mixup import MANIFEST, SETTINGS, MixupConfig, build_mixup, read_manifest, read_settings
from tclap.data.phrasing import PHRASINGS
from tclap.errors import DataError


def manifest(root):
    return read_manifest(root / MANIFEST)


def test_splits_never_share_a_source_and_test_uses_test_folds(world, mixup_dir):
    records = manifest(mixup_dir)
    assert [r["split"] for r in records].count("test") == 10 and len(records) == 40
    fold_of = {f.path.name: f.fold for f in read_library(world).files}
    sources = {split: {e["source"] for r in records if r["split"] == split for e in r["events"]}
               for split in ("train", "val", "test")}
    assert {fold_of[s] for s in sources["test"]} == {5}
    assert {fold_of[s] for s in sources["val"]} == {4}
    assert {fold_of[s] for s in sources["train"]} <= {1, 2, 3}
    assert not (sources["train"] & sources["test"]) and not (sources["train"] & sources["val"])


def test_records_describe_the_audio(mixup_dir):
    for r in manifest(mixup_dir):
        audio = load_audio(mixup_dir / r["audio"], 16000)
        assert len(audio) == 4 * 16000
        assert len({e["category"] for e in r["events"]}) == r["n_events"] == 2
        spans = [(e["onset"], e["offset"]) for e in r["events"]]
        assert all(a < b for a, b in spans) and spans[0][1] <= spans[1][0] <= 4.0
        inside = np.concatenate([audio[int(a * 16000):int(b * 16000)] for a, b in spans])
        outside = np.concatenate([audio[:int(spans[0][0] * 16000)], audio[int(spans[1][1] * 16000):],
                                  audio[int(spans[0][1] * 16000):int(spans[1][0] * 16000)]])
        if len(outside):  # the events are loud, the rest is digital silence
            assert np.abs(outside).max() < 1e-3 < np.sqrt(np.mean(inside ** 2))


def test_negative_audio_is_the_same_segments_swapped(mixup_dir):
    for r in manifest(mixup_dir)[:10]:
        pos = sf.read(mixup_dir / r["audio"], dtype="int16")[0]
        neg = sf.read(mixup_dir / r["neg_audio"], dtype="int16")[0]
        assert not np.array_equal(pos, neg)
        for e in r["neg_events"]:
            match = next(p for p in r["events"] if p["source"] == e["source"])
            a, b = round(match["onset"] * 16000), round(match["offset"] * 16000)
            c, d = round(e["onset"] * 16000), round(e["offset"] * 16000)
            np.testing.assert_array_equal(pos[a:b], neg[c:d])


def test_captions_state_the_order(mixup_dir):
    templates = {p.template: p for p in PHRASINGS}
    for r in manifest(mixup_dir):
        labels = [e["label"] for e in r["events"]]
        phrasing = templates[r["phrasing"]]
        assert r["caption"] == phrasing.render(labels)
        assert r["neg_caption"] == phrasing.render([e["label"] for e in r["neg_events"]])
        assert r["neg_caption"] != r["caption"]
        assert r["word_order_reversed"] == phrasing.reversed
        if r["split"] != "test":
            assert r["phrasing_seen"]


def test_test_split_draws_unseen_phrasings(world, tmp_path):
    cfg = MixupConfig(clips=60, clip_seconds=4.0, split_fractions={"train": 0.0, "test": 1.0} | {"val": 0.0})
    build_mixup(world, tmp_path, cfg)
    records = manifest(tmp_path)
    assert any(not r["phrasing_seen"] for r in records) and any(r["phrasing_seen"] for r in records)


def test_three_event_clips(world, tmp_path):
    build_mixup(world, tmp_path, MixupConfig(clips=12, events=[3], clip_seconds=6.0))
    for r in manifest(tmp_path):
        assert r["n_events"] == 3 and len({e["category"] for e in r["events"]}) == 3
        assert [e["category"] for e in r["neg_events"]] != [e["category"] for e in r["events"]]


def test_crossfade_overlaps_consecutive_events(world, tmp_path):
    build_mixup(world, tmp_path, MixupConfig(clips=12, clip_seconds=4.0, gap_seconds=[0.0, 0.0],
                                             crossfade_seconds=0.2))
    overlaps = [r["events"][0]["offset"] - r["events"][1]["onset"] for r in manifest(tmp_path)]
    assert max(overlaps) > 0.01 and all(o <= 0.2 + 1e-3 for o in overlaps)


def test_resume_after_a_truncated_manifest_gives_the_same_clips(world, mixup_dir, tmp_path):
    out = tmp_path / "resumed"
    cfg = MixupConfig(**SMALL_MIXUP)
    build_mixup(world, out, cfg)
    lines = (out / MANIFEST).read_text().splitlines()
    (out / MANIFEST).write_text("\n".join(lines[:7]) + "\n" + lines[7][:25])  # killed mid-write
    report = build_mixup(world, out, cfg)
    assert report.reused == 7 and report.built == 33
    assert manifest(out) == manifest(mixup_dir)
    for r in manifest(out):
        assert (out / r["audio"]).read_bytes() == (mixup_dir / r["audio"]).read_bytes()


def test_two_workers_build_the_same_clips(world, mixup_dir, tmp_path):
    build_mixup(world, tmp_path, MixupConfig(**SMALL_MIXUP), workers=2)
    assert manifest(tmp_path) == manifest(mixup_dir)


def test_other_settings_in_the_same_folder_are_refused(world, mixup_dir, tmp_path):
    shutil.copytree(mixup_dir, tmp_path / "m")
    with pytest.raises(DataError, match="clip_seconds"):
        build_mixup(world, tmp_path / "m", MixupConfig(**{**SMALL_MIXUP, "clip_seconds": 5.0}))
    shutil.copytree(world, tmp_path / "other_world")
    with pytest.raises(DataError, match=r"settings \(library\)"):
        build_mixup(tmp_path / "other_world", tmp_path / "m", MixupConfig(**SMALL_MIXUP))


def test_a_results_folder_copied_whole_reads_its_own_library(world, tmp_path):
    """World and clips side by side, as the main job writes them: the copy resumes (nothing rebuilt)
    and reads its own world, though the original still exists."""
    shutil.copytree(world, tmp_path / "a" / "world")
    build_mixup(tmp_path / "a" / "world", tmp_path / "a" / "mixup", MixupConfig(**SMALL_MIXUP))
    assert json.loads((tmp_path / "a" / "mixup" / SETTINGS).read_text())["library_beside"] == os.path.join("..", "world")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    report = build_mixup(tmp_path / "b" / "world", tmp_path / "b" / "mixup", MixupConfig(**SMALL_MIXUP))
    assert (report.reused, report.built) == (40, 0)
    assert read_settings(tmp_path / "b" / "mixup")["library"] == (tmp_path / "b" / "world").resolve()


def test_a_clips_folder_moved_alone_finds_its_library_by_the_absolute_name(world, tmp_path):
    """Beside the moved clips lies another library (a decoy `world/`) or none: the absolute name serves."""
    shutil.copytree(world, tmp_path / "a" / "world")
    build_mixup(tmp_path / "a" / "world", tmp_path / "a" / "mixup", MixupConfig(**{**SMALL_MIXUP, "clips": 4}))
    shutil.copytree(tmp_path / "a" / "mixup", tmp_path / "alone" / "mixup")
    assert read_settings(tmp_path / "alone" / "mixup")["library"] == (tmp_path / "a" / "world").resolve()
    shutil.copytree(world, tmp_path / "alone" / "world")
    with open(tmp_path / "alone" / "world" / "meta" / "esc50.csv", "a") as meta:
        meta.write("extra.wav,1,0,beep,False,0,A\n")
    assert read_settings(tmp_path / "alone" / "mixup")["library"] == (tmp_path / "a" / "world").resolve()


def test_a_settings_file_without_the_relative_name_reads_the_absolute_one(mixup_dir, tmp_path):
    settings = json.loads((mixup_dir / SETTINGS).read_text())
    legacy = {k: v for k, v in settings.items() if k not in ("library_beside", "library_meta_sha256")}
    (tmp_path / SETTINGS).write_text(json.dumps(legacy))
    assert read_settings(tmp_path)["library"] == Path(settings["library"])


def test_an_outside_library_is_named_absolutely(world, tmp_path):
    build_mixup(world, tmp_path / "deep" / "mixup", MixupConfig(**{**SMALL_MIXUP, "clips": 4}))
    written = json.loads((tmp_path / "deep" / "mixup" / SETTINGS).read_text())
    assert written["library"] == str(world.resolve()) and "library_beside" not in written
    with pytest.raises(DataError, match="not found; is .* a folder built by `tclap mixup`"):
        read_settings(tmp_path / "deep")


@pytest.fixture
def bad_library(world, tmp_path):
    """The small world plus a corrupt, a silent, a too-short and a 44.1 kHz stereo file."""
    root = tmp_path / "bad"
    shutil.copytree(world, root)
    rate = 16000
    (root / "audio" / "corrupt.wav").write_bytes(b"RIFF....WAVEjunk")
    sf.write(root / "audio" / "silent.wav", np.zeros(rate, dtype=np.float32), rate)
    short = np.zeros(rate, dtype=np.float32)
    short[8000:8400] = 0.5 * np.sin(np.arange(400) / 3)  # 25 ms of sound
    sf.write(root / "audio" / "short.wav", short, rate)
    t = np.arange(44100) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 500 * t)] * 2, axis=1) * (t > 0.3)[:, None] * (t < 0.7)[:, None]
    sf.write(root / "audio" / "stereo44k.wav", stereo, 44100)
    with open(root / "meta" / "esc50.csv", "a") as meta:
        for name in ("corrupt", "silent", "short", "stereo44k"):
            meta.write(f"{name}.wav,1,0,beep,False,0,A\n")
    return root


def test_bad_source_files_are_skipped_and_reported(bad_library, tmp_path):
    report = build_mixup(bad_library, tmp_path, MixupConfig(clips=20, clip_seconds=4.0))
    reasons = report.skipped_files
    assert {p.rsplit("/", 1)[-1] for p in reasons} == {"corrupt.wav", "silent.wav", "short.wav"}
    assert "cannot decode" in reasons[str(bad_library / "audio" / "corrupt.wav")]
    assert "silent" in reasons[str(bad_library / "audio" / "silent.wav")]
    assert "too short" in reasons[str(bad_library / "audio" / "short.wav")]
    used = {e["source"] for r in manifest(tmp_path) for e in r["events"]}
    assert not used & {"corrupt.wav", "silent.wav", "short.wav"}


def test_strict_mode_stops_at_the_first_bad_file(bad_library, tmp_path):
    with pytest.raises(DataError, match="corrupt.wav"):
        build_mixup(bad_library, tmp_path, MixupConfig(clips=20, clip_seconds=4.0, skip_bad_files=False))


def test_settings_are_checked():
    with pytest.raises(DataError, match="events"):
        MixupConfig(events=[4])
    with pytest.raises(DataError, match="too short"):
        MixupConfig(clip_seconds=0.5)
    with pytest.raises(DataError, match="split_fractions"):
        MixupConfig(split_fractions={"train": 0.5})
