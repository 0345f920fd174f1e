"""`tclap generate`: prompts file -> one WAV per prompt, named so evaluation can pair it with its reference.

Prompts come as plain text (one per line; ids `prompt0000`, ...), or CSV/JSONL with `caption` and an
optional `id` (a reference clip's name, so `eval/` pairs `out/<id>.wav` with `refs/<id>.wav`). Every
prompt is checked before the pipeline loads: an empty one is an error naming its row, an over-long
one is truncated with a warning naming the words cut. Each waveform has its own noise generator,
seeded from (seed, prompt id, waveform index), so a rerun with the same settings writes the same
audio whatever the batching.
"""
from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from tqdm import tqdm

from audioldm_cond.pipeline import check_clip_seconds, load_pipeline
from tclap.audio import write_wav
from tclap.csv_rows import csv_rows, jsonl_rows
from tclap.data.benchmarks import read_audiotime
from tclap.errors import DataError
from tclap.names import LISTING, file_id

SCHEDULERS = ("ddim", "dpm-solver++")


@dataclass
class GenerationConfig:
    steps: int = 50
    guidance_scale: float = 2.5
    seconds: float = 5.0
    batch_size: int = 4
    seed: int = 0
    scheduler: str = "ddim"
    negative_prompt: str | None = None
    waveforms_per_prompt: int = 1   # as diffusers' num_waveforms_per_prompt; files <id>_<k>.wav when > 1

    def __post_init__(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise DataError(f"scheduler {self.scheduler!r} is not one of {', '.join(SCHEDULERS)}")
        for name in ("steps", "batch_size", "waveforms_per_prompt"):
            if getattr(self, name) < 1:
                raise DataError(f"{name.replace('_', ' ')} must be at least 1, not {getattr(self, name)}")
        if not (math.isfinite(self.seconds) and self.seconds > 0):
            raise DataError(f"seconds must be a positive number, not {self.seconds}")


class Prompt(NamedTuple):
    """One row of a prompts file: its id (a file stem), caption, and the requested events in order (JSONL
    `events`, what `eval/order.py` scores against; None when not given)."""

    id: str
    caption: str
    events: list[str] | None = None


def read_prompts(path: str | Path) -> list[Prompt]:
    """The prompts of a .txt, .csv or .jsonl file, every row checked; or of an AudioTime test-caption
    .json file (`tclap.data.benchmarks.read_audiotime`: its ids, captions, and the events in order of
    first onset).

    Raises:
        DataError: naming the file and line of an empty caption, an id that is not a plain file
            name (`tclap.names.file_id`), a duplicate id, `events` that is not a non-empty list of
            class names, or a malformed line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: prompts file not found")
    if path.suffix == ".json":
        return [Prompt(c.id, c.caption, c.events) for c in read_audiotime(path)]
    if path.suffix == ".txt":
        lines = enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        rows = [(f"{path}:{n}", {"caption": line}) for n, line in lines if line.strip()]
    elif path.suffix == ".csv":
        rows = list(csv_rows(path, ["caption"]))
    elif path.suffix == ".jsonl":
        rows = list(jsonl_rows(path))
    else:
        raise DataError(f"{path}: prompts must be .txt, .csv, .jsonl or AudioTime .json")
    if not rows:
        raise DataError(f"{path}: no prompts")
    prompts, first_seen = [], {}
    for i, (where, row) in enumerate(rows):
        caption = str(row.get("caption") or "").strip()
        if not caption:
            raise DataError(f"{where}: empty or missing `caption`")
        raw_id = row.get("id")
        clip_id = file_id(str(raw_id), where) if raw_id not in (None, "") else f"prompt{i:04d}"
        if clip_id in first_seen:
            raise DataError(f"{where}: duplicate id {clip_id!r} (first at {first_seen[clip_id]})")
        first_seen[clip_id] = where
        events = row.get("events")
        if events is not None and (not isinstance(events, list) or not events
                                   or not all(isinstance(e, str) and e.strip() for e in events)):
            raise DataError(f"{where}: `events` must be a non-empty list of class names, not {events!r}")
        prompts.append(Prompt(clip_id, caption, events))
    return prompts


def truncate(tokenizer, caption: str, max_tokens: int) -> str:
    """`caption` cut to what the text encoder reads, warning with the part that is dropped."""
    ids = tokenizer(caption, add_special_tokens=False)["input_ids"]
    budget = max_tokens - 2  # <s> and </s>
    if len(ids) <= budget:
        return caption
    kept, cut = tokenizer.decode(ids[:budget]), tokenizer.decode(ids[budget:])
    warnings.warn(f"prompt longer than {max_tokens} tokens; cut: {cut!r}", stacklevel=2)
    return kept


def fit_prompt(pipe, caption: str) -> str:
    """`caption` cut to what `pipe`'s text encoder reads (see `truncate`)."""
    limit = min(pipe.tokenizer.model_max_length, pipe.text_encoder.config.max_position_embeddings - 2)
    return truncate(pipe.tokenizer, caption, limit)


def set_scheduler(pipe, name: str) -> None:
    if name == "dpm-solver++":
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="dpmsolver++")
    else:
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)


