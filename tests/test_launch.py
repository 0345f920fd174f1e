"""How a training script leaves: normally alone, past the interpreter's teardown in a multi-process run."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = ("import atexit, sys; from tclap.launch import finish\n"
          "atexit.register(lambda: print('teardown ran'))\n"
          "print('run written', flush=False)\n"
          "finish()\n")


@pytest.mark.parametrize("world_size, teardown", [(None, True), ("1", True), ("2", False)])
def test_finish_skips_the_teardown_only_in_multi_process_runs(world_size, teardown):
    env = {k: v for k, v in os.environ.items() if k != "WORLD_SIZE"}
    if world_size:
        env["WORLD_SIZE"] = world_size
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0
    assert "run written" in done.stdout  # flushed before os._exit, though print did not flush
    assert ("teardown ran" in done.stdout) is teardown


def test_a_failed_multi_process_run_still_exits_with_its_error_status(tmp_path):
    script = Path(__file__).parent.parent / "train_tclap.py"
    env = {**os.environ, "WORLD_SIZE": "2"}
    done = subprocess.run([sys.executable, str(script), "--config", str(tmp_path / "missing.yaml")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2 and "missing.yaml" in done.stderr
