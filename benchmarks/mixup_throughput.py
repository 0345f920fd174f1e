"""Mixed-up clip build throughput on the offline default: 1 worker (baseline) vs N workers.

    python benchmarks/mixup_throughput.py [--clips 400] [--workers 2] [--out benchmarks/results/mixup.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tclap.config import section
from tclap.data.mixup import MixupConfig, build_mixup
from tclap.data.synth import SynthConfig, synthesize_world

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "data" / "offline.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mixup.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        synthesize_world(tmp / "world", section(SynthConfig, CONFIG, "synth", {}))
        synth_seconds = time.perf_counter() - start
        cfg = section(MixupConfig, CONFIG, "mixup", {"clips": args.clips})
        warm = section(MixupConfig, CONFIG, "mixup", {"clips": 8})
        build_mixup(tmp / "world", tmp / "warm-up", warm)  # librosa's first calls compile; keep them out
        rows = []
        for workers in (1, args.workers):
            start = time.perf_counter()
            build_mixup(tmp / "world", tmp / f"mixup{workers}", cfg, workers=workers)
            seconds = time.perf_counter() - start
            rows.append({"workers": workers, "clips": args.clips, "seconds": round(seconds, 2),
                         "clips_per_s": round(args.clips / seconds, 1)})
    for row in rows:
        row["speedup_vs_1_worker"] = round(row["clips_per_s"] / rows[0]["clips_per_s"], 2)
    print(f"synth-world (offline config): {synth_seconds:.1f} s")
    print(f"{'workers':>8} {'clips':>6} {'seconds':>8} {'clips/s':>8} {'ratio':>6}")
    for row in rows:
        print(f"{row['workers']:>8} {row['clips']:>6} {row['seconds']:>8} {row['clips_per_s']:>8} "
              f"{row['speedup_vs_1_worker']:>6}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"synth_world_seconds": round(synth_seconds, 2), "mixup": rows}, indent=2))


if __name__ == "__main__":
    main()