def waveform_stems(clip_id: str, n: int) -> list[str]:
    """File stems of a prompt's `n` waveforms: `<id>` alone, or `<id>_0` ... `<id>_{n-1}` (what
    `tclap_eval.embedders.reference_stem` pairs back with `<id>`)."""
    return [clip_id] if n == 1 else [f"{clip_id}_{k}" for k in range(n)]


def waveform_seed(seed: int, clip_id: str, k: int) -> int:
    """The noise seed of waveform `k` of prompt `clip_id`: a hash of (seed, id, k), so a prompt's audio
    does not depend on which other prompts share its batch, nor on the batch size."""
    digest = hashlib.sha256(f"{seed}\0{clip_id}\0{k}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**63


def clipped_share(audio: np.ndarray) -> float:
    """Share of samples outside [-1, 1], which the 16-bit WAV writer clips."""
    return float(np.mean(np.abs(audio) > 1.0)) if audio.size else 0.0


def generate_files(pipeline: str | Path, prompts_file: str | Path, out: str | Path,
                   cfg: GenerationConfig | None = None, device: str = "cpu") -> list[Path]:
    """Generate `cfg.waveforms_per_prompt` WAVs per prompt into `out`, plus `prompts.jsonl` saying which is which.

    A prompt with id `x` gives `x.wav`, or `x_0.wav`, `x_1.wav`, ... with several waveforms per prompt.
    Waveform k of prompt `x` is drawn from its own generator, seeded by `waveform_seed(cfg.seed, x, k)`.
    `prompts.jsonl` has one row per file: `id` (the file stem), `prompt_id`, `waveform`, `caption`,
    the prompt's `events` when it gave them (so `eval/order.py --prompts out/prompts.jsonl` scores every
    file), `audio`, `seed` and `clipped` (share of samples beyond +-1, clipped when written; a warning
    names the clips that have any).

    Args:
        pipeline: pipeline directory or hub id.
        prompts_file: .txt / .csv / .jsonl prompts.
        out: output folder.
        cfg: sampling settings.
        device: torch device.
    """
    cfg = cfg or GenerationConfig()
    prompts = read_prompts(prompts_file)
    out = Path(out)
    if (out / LISTING).resolve() == Path(prompts_file).resolve():
        raise DataError(f"{prompts_file}: is where the output listing goes ({out / LISTING}); "
                        "keep the prompts file outside --out or give it another name")
    n = cfg.waveforms_per_prompt
    # unique: ids are, and "<id>_<k>" splits back at its last "_" since k has none
    stems = {p.id: waveform_stems(p.id, n) for p in prompts}
    ambiguous = sorted(set(stems) & {stem for names in stems.values() for stem in names})
    if n > 1 and ambiguous:
        raise DataError(f"{prompts_file}: prompt id {ambiguous[0]!r} is also the file name of a waveform of prompt "
                        f"{ambiguous[0].rsplit('_', 1)[0]!r}, so evaluation could not tell them apart; rename it")
    check_clip_seconds(pipeline, cfg.seconds)
    pipe = load_pipeline(pipeline).to(device)
    pipe.set_progress_bar_config(disable=True)
    set_scheduler(pipe, cfg.scheduler)
    jobs = [(stem, p.id, k, fit_prompt(pipe, p.caption)) for p in prompts for k, stem in enumerate(stems[p.id])]
    events = {p.id: p.events for p in prompts}
    out.mkdir(parents=True, exist_ok=True)
    rate = pipe.vocoder.config.sampling_rate
    written, rows = [], []
    for start in tqdm(range(0, len(jobs), cfg.batch_size), desc="generate"):
        batch = jobs[start:start + cfg.batch_size]
        seeds = [waveform_seed(cfg.seed, clip_id, k) for _, clip_id, k, _ in batch]
        audios = pipe([caption for *_, caption in batch], audio_length_in_s=cfg.seconds,
                      num_inference_steps=cfg.steps, guidance_scale=cfg.guidance_scale,
                      negative_prompt=[cfg.negative_prompt] * len(batch) if cfg.negative_prompt else None,
                      generator=[torch.Generator("cpu").manual_seed(seed) for seed in seeds]).audios
        for (stem, clip_id, k, caption), seed, audio in zip(batch, seeds, audios):
            audio = np.asarray(audio, dtype=np.float32)
            write_wav(out / f"{stem}.wav", audio, rate)
            written.append(out / f"{stem}.wav")
            rows.append({"id": stem, "prompt_id": clip_id, "waveform": k, "caption": caption,
                         **({"events": events[clip_id]} if events[clip_id] else {}),
                         "audio": f"{stem}.wav", "seed": seed, "clipped": round(clipped_share(audio), 6)})
    (out / LISTING).write_text("".join(json.dumps(r) + "\n" for r in rows))
    clipped = [r for r in rows if r["clipped"] > 0]
    if clipped:
        worst = max(clipped, key=lambda r: r["clipped"])
        warnings.warn(f"{len(clipped)} of {len(rows)} clips exceeded +-1 and were clipped when written "
                      f"(worst: {worst['audio']}, {100 * worst['clipped']:.2f} % of samples); "
                      f"per clip in {out / LISTING}", stacklevel=2)
    stale = sorted(set(out.glob("*.wav")) - set(written))
    if stale:
        warnings.warn(f"{out}: {len(stale)} WAV file(s) not written by this run (e.g. {stale[0].name}) are in the "
                      "folder; scoring the folder would include them", stacklevel=2)
    return written
