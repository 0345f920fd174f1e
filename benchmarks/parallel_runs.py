"""Two T-CLAP runs one after the other at 2 threads, against the same two side by side at one thread each.

`tclap experiment offline` trains its models two at a time, each in a fresh one-thread process
(`tclap.experiment.train_stages`); this measures what that buys over one run at a time with torch's
threads, through the same code and the offline recipe (`configs/tclap/offline.yaml`), on a small
synthesised world. Run it on an otherwise idle machine.

    python benchmarks/parallel_runs.py [--steps 150] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from tclap.config import default_config
from tclap.experiment import train_stage, train_stages

from order_free_data import write_order_free_data  # benchmarks/order_free_data.py, next to this script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150, help="steps of each T-CLAP run")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the one-at-a-time runs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/parallel_runs.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_order_free_data(tmp, clips=400)
        data = {"positive_only": [str(tmp / "pairs.jsonl")], "mixup": str(tmp / "mixup")}
        # in its own process, as the job trains it (accelerate keeps the first precision a process uses)
        baseline = train_stages([(str(default_config("tclap/offline_baseline.yaml")), tmp / "baseline", {
            "model": {"init": "tiny"}, "data": {**data, "validation": str(tmp / "mixup")},
            "train": {"steps": 20}})], parallel_runs=1)[0][0]

        def stages(folder: str) -> list[tuple]:
            return [(str(default_config("tclap/offline.yaml")), tmp / folder / name, {
                "model": {"init": str(baseline)}, "data": data, "loss": {"temporal_weight": weight},
                "train": {"steps": args.steps, "validate_every": args.steps, "checkpoint_every": args.steps}})
                for name, weight in (("tclap", None), ("control", 0.0))]

        torch.set_num_threads(args.threads)
        start = time.perf_counter()
        for stage in stages("one_at_a_time"):
            train_stage(*stage)
        one_at_a_time = time.perf_counter() - start
        start = time.perf_counter()
        train_stages(stages("side_by_side"), parallel_runs=2)
        side_by_side = time.perf_counter() - start
    result = {"steps_per_run": args.steps, "runs": 2,
              f"one_at_a_time_{args.threads}_threads_s": round(one_at_a_time, 1),
              "side_by_side_1_thread_each_s": round(side_by_side, 1),
              "speedup": round(one_at_a_time / side_by_side, 2), "cpu_count": __import__("os").cpu_count()}
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
