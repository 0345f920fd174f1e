"""The offline recipe end to end: the paper's Table 3 comparison, reproduced on a sound library.

    sound library (synthesised world, or `--library` in ESC-50 layout) -> mixed-up clips
    -> order-free captions -> per seed: baseline CLAP (L_c on order-free captions)
       -> T-CLAP (L_c + lambda L_t) and the lambda = 0 control, both fine-tuned from that baseline
    -> evaluation of every model on the test split -> metrics.json, table.md (mean +- std over seeds)

Every stage writes under `out` and is skipped when its output exists (training resumes from its
last checkpoint), so the command can be rerun after an interruption. Training runs `parallel_runs` at a
time (default 2: on 2 cores, two one-thread runs side by side finish 1.5x sooner than the same two one
after the other at 2 threads, `benchmarks/parallel_runs.py`), each in a fresh process at one thread.
"""
from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tclap.config import build_run_config, default_config, load_yaml, section
from tclap.data.library import META, assign_folds, read_library
from tclap.data.mixup import SETTINGS, MixupConfig, build_mixup, read_settings
from tclap.data.negatives import RuleBackend
from tclap.data.negatives_eval import evaluate_backend
from tclap.data.orderfree import write_order_free_pairs
from tclap.data.synth import SynthConfig, synthesize_world
from tclap.environment import environment, files_digest
from tclap.errors import DataError
from tclap.eval_suite import evaluate_models, read_test_sets
from tclap.train import RunConfig, run

MODELS = ("baseline", "control", "tclap")
# the order-free pairs the job writes, by the file names the offline run configs list in data.positive_only
ORDER_FREE = "orderfree_train.jsonl"    # mixed-up clips and single events, captioned without order
SINGLES = "singles_train.jsonl"         # the single events alone, for runs that oversample them
# metrics.json name -> the evaluation suite's metric name
HEADLINE = {
    "tclassify_t2a": "tclassify_t2a",
    "tclassify_a2t": "tclassify_a2t",
    "tclassify_t2a_unseen_phrasing": "tclassify_t2a_unseen_phrasing",
    "tclassify_t2a_seen_phrasing": "tclassify_t2a_seen_phrasing",
    # the unseen phrasings split by whether they name the events in time order ("{0}, later {1}") or
    # against it ("{1}, preceded by {0}"): where a tiny text tower falls back on the order of mention
    "tclassify_t2a_unseen_time_order_wording": "tclassify_t2a_unseen_time_order_wording",
    "tclassify_t2a_unseen_reversed_wording": "tclassify_t2a_unseen_reversed_wording",
    "compa_text": "compa_text",
    "compa_audio": "compa_audio",
    "compa_group": "compa_group",
    "retrieval_t2a_r1": "mixup_t2a_R@1",
    "retrieval_a2t_r1": "mixup_a2t_R@1",
    "zeroshot_acc": "zeroshot_esc50_acc",
}


@dataclass
class ExperimentConfig:
    """What `tclap experiment offline` runs; the run configs are the ones `train_tclap.py` takes."""

    seeds: list[int] = field(default_factory=lambda: [0, 1])
    baseline: str = field(default_factory=lambda: str(default_config("tclap/offline_baseline.yaml")))
    tclap: str = field(default_factory=lambda: str(default_config("tclap/offline.yaml")))
    baseline_steps: int | None = None   # None: the run config's
    tclap_steps: int | None = None
    parallel_runs: int = 2              # training runs at once, one thread each

    def __post_init__(self) -> None:
        if self.parallel_runs < 1:
            raise DataError(f"parallel runs: at least 1, not {self.parallel_runs}")


def train_stage(run_config: str | Path, out_dir: Path, overrides: dict[str, dict]) -> tuple[Path, float, int]:
    """Train one model unless `out_dir/final` exists; returns (final dir, seconds spent now, its steps)."""
    data = load_yaml(run_config)
    for name, values in overrides.items():
        data[name] = {**(data.get(name) or {}), **{k: v for k, v in values.items() if v is not None}}
    data.setdefault("train", {})["output_dir"] = str(out_dir)
    cfg = build_run_config(RunConfig, data, str(run_config))
    final = out_dir / "final"
    if final.is_dir():
        return final, 0.0, cfg.train.steps
    start = time.perf_counter()
    run(cfg, resume="latest", provenance={"stage": str(out_dir), "environment": environment()})
    return final, time.perf_counter() - start, cfg.train.steps


ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
PR_SET_PDEATHSIG = 1  # <sys/prctl.h>: the signal a process gets when its parent dies


def _training_worker(parent: int) -> None:
    """Initializer of a training worker: one torch thread, and on Linux a SIGTERM when the `tclap experiment`
    process dies (prctl PR_SET_PDEATHSIG), a SIGKILL included, so no orphaned run writes on into a folder
    that a rerun resumes."""
    torch.set_num_threads(1)
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)


