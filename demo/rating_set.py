"""A rating set: clips from several models for the same prompts, stored so raters cannot tell the models.

    python demo/rating_set.py --pipeline CLAP=DIR --pipeline T-CLAP=DIR --prompts prompts.txt --out DIR

A set is a folder with `manifest.csv` (sample, model, prompt, file) and one WAV per sample. Sample
ids and file names are hashes, so neither reveals the model; each rater hears the samples in an
order shuffled by their own id (the same order when they come back).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from audioldm_cond.generation import read_prompts
from tclap_demo.studio import Settings, Studio, parse_pipelines
from tclap.audio import write_wav
from tclap.csv_rows import csv_rows
from tclap.errors import DataError

MANIFEST = "manifest.csv"
COLUMNS = ("sample", "model", "prompt", "file")


@dataclass(frozen=True)
class Sample:
    sample: str
    model: str
    prompt: str
    file: Path


def sample_id(model: str, prompt: str, settings: Settings) -> str:
    key = f"{model}\n{prompt}\n{settings}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def build_rating_set(studio: Studio, prompts: list[str], out: str | Path, settings: Settings = Settings()) -> Path:
    """Generate every prompt with every pipeline of `studio` into `out`; returns the manifest path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for prompt in tqdm(prompts, desc="rating set"):
        for clip in studio.compare(prompt, settings):
            sample = sample_id(clip.model, prompt, settings)
            write_wav(out / f"{sample}.wav", clip.audio, clip.sample_rate)
            rows.append({"sample": sample, "model": clip.model, "prompt": prompt, "file": f"{sample}.wav"})
    partial = out / (MANIFEST + ".partial")
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return partial.replace(out / MANIFEST)  # written last: a set with a manifest is complete


def read_rating_set(folder: str | Path) -> dict[str, Sample]:
    """Samples by id, with every row and file checked."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise DataError(f"{manifest}: rating set manifest not found")
    samples = {}
    for where, row in csv_rows(manifest, COLUMNS):
        if any(not (row[c] or "").strip() for c in COLUMNS):
            raise DataError(f"{where}: empty field")
        if row["sample"] in samples:
            raise DataError(f"{where}: sample {row['sample']!r} listed twice")
        path = folder / row["file"]
        if path.resolve().parent != folder.resolve() or not path.is_file():
            raise DataError(f"{where}: {row['file']!r} is not a file in {folder}")
        samples[row["sample"]] = Sample(row["sample"], row["model"], row["prompt"], path)
    if not samples:
        raise DataError(f"{manifest}: no samples")
    return samples


def presentation_order(rater: str, samples: dict[str, Sample]) -> list[str]:
    """Sample ids in this rater's own random order (stable across visits, different between raters)."""
    order = sorted(samples)
    random.Random(f"rater:{rater}").shuffle(order)
    return order


def read_clip(sample: Sample) -> tuple[int, np.ndarray]:
    """(sample rate, float32 audio) of a sample, as the app's audio player takes it."""
    audio, rate = sf.read(sample.file, dtype="float32", always_2d=False)
    return rate, audio


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", action="append", required=True, metavar="NAME=DIR", help="repeatable")
    p.add_argument("--prompts", required=True, help=".txt (one per line), .csv or .jsonl with a `caption` field")
    p.add_argument("--out", required=True, help="folder to write (manifest.csv and one WAV per sample)")
    p.add_argument("--seconds", type=float, default=Settings.seconds)
    p.add_argument("--steps", type=int, default=Settings.steps)
    p.add_argument("--guidance-scale", type=float, default=Settings.guidance_scale)
    p.add_argument("--seed", type=int, default=Settings.seed)
    args = p.parse_args(argv)
    try:
        settings = Settings(args.seconds, args.steps, args.guidance_scale, args.seed)
        studio = Studio.load(parse_pipelines(args.pipeline))
        prompts = [p.caption for p in read_prompts(args.prompts)]
        manifest = build_rating_set(studio, prompts, args.out, settings)
    except DataError as error:
        print(f"rating_set: error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {len(prompts) * len(studio.pipelines)} samples; manifest {manifest}")


if __name__ == "__main__":
    main()
