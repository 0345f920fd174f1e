"""Tests for the offline sound world: layout, determinism, silence, variation, learnable classes."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from tclap.data.synth import CLASSES, MAX_EVENT_SECONDS, SynthConfig, synthesize_event, synthesize_world
from tclap.errors import DataError

SAMPLE_RATE = 16000
DURATION = 2.5
FILES_PER_CLASS = 10
FRAME = int(0.05 * SAMPLE_RATE)


def read_rows(world: Path) -> list[dict[str, str]]:
    with open(world / "meta" / "esc50.csv", newline="") as f:
        return list(csv.DictReader(f))


def frame_db(x: np.ndarray, frame: int = FRAME, hop: int = FRAME // 5) -> np.ndarray:
    """RMS level in dB of overlapping frames (a plain loop, independent of the module's code)."""
    starts = range(0, len(x) - frame + 1, hop)
    return np.array([10 * np.log10(np.mean(x[s : s + frame] ** 2) + 1e-20) for s in starts])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    return synthesize_world(out, SynthConfig(files_per_class=FILES_PER_CLASS, sample_rate=SAMPLE_RATE))


@pytest.fixture(scope="module")
def rows(world) -> list[dict[str, str]]:
    return read_rows(world)


@pytest.fixture(scope="module")
def audio(world, rows) -> dict[str, np.ndarray]:
    return {row["filename"]: sf.read(world / "audio" / row["filename"])[0] for row in rows}


def test_layout_and_columns(world, rows):
    with open(world / "meta" / "esc50.csv") as f:
        header = f.readline().strip()
    assert header == "filename,fold,target,category,esc10,src_file,take"
    assert len(rows) == len(CLASSES) * FILES_PER_CLASS
    assert sorted(p.name for p in (world / "audio").iterdir()) == sorted(
        row["filename"] for row in rows
    )
    for row in rows:
        fold, src_file, take, target = row["fold"], row["src_file"], row["take"], row["target"]
        assert row["filename"] == f"{fold}-{src_file}-{take}-{target}.wav"
        assert re.fullmatch(r"\d+", row["src_file"])
        assert row["esc10"] == "False" and row["take"] == "A"
    assert len({row["src_file"] for row in rows}) == len(rows)


def test_folds_are_balanced_within_each_class(rows):
    for category in CLASSES:
        folds = [int(row["fold"]) for row in rows if row["category"] == category]
        assert sorted(folds) == sorted(list(range(1, 6)) * (FILES_PER_CLASS // 5))


def test_targets_follow_the_class_list(rows):
    assert {int(row["target"]): row["category"] for row in rows} == dict(enumerate(CLASSES))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", name) for name in CLASSES)
    assert len(CLASSES) >= 12


def test_chosen_classes_get_targets_in_the_given_order(tmp_path):
    rows = read_rows(synthesize_world(tmp_path, SynthConfig(classes=["siren", "beep"], files_per_class=5)))
    assert {(row["target"], row["category"]) for row in rows} == {("0", "siren"), ("1", "beep")}


def test_every_file_decodes_at_the_stated_rate_and_length(world, rows, audio):
    for row in rows:
        info = sf.info(world / "audio" / row["filename"])
        assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
        assert info.frames == int(DURATION * SAMPLE_RATE)
        assert np.max(np.abs(audio[row["filename"]])) <= 0.99


def test_same_seed_gives_identical_bytes_and_other_seed_other_audio(tmp_path):
    def make(name: str, seed: int) -> Path:
        return synthesize_world(tmp_path / name, SynthConfig(files_per_class=5, seed=seed))

    first, again, other = make("a", 0), make("b", 0), make("c", 1)
    for path in sorted((first / "audio").iterdir()) + [first / "meta" / "esc50.csv"]:
        relative = path.relative_to(first)
        assert path.read_bytes() == (again / relative).read_bytes()
    for path in sorted((first / "audio").iterdir()):
        a, b = sf.read(path)[0], sf.read(other / "audio" / path.name)[0]
        assert not np.allclose(a, b)


def test_a_file_does_not_depend_on_how_many_others_are_made(tmp_path, world, rows):
    small = synthesize_world(tmp_path / "small", SynthConfig(files_per_class=5))
    small_rows = read_rows(small)
    assert len(small_rows) == len(CLASSES) * 5
    for row in small_rows:
        assert (small / "audio" / row["filename"]).read_bytes() == (
            world / "audio" / row["filename"]
        ).read_bytes()
    # nor on which other classes are chosen: knock's audio is the same under another target
    subset = synthesize_world(tmp_path / "subset", SynthConfig(classes=["knock"], files_per_class=5))
    full_by_src = {row["src_file"]: row["filename"] for row in rows}
    for row in read_rows(subset):
        assert (subset / "audio" / row["filename"]).read_bytes() == (
            world / "audio" / full_by_src[row["src_file"]]
        ).read_bytes()


def test_event_is_surrounded_by_silence(audio):
    for name, x in audio.items():
        loudest = frame_db(x).max()
        head = 10 * np.log10(np.mean(x[:FRAME] ** 2))
        tail = 10 * np.log10(np.mean(x[-FRAME:] ** 2))
        assert max(head, tail) <= loudest - 30, name


@pytest.mark.parametrize("category", list(CLASSES))
def test_synthesize_event_contract(category):
    for sample_rate in (8000, 16000):
        for seed in range(20):
            event = synthesize_event(category, np.random.default_rng(seed), sample_rate)
            assert event.dtype == np.float32 and event.ndim == 1
            assert np.max(np.abs(event)) == pytest.approx(1.0)
            assert 0.15 <= len(event) / sample_rate <= MAX_EVENT_SECONDS


@pytest.mark.parametrize("category", list(CLASSES))
def test_two_events_of_a_class_are_not_the_same_waveform(category):
    a = synthesize_event(category, np.random.default_rng(1), SAMPLE_RATE).astype(np.float64)
    b = synthesize_event(category, np.random.default_rng(2), SAMPLE_RATE).astype(np.float64)
    # the best alignment of the two still leaves them far from identical
    xcorr = signal.correlate(a, b, mode="full", method="fft")
    assert np.max(np.abs(xcorr)) / (np.linalg.norm(a) * np.linalg.norm(b)) < 0.9


def test_event_durations_and_levels_vary_within_each_class(rows, audio):
    hop_s = FRAME / 5 / SAMPLE_RATE
    for category in CLASSES:
        spans, levels = [], []
        for row in rows:
            if row["category"] == category:
                db = frame_db(audio[row["filename"]])
                active = np.flatnonzero(db > db.max() - 15)
                spans.append((active[-1] - active[0]) * hop_s)
                levels.append(db.max())
        assert max(spans) - min(spans) > 0.1, category
        assert max(levels) - min(levels) > 5, category


def test_classes_are_separable_by_a_simple_independent_learner(rows, audio):
    """Log-mel mean+std over the event's frames, nearest centroid: folds 1-4 train, fold 5 test."""

    def features(x: np.ndarray) -> np.ndarray:
        power = librosa.feature.melspectrogram(
            y=x, sr=SAMPLE_RATE, n_fft=1024, hop_length=256, n_mels=64
        )
        frame_energy_db = 10 * np.log10(power.sum(axis=0))
        log_mel = librosa.power_to_db(power)[:, frame_energy_db > frame_energy_db.max() - 20]
        return np.concatenate([log_mel.mean(axis=1), log_mel.std(axis=1)])

    x = np.stack([features(audio[row["filename"]]) for row in rows])
    y = np.array([int(row["target"]) for row in rows])
    train = np.array([row["fold"] != "5" for row in rows])
    mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1e-8
    z = (x - mean) / std
    centroids = np.stack([z[train & (y == c)].mean(axis=0) for c in range(len(CLASSES))])
    distances = ((z[~train, None, :] - centroids[None]) ** 2).sum(axis=-1)
    accuracy = np.mean(distances.argmin(axis=1) == y[~train])
    print(f"nearest-centroid accuracy {accuracy:.3f} on {int((~train).sum())} held-out files")
    assert accuracy >= 0.95  # at most one of the 24 held-out files missed


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"classes": ["siren", "banjo"]}, "classes"),
        ({"classes": ["siren", "siren"]}, "classes"),
        ({"files_per_class": 4}, "files_per_class"),
        ({"num_folds": 0}, "num_folds"),
        ({"duration": 1.5}, "duration"),
        ({"sample_rate": 4000}, "sample_rate"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise_data_error_naming_them(tmp_path, kwargs, named):
    with pytest.raises(DataError, match=named):
        synthesize_world(tmp_path, SynthConfig(**kwargs))


def test_unknown_class_error_lists_the_valid_ones():
    with pytest.raises(DataError) as error:
        synthesize_event("banjo", np.random.default_rng(0), SAMPLE_RATE)
    assert "banjo" in str(error.value)
    assert all(name in str(error.value) for name in CLASSES)
