"""Log-mel front end throughput: transformers' numpy ClapFeatureExtractor vs our batched torch ClapLogMel.

32 clips of 10 s at 48 kHz (seeded noise), default extractor settings (truncation "fusion"). Each
contender: one warm-up, then the best of 3 timed runs. Ours runs on the CPU and, when CUDA is there,
on the GPU (clips already on the device, timed between torch.cuda.synchronize calls).

    python benchmarks/frontend_vs_clap_feature_extractor.py [--clips 32] [--out benchmarks/results/frontend.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from transformers import ClapFeatureExtractor

from tclap.features import ClapLogMel

from timing import best_seconds  # benchmarks/timing.py, next to this script

SECONDS = 10
REPEATS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/frontend.json"))
    args = parser.parse_args()

    extractor = ClapFeatureExtractor()
    rate = extractor.sampling_rate
    batch = np.random.default_rng(0).standard_normal((args.clips, SECONDS * rate)).astype(np.float32)
    clips = list(batch)
    frontend = ClapLogMel.from_feature_extractor(extractor)
    waveform = torch.from_numpy(batch)

    def run_extractor():
        return extractor(clips, sampling_rate=rate, return_tensors="pt")

    reference = run_extractor()["input_features"]
    rows = [{"name": "ClapFeatureExtractor (numpy, per clip)", "device": "cpu",
             "seconds": best_seconds(run_extractor, REPEATS)}]
    max_abs_diff_db = {}
    with torch.inference_mode():
        max_abs_diff_db["cpu"] = (frontend(waveform)["input_features"] - reference).abs().max().item()
        rows.append({"name": "ClapLogMel (torch, batched)", "device": "cpu",
                     "seconds": best_seconds(lambda: frontend(waveform), REPEATS)})
        if torch.cuda.is_available():
            frontend, waveform = frontend.to("cuda"), waveform.to("cuda")
            features = frontend(waveform)["input_features"].cpu()
            max_abs_diff_db["cuda"] = (features - reference).abs().max().item()
            rows.append({"name": "ClapLogMel (torch, batched)", "device": torch.cuda.get_device_name(),
                         "seconds": best_seconds(lambda: frontend(waveform), REPEATS, torch.cuda.synchronize)})

    for row in rows:
        row["clips_per_s"] = args.clips / row["seconds"]
        row["speedup_vs_extractor"] = rows[0]["seconds"] / row["seconds"]
    print(f"{args.clips} clips x {SECONDS} s at {rate} Hz, truncation={extractor.truncation!r}, "
          f"torch threads={torch.get_num_threads()}, best of {REPEATS}")
    print(f"{'front end':<40} {'device':<24} {'seconds':>8} {'clips/s':>9} {'ratio':>7}")
    for row in rows:
        print(f"{row['name']:<40} {row['device']:<24} {row['seconds']:>8.3f} {row['clips_per_s']:>9.1f} "
              f"{row['speedup_vs_extractor']:>7.1f}")
    for device, diff in max_abs_diff_db.items():
        print(f"max |ours ({device}) - extractor| = {diff:.2e} dB")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "clips": args.clips, "seconds_per_clip": SECONDS, "sampling_rate": rate,
        "truncation": extractor.truncation, "torch_threads": torch.get_num_threads(), "repeats": REPEATS,
        "results": [{key: round(value, 4) if isinstance(value, float) else value for key, value in row.items()}
                    for row in rows],
        "max_abs_diff_db": max_abs_diff_db}, indent=2))


if __name__ == "__main__":
    main()
