"""What one demo comparison costs on top of generating the clips, on the shipped checkpoints.

The baseline is the plain pipeline call for each shipped pipeline (`audioldm_cond.pipeline.generate`,
same prompt, seed, steps and length); the demo's Compare callback (`DemoApp.compare`) adds the prompt
check, event detection, verdicts and two spectrogram images. Prints (and writes as JSON) the seconds
of both, their ratio, the "Compare over N seeds" callback's seconds per seed (the figure the Compare tab
states next to the control), the time to load the shipped pipelines and detector, and the demo's
start-up in a fresh interpreter (imports, loading, the Gradio app built; not the web server).

    python benchmarks/demo_compare.py [--repeats 3] [--steps 20] [--seeds 4]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audioldm_cond.pipeline import generate
from tclap_demo.app import SECONDS_PER_SEED, DemoApp, DemoConfig
from tclap_demo.ratings import RatingStore
from tclap_demo.studio import Studio

from timing import best_seconds  # benchmarks/timing.py, next to this script

PROMPT = "siren followed by knock"
START = ("import sys, time; start = time.perf_counter(); from tclap_demo.app import DemoConfig, build_app; "
         "build_app(DemoConfig(db=sys.argv[1])); print(time.perf_counter() - start)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=4, help="N of the N-seed comparison timed once")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "demo_compare.json")
    args = parser.parse_args()

    cfg = DemoConfig(steps=args.steps)
    start = time.perf_counter()
    studio = Studio.load(cfg.pipelines, cfg.detector)
    load_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        app = DemoApp(studio, RatingStore(Path(tmp) / "ratings.sqlite"), {}, cfg)
        demo = best_seconds(lambda: app.compare(PROMPT, 0, args.steps, cfg.guidance_scale), args.repeats)
        seeds = best_seconds(lambda: app.compare_seeds(PROMPT, 0, args.steps, cfg.guidance_scale, args.seeds), 1)
        started = float(subprocess.run([sys.executable, "-c", START, str(Path(tmp) / "start.sqlite")], check=True,
                                       capture_output=True, text=True).stdout.split()[-1])
    plain = best_seconds(lambda: [generate(pipe, [PROMPT], cfg.seconds, args.steps, cfg.guidance_scale, 0)
                                  for pipe in studio.pipelines.values()], args.repeats)
    result = {"start_s": round(started, 2), "pipelines": len(studio.pipelines), "seconds": cfg.seconds,
              "steps": args.steps, "load_s": round(load_seconds, 2), "plain_generate_s": round(plain, 3), "demo_compare_s": round(demo, 3),
              "ratio": round(demo / plain, 2), "n_seeds": args.seeds, "seconds_per_seed": round(seeds / args.seeds, 2)}
    print(f"demo start in a fresh interpreter (imports, load, app built): {started:.2f} s; "
          f"loading the shipped pipelines + detector alone: {load_seconds:.2f} s")
    print(f"{len(studio.pipelines)} pipelines x {cfg.seconds:.0f} s, {args.steps} DDIM steps: plain generate "
          f"{plain:.3f} s, demo compare (+ detection, spectrograms) {demo:.3f} s, ratio {demo / plain:.2f}x")
    print(f"compare over {args.seeds} seeds: {seeds:.2f} s, {seeds / args.seeds:.2f} s per seed "
          f"(demo.app.SECONDS_PER_SEED states {SECONDS_PER_SEED} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
