"""The offline recipe end to end: the paper's Table 3 comparison, reproduced on a sound library.

    sound library (synthesised world, or `--library` in ESC-50 layout) -> mixed-up clips
    -> order-free captions -> per seed: baseline CLAP (L_c on order-free captions)
       -> T-CLAP (L_c + lambda L_t) and the lambda = 0 control, both fine-tuned from that baseline
    -> evaluation of every model on the test split -> metrics.json, table.md (mean +- std over seeds)

Every stage writes under `out` and is skipped when its output exists (training resumes from its
last checkpoint), so the command can be rerun after an interruption.
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from tclap.config import build_run_config, load_yaml, section
from tclap.data.library import assign_folds, read_library
from tclap.data.mixup import SETTINGS, MixupConfig, build_mixup
from tclap.data.negatives import RuleBackend
from tclap.data.negatives_eval import evaluate_backend
from tclap.data.orderfree import write_order_free_pairs
from tclap.data.synth import SynthConfig, synthesize_world
from tclap.environment import environment
from tclap.eval_suite import evaluate_models, read_test_sets
from tclap.train import RunConfig, run

REPO_CONFIGS = Path(__file__).resolve().parent.parent / "configs"
MODELS = ("baseline", "control", "tclap")
# metrics.json name -> the evaluation suite's metric name
HEADLINE = {
    "tclassify_t2a": "tclassify_t2a",
    "tclassify_a2t": "tclassify_a2t",
    "tclassify_t2a_unseen_phrasing": "tclassify_t2a_unseen_phrasing",
    "tclassify_t2a_seen_phrasing": "tclassify_t2a_seen_phrasing",
    "compa_group": "compa_group",
    "retrieval_t2a_r1": "mixup_t2a_R@1",
    "retrieval_a2t_r1": "mixup_a2t_R@1",
    "zeroshot_acc": "zeroshot_esc50_acc",
}


@dataclass
class ExperimentConfig:
    """What `tclap experiment offline` runs; the run configs are the ones `train_tclap.py` takes."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    baseline: str = str(REPO_CONFIGS / "tclap" / "offline_baseline.yaml")
    tclap: str = str(REPO_CONFIGS / "tclap" / "offline.yaml")
    baseline_steps: int | None = None   # None: the run config's
    tclap_steps: int | None = None


def train_stage(run_config: str | Path, out_dir: Path, overrides: dict[str, dict]) -> tuple[Path, float]:
    """Train one model unless `out_dir/final` exists; returns (final dir, seconds spent now)."""
    final = out_dir / "final"
    if final.is_dir():
        return final, 0.0
    data = load_yaml(run_config)
    for name, values in overrides.items():
        data[name] = {**(data.get(name) or {}), **{k: v for k, v in values.items() if v is not None}}
    data.setdefault("train", {})["output_dir"] = str(out_dir)
    start = time.perf_counter()
    run(build_run_config(RunConfig, data, str(run_config)), resume="latest", provenance={"stage": str(out_dir)})
    return final, time.perf_counter() - start


def train_models(out: Path, mixup: Path, order_free: Path, cfg: ExperimentConfig) -> tuple[dict, dict]:
    """Baseline, T-CLAP and control for every seed: ({model: [final dirs]}, {model: [seconds]})."""
    finals: dict[str, list[Path]] = {m: [] for m in MODELS}
    seconds: dict[str, list[float]] = {m: [] for m in MODELS}
    for seed in cfg.seeds:
        root = out / f"seed{seed}"
        data = {"positive_only": [str(order_free)]}
        baseline, spent = train_stage(cfg.baseline, root / "baseline", {
            "model": {"init": "tiny"}, "data": {**data, "validation": str(mixup)},
            "train": {"seed": seed, "steps": cfg.baseline_steps}})
        finals["baseline"].append(baseline)
        seconds["baseline"].append(spent)
        for name, weight in (("tclap", None), ("control", 0.0)):
            final, spent = train_stage(cfg.tclap, root / name, {
                "model": {"init": str(baseline)}, "data": {**data, "mixup": str(mixup)},
                "loss": {"temporal_weight": weight}, "train": {"seed": seed, "steps": cfg.tclap_steps}})
            finals[name].append(final)
            seconds[name].append(spent)
    return finals, seconds


def summarize(per_model: dict[str, list[dict]], seconds: dict[str, list[float]]) -> dict:
    """Mean and std over seeds of the headline metrics, per model."""
    summary = {}
    for model, runs in per_model.items():
        entry: dict = {"seeds": len(runs)}
        for name, key in HEADLINE.items():
            values = [r[key] for r in runs if key in r]
            if values:
                entry[name] = round(statistics.mean(values), 2)
                entry[f"{name}_std"] = round(statistics.stdev(values), 2) if len(values) > 1 else 0.0
        entry["train_seconds"] = round(sum(seconds[model]), 1)
        summary[model] = entry
    return summary


def markdown(summary: dict) -> str:
    """The Table-3 comparison: one row per model, mean ± sample standard deviation over seeds."""
    lines = [f"Mean ± sample standard deviation (n - 1) over {summary[MODELS[0]]['seeds']} seeds.", "",
             "| model | " + " | ".join(HEADLINE) + " |", "|---" * (len(HEADLINE) + 1) + "|"]
    for model in MODELS:
        entry = summary[model]
        cells = [f"{entry[n]:.1f} ± {entry[n + '_std']:.1f}" if n in entry else "–" for n in HEADLINE]
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
        library = out / "world"
        if not (library / "meta" / "esc50.csv").exists():
            synthesize_world(library, section(SynthConfig, config, "synth", {}))
    mixup = out / "mixup"
    report = build_mixup(library, mixup, section(MixupConfig, config, "mixup", {"clips": clips}), workers=workers)
    summary["mixup"] = {"clips_per_split": dict(report.per_split), "skipped_files": len(report.skipped_files)}
    order_free = out / "orderfree_train.jsonl"
    if not order_free.exists():
        write_order_free_pairs(mixup, order_free)

    negatives = evaluate_backend(RuleBackend())
    (out / "negatives_eval.json").write_text(json.dumps(negatives, indent=2))
    summary["rule_negatives"] = {k: negatives[k] for k in ("precision", "coverage", "false_swaps", "items")}

    finals, seconds = train_models(out, mixup, order_free, cfg)

    # Zero-shot on the library's test folds only: the baseline saw the other folds' files.
    settings = json.loads((mixup / SETTINGS).read_text())
    test_folds = assign_folds(read_library(library).folds, settings["test_folds"], settings["val_folds"])["test"]
    sets = read_test_sets(mixup=mixup, split="test", zeroshot=library, zeroshot_layout="esc50")
    sets.zeroshot_clips = [c for c in sets.zeroshot_clips if c.fold in test_folds]
    dirs = [d for m in MODELS for d in finals[m]]
    results = list(evaluate_models(dirs, out / "eval", sets, cache=out / "embedding_cache").values())
    per_model = {m: results[i * len(cfg.seeds):(i + 1) * len(cfg.seeds)] for i, m in enumerate(MODELS)}

    metrics = summarize(per_model, seconds)
    metrics["wall_seconds"] = round(time.perf_counter() - wall, 1)
    metrics["seeds"], metrics["environment"] = list(cfg.seeds), environment()
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "table.md").write_text(markdown(metrics))
    summary["metrics"] = metrics
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print((out / "table.md").read_text())
    return summary
