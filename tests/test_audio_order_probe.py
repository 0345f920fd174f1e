"""scripts/audio_order_probe.py: labels by hand, and a short run on the offline world, both tower kinds."""
from __future__ import annotations

import json

import pytest

from audioldm_world import save_tiny_clap
from scripts.audio_order_probe import main, order_set
from tclap.data.mixup import MANIFEST, read_manifest


def test_each_clip_and_its_swapped_twin_get_opposite_labels(mixup_dir):
    audio, labels = order_set(mixup_dir, "val", 16000, 16000)
    records = [r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == "val"]
    first, second = (e["category"] for e in records[0]["events"])
    assert audio.shape == (2 * len(records), 16000)
    assert labels[0] == int(first < second) and labels[1] == 1 - labels[0]


@pytest.mark.parametrize("fresh", [[], ["--fresh", '{"num_mel_bins": 64, "spec_size": 64}', "--hop-length", "1024"]])
def test_a_short_run_prints_the_validation_accuracy(mixup_dir, tmp_path, capsys, fresh):
    model = save_tiny_clap(mixup_dir, tmp_path / "clap")
    main(["--model", str(model), "--mixup", str(mixup_dir), "--steps", "2", "--bias-lr-multiplier", "30", *fresh])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[-1]["step"] == 2 and 0 <= rows[-1]["val_accuracy"] <= 100
