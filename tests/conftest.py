"""Shared fixtures: a small synthesised sound world, and mixed-up clips built from it."""
from __future__ import annotations

import pytest

from tclap.data.mixup import MixupConfig, build_mixup
from tclap.data.synth import SynthConfig, synthesize_world


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """12 classes x 5 files (one per fold), 16 kHz, 2.5 s."""
    return synthesize_world(tmp_path_factory.mktemp("world"), SynthConfig(files_per_class=5))


SMALL_MIXUP = dict(clips=40, clip_seconds=4.0, gap_seconds=[0.1, 0.3], seed=3,
                   split_fractions={"train": 0.5, "val": 0.25, "test": 0.25})


@pytest.fixture(scope="session")
def mixup_dir(world, tmp_path_factory):
    """40 two-event clips: 20 train, 10 val, 10 test."""
    out = tmp_path_factory.mktemp("mixup")
    build_mixup(world, out, MixupConfig(**SMALL_MIXUP))
    return out
