"""The small synthesised data set the T-CLAP benchmarks train on: a world, mixed-up clips and their
order-free caption pairs."""
from __future__ import annotations

from pathlib import Path

from tclap.data.mixup import MixupConfig, build_mixup
from tclap.data.orderfree import write_order_free_pairs
from tclap.data.synth import SynthConfig, synthesize_world


def write_order_free_data(folder: Path, clips: int) -> None:
    """`folder/world` (10 files per class), `folder/mixup` (`clips` 4-s mixed-up clips) and
    `folder/pairs.jsonl` (their order-free caption pairs)."""
    synthesize_world(folder / "world", SynthConfig(files_per_class=10))
    build_mixup(folder / "world", folder / "mixup", MixupConfig(clips=clips, clip_seconds=4.0))
    write_order_free_pairs(folder / "mixup", folder / "pairs.jsonl")
