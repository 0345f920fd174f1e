"""`tclap experiment offline`'s table: mean and sample standard deviation over seeds, said in its header."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tclap.experiment import MODELS, markdown, summarize


def test_summary_is_the_mean_and_the_n_minus_1_standard_deviation_over_seeds():
    runs = {m: [{"tclassify_t2a": v, "zeroshot_esc50_acc": 60.0} for v in (50.0, 53.0, 59.0)] for m in MODELS}
    summary = summarize(runs, {m: [10.0, 20.0, 30.0] for m in MODELS}, {"baseline": 600, "control": 1500, "tclap": 1500})
    # by hand: mean 54, squared deviations 16 + 1 + 25 = 42, / (3 - 1) = 21
    assert summary["tclap"]["tclassify_t2a"] == 54.0
    assert summary["tclap"]["tclassify_t2a_std"] == pytest.approx(round(math.sqrt(21), 2))
    assert summary["tclap"]["zeroshot_acc_std"] == 0.0 and summary["tclap"]["train_seconds"] == 60.0
    table = markdown(summary)
    assert table.startswith("Mean ± sample standard deviation (n - 1) over 3 seeds;")
    assert "| tclap | 54.0 ± 4.6 |" in table
    assert table.splitlines()[-1].endswith("| 1500 | 1.0 |")  # its steps, and 10 + 20 + 30 s in minutes
    assert summary["baseline"]["steps"] == 600
    one = markdown(summarize({m: runs[m][:1] for m in MODELS}, {m: [30.0] for m in MODELS}))
    assert one.startswith("One seed;") and "| tclap | 50.0 | – |" in one  # no ± for a single seed



def test_environment_variables_are_set_for_the_block_and_restored(monkeypatch):
    import os

    from tclap.experiment import environment_variables

    monkeypatch.setenv("TCLAP_TEST_A", "kept")
    monkeypatch.delenv("TCLAP_TEST_B", raising=False)
    with environment_variables({"TCLAP_TEST_A": "1", "TCLAP_TEST_B": "2"}):
        assert os.environ["TCLAP_TEST_A"] == "1" and os.environ["TCLAP_TEST_B"] == "2"
    assert os.environ["TCLAP_TEST_A"] == "kept" and "TCLAP_TEST_B" not in os.environ


def test_each_run_reads_the_jobs_files_that_its_config_lists(tmp_path):
    from tclap.errors import DataError
    from tclap.experiment import positive_only_files

    written = {"orderfree_train.jsonl": tmp_path / "a.jsonl", "singles_train.jsonl": tmp_path / "b.jsonl"}
    config = tmp_path / "run.yaml"
    config.write_text("data:\n  positive_only: [results/offline/singles_train.jsonl, x/orderfree_train.jsonl]\n")
    assert positive_only_files(config, written) == [str(tmp_path / "b.jsonl"), str(tmp_path / "a.jsonl")]
    config.write_text("data:\n  positive_only: [/data/auto_acd.jsonl]\n")
    with pytest.raises(DataError, match=r"run.yaml: data.positive_only lists \['/data/auto_acd.jsonl'\]"):
        positive_only_files(config, written)


HOLDING_SCRIPT = '''
import os, sys, time
from tclap.experiment import training_pool

def hold(path):
    open(path + ".part", "w").write(str(os.getpid()))
    os.rename(path + ".part", path)
    time.sleep(120)

if __name__ == "__main__":
    with training_pool(1) as pool:
        pool.submit(hold, sys.argv[1]).result()
'''


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited; a container's PID 1 may never reap it


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is a Linux prctl")
def test_a_training_worker_dies_with_a_killed_experiment(tmp_path):
    """`tclap experiment` SIGKILLed mid-stage must not leave a run writing on into a folder a rerun resumes."""
    script, pid_file = tmp_path / "hold.py", tmp_path / "worker.pid"
    script.write_text(HOLDING_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(pid_file)])
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists():
            assert time.monotonic() < deadline and parent.poll() is None, "the worker never started"
            time.sleep(0.1)
        worker = int(pid_file.read_text())
        assert _alive(worker)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 15
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker)
    finally:
        parent.kill()
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
