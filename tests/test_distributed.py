"""Two CPU processes (gloo) must train exactly like one process, and resume like one after a kill."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPT = Path(__file__).with_name("distributed_loss_check.py")
TRAINER = Path(__file__).with_name("distributed_trainer_run.py")


def launch(processes: int, script: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    # `--cpu` runs a single process in accelerate 1.x; `--multi_gpu` starts one process per rank
    # (torchrun), which ACCELERATE_USE_CPU joins into one gloo run when no GPU is visible.
    mode = ["--multi_gpu"] if processes > 1 else ["--cpu"]
    command = [sys.executable, "-m", "accelerate.commands.launch", *mode, "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def loss_check(processes: int, out: Path) -> dict:
    result = launch(processes, SCRIPT, str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_two_process_loss_and_gradients_equal_one_process(tmp_path):
    one, two = loss_check(1, tmp_path / "one.json"), loss_check(2, tmp_path / "two.json")
    assert (one["processes"], two["processes"]) == (1, 2)
    # the contrastive term sees the global batch in both runs: equal to float precision
    assert two["losses"]["contrastive_loss"] == pytest.approx(one["losses"]["contrastive_loss"], rel=1e-6)
    # per-sample terms are means over equal halves, so their process-mean is the global mean
    assert two["losses"]["temporal_loss"] == pytest.approx(one["losses"]["temporal_loss"], rel=1e-6)
    assert set(two["losses"]) == {"contrastive_loss", "temporal_loss"}
    for name in one["grads"]:  # DDP averages; the all_gather backward routes each row's gradient home
        expected, got = np.array(one["grads"][name]), np.array(two["grads"][name])
        # float32 sums in another order: seen 5e-7 on |g| ~ 3; allow 1e-5 of the gradient's own scale
        assert np.abs(got - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max()), name


@pytest.mark.slow
def test_two_process_training_killed_then_resumed_reaches_the_same_weights(tmp_path):
    straight = launch(2, TRAINER, str(tmp_path / "straight"), "none")
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = launch(2, TRAINER, str(tmp_path / "killed"), "7")  # both ranks die in step 7, after checkpoint-4
    assert killed.returncode != 0 and not (tmp_path / "killed" / "final").exists()
    checkpoint = tmp_path / "killed" / "checkpoint-4"
    assert {p.name for p in checkpoint.glob("random_states_*.pkl")} == {"random_states_0.pkl", "random_states_1.pkl"}
    resumed = launch(2, TRAINER, str(tmp_path / "killed"), "none")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = torch.load(tmp_path / "straight" / "final" / "weights.pt")
    b = torch.load(tmp_path / "killed" / "final" / "weights.pt")
    for name in a:
        assert torch.equal(a[name], b[name]), name