@contextmanager
def environment_variables(values: dict[str, str]):
    """Set `values` in os.environ for the block (processes started in it inherit them), then restore."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def announce(stage: str) -> None:
    """One line per stage, so the progress bars can be told apart."""
    print(f"== tclap experiment: {stage}", flush=True)


def train_stages(stages: list[tuple[str, Path, dict]], parallel_runs: int) -> list[tuple[Path, float, int]]:
    """`train_stage` for each (run config, out dir, overrides), `parallel_runs` at a time, each in a fresh
    process at one thread (so the digits do not depend on the machine's core count, and no accelerate
    state passes from one stage to the next); results in the order given."""
    trained = {}
    todo = [stage for stage in stages if not (stage[1] / "final").is_dir()]  # the others only report
    if todo:
        with training_pool(parallel_runs) as pool:
            trained = dict(zip([stage[1] for stage in todo], pool.map(train_stage, *zip(*todo))))
    return [trained.get(stage[1]) or train_stage(*stage) for stage in stages]


@contextmanager
def training_pool(parallel_runs: int):
    """A process pool for training runs: `parallel_runs` workers, a fresh spawned process per task, one
    thread each (the variables reach the libraries that read them at import: OpenMP, BLAS, tokenizers;
    torch's own count is set in each process), ended by the kernel if this process dies."""
    context = multiprocessing.get_context("spawn")
    with environment_variables(ONE_THREAD), ProcessPoolExecutor(
            parallel_runs, mp_context=context, initializer=_training_worker, initargs=(os.getpid(),),
            max_tasks_per_child=1) as pool:
        yield pool


def positive_only_files(run_config: str | Path, written: dict[str, Path]) -> list[str]:
    """The job's files for the `data.positive_only` entries of a run config, matched by file name.

    Args:
        run_config: a run config YAML (`results/offline/orderfree_train.jsonl` there means the job's own).
        written: the files the job wrote, by file name.

    Raises:
        DataError: the config lists a file the job does not write.
    """
    listed = (load_yaml(run_config).get("data") or {}).get("positive_only") or []
    unknown = [p for p in listed if Path(p).name not in written]
    if unknown:
        raise DataError(f"{run_config}: data.positive_only lists {unknown}; tclap experiment writes only "
                        f"{', '.join(written)}")
    return [str(written[Path(p).name]) for p in listed]


def train_models(out: Path, mixup: Path, written: dict[str, Path], cfg: ExperimentConfig) -> tuple[dict, dict, dict]:
    """Baselines for every seed, then T-CLAP and the control for every seed: ({model: [final dirs]},
    {model: [seconds]}, {model: steps}). `written`: the order-free files by name (`positive_only_files`)."""
    pairs = {"baseline": positive_only_files(cfg.baseline, written), "tclap": positive_only_files(cfg.tclap, written)}
    announce(f"the baseline CLAPs of seeds {cfg.seeds}, {cfg.parallel_runs} runs at a time")
    baselines = train_stages([(cfg.baseline, out / f"seed{seed}" / "baseline", {
        "model": {"init": "tiny"}, "data": {"positive_only": pairs["baseline"], "validation": str(mixup)},
        "train": {"seed": seed, "steps": cfg.baseline_steps}}) for seed in cfg.seeds], cfg.parallel_runs)
    announce("T-CLAP and the λ = 0 control, fine-tuned from each seed's baseline")
    fine_tuned = train_stages([(cfg.tclap, out / f"seed{seed}" / name, {
        "model": {"init": str(baseline[0])}, "data": {"positive_only": pairs["tclap"], "mixup": str(mixup)},
        "loss": {"temporal_weight": weight}, "train": {"seed": seed, "steps": cfg.tclap_steps}})
        for seed, baseline in zip(cfg.seeds, baselines) for name, weight in (("tclap", None), ("control", 0.0))],
        cfg.parallel_runs)
    results = {"baseline": baselines, "tclap": fine_tuned[0::2], "control": fine_tuned[1::2]}
    finals = {m: [r[0] for r in results[m]] for m in MODELS}
    seconds = {m: [r[1] for r in results[m]] for m in MODELS}
    return finals, seconds, {m: results[m][0][2] for m in MODELS}


def summarize(per_model: dict[str, list[dict]], seconds: dict[str, list[float]],
              steps: dict[str, int] | None = None) -> dict:
    """Mean and std over seeds of the headline metrics, per model, with its training steps (fine-tuned
    models: after the baseline's) and its training seconds summed over seeds."""
    summary = {}
    for model, runs in per_model.items():
        entry: dict = {"seeds": len(runs)}
        for name, key in HEADLINE.items():
            values = [r[key] for r in runs if key in r]
            if values:
                entry[name] = round(statistics.mean(values), 2)
                entry[f"{name}_std"] = round(statistics.stdev(values), 2) if len(values) > 1 else 0.0
        entry["train_seconds"] = round(sum(seconds[model]), 1)
        if steps:
            entry["steps"] = steps[model]
        summary[model] = entry
    return summary


def markdown(summary: dict) -> str:
    """The Table-3 comparison: one row per model, mean ± sample standard deviation over seeds."""
    seeds = summary[MODELS[0]]["seeds"]
    spread = "One seed" if seeds == 1 else f"Mean ± sample standard deviation (n - 1) over {seeds} seeds"
    lines = [f"{spread}; steps: of each model's own training "
             f"(T-CLAP and the control start from the baseline); minutes: its training, summed over the seeds "
             "(0 where a rerun found it trained).", "",
             "| model | " + " | ".join(HEADLINE) + " | steps | train minutes |", "|---" * (len(HEADLINE) + 3) + "|"]
    for model in MODELS:
        entry = summary[model]
        cells = [("–" if n not in entry else f"{entry[n]:.1f}" if seeds == 1 else
                  f"{entry[n]:.1f} ± {entry[n + '_std']:.1f}") for n in HEADLINE]
        cells += [str(entry.get("steps", "–")), f"{entry['train_seconds'] / 60:.1f}"]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_offline(out: Path, config: Path, workers: int = 1, library: Path | None = None, clips: int | None = None,
                experiment: ExperimentConfig | None = None) -> dict:
    """Run the offline recipe; writes `out/metrics.json`, `out/table.md` and `out/summary.json`.

    Args:
        out: results folder.
        config: YAML with `synth:` and `mixup:` sections (configs/data/offline.yaml).
        workers: processes for the data build.
        library: a sound library in ESC-50 layout to use instead of the synthesised world.
        clips: number of mixed-up clips (default: the config's).
        experiment: seeds, run configs and step overrides.
    """
    cfg = experiment or ExperimentConfig()
    out.mkdir(parents=True, exist_ok=True)
    wall = time.perf_counter()
    summary: dict = {"config": str(config)}

    if library is None:
        announce("the synthesised sound world")
        library = out / "world"
        if not (library / META).exists():
            synthesize_world(library, section(SynthConfig, config, "synth", {}))
    mixup = out / "mixup"
    announce(f"mixed-up clips from {library}")
    report = build_mixup(library, mixup, section(MixupConfig, config, "mixup", {"clips": clips}), workers=workers)
    summary["mixup"] = {"clips_per_split": dict(report.per_split), "skipped_files": len(report.skipped_files)}
    # what the runs see: the library's meta CSV and listed files, the clips and their manifest (not
    # mixup.json, which names the library by its absolute path)
    sounds = read_library(library)
    data_digest = {"library": files_digest(library, [library / META, *(f.path for f in sounds.files)]),
                   "mixup": files_digest(mixup, [p for p in mixup.rglob("*") if p.is_file() and p.name != SETTINGS])}
    written = {ORDER_FREE: out / ORDER_FREE, SINGLES: out / SINGLES}
    for kinds, path in ((("mixup", "single"), written[ORDER_FREE]), (("single",), written[SINGLES])):
        if not path.exists():
            write_order_free_pairs(mixup, path, kinds=kinds)

    announce("the rule-based negative captions, scored on the labelled caption set")
    negatives = evaluate_backend(RuleBackend())
    (out / "negatives_eval.json").write_text(json.dumps(negatives, indent=2))
    summary["rule_negatives"] = {k: negatives[k] for k in ("precision", "coverage", "false_swaps", "items")}

    finals, seconds, steps = train_models(out, mixup, written, cfg)

    announce("evaluation of every model on the test split")
    # Zero-shot on the library's test folds only: the baseline saw the other folds' files.
    settings = read_settings(mixup)
    test_folds = assign_folds(sounds.folds, settings["test_folds"], settings["val_folds"])["test"]
    sets = read_test_sets(mixup=mixup, split="test", zeroshot=library, zeroshot_layout="esc50")
    sets.zeroshot_clips = [c for c in sets.zeroshot_clips if c.fold in test_folds]
    dirs = [d for m in MODELS for d in finals[m]]
    results = list(evaluate_models(dirs, out / "eval", sets, cache=out / "embedding_cache").values())
    per_model = {m: results[i * len(cfg.seeds):(i + 1) * len(cfg.seeds)] for i, m in enumerate(MODELS)}

    metrics = summarize(per_model, seconds, steps)
    metrics["wall_seconds"] = round(time.perf_counter() - wall, 1)
    metrics["seeds"], metrics["environment"] = list(cfg.seeds), environment()
    metrics["training"] = {"parallel_runs": cfg.parallel_runs, "threads_per_run": 1}
    metrics["data_digest"] = data_digest
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "table.md").write_text(markdown(metrics))
    summary["metrics"] = metrics
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print((out / "table.md").read_text())
    return summary
