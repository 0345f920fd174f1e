"""scripts/gpu_generation.sh, the one-command GPU run of the offline generation experiment, through its
CPU path on tiny settings: the same data, training, experiment and packing steps, so it cannot rot."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from audioldm_cond.pipeline import load_pipeline
from audioldm_world import save_tiny_clap

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_script_runs_its_cpu_path_and_packs_at_most_8_files(mixup_dir, tmp_path):
    judge = save_tiny_clap(mixup_dir, tmp_path / "judge", seed=7)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OUT": str(tmp_path / "out"),
           "WORK": str(tmp_path / "work"), "DEVICE": "cpu", "JUDGE": str(judge), "FILES_PER_CLASS": "5",
           "CLIPS": "40", "TEST_CLIPS": "40", "GENERATION_ARGS": "--clips 1 --seeds 0 --steps 2",
           "OMP_NUM_THREADS": "1"}
    tiny = ["--set", "train.steps=2", "--set", "train.batch_size=4", "--set", "train.mixed_precision=no",
            "--set", "train.num_workers=0", "--set", "train.log_every=1", "--set", "train.checkpoint_every=2",
            "--set", "samples.prompts=[]", "--set", "data.val_clips=4"]
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_generation.sh"), *tiny], env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["metrics.json", "pipelines.tar.gz", "run.log", "table.md", "train_clap.log", "train_tclap.log"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"CLAP", "T-CLAP"} <= set(metrics["models"]) and metrics["config"]["device"] == "cpu"
    assert set(metrics["single_event"]) == {"reference", "resynthesised", "CLAP", "T-CLAP"}  # with its ceilings
    with tarfile.open(out / "pipelines.tar.gz") as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    for cond in ("clap", "tclap"):
        pipeline = tmp_path / "unpacked" / f"audioldm_{cond}" / "pipeline"
        assert load_pipeline(pipeline).vae_scale_factor in (4, 8)
        curve = (pipeline / "training_metrics.csv").read_text().splitlines()
        assert curve[0] == "step,name,value" and any(",mse_loss," in row for row in curve)
        provenance = json.loads((pipeline / "audioldm_provenance.json").read_text())
        assert provenance["config"]["model"]["cond"] == cond
        assert provenance["config"]["train"]["max_minutes"] == 3
        assert provenance["config"]["condition"]["mode"] == "text"
