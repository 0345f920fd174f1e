"""Two CPU processes (gloo) must train exactly like one process on the same global batch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("distributed_loss_check.py")


def launch(processes: int, out: Path) -> dict:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    # `--cpu` runs a single process in accelerate 1.x; with no GPU visible, the multi-process launcher
    # (torchrun) gives one CPU process per rank on the gloo backend.
    mode = ["--multi_gpu"] if processes > 1 else ["--cpu"]
    command = [sys.executable, "-m", "accelerate.commands.launch", *mode, "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_two_process_loss_and_gradients_equal_one_process(tmp_path):
    one, two = launch(1, tmp_path / "one.json"), launch(2, tmp_path / "two.json")
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
