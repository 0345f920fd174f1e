"""Evaluate CLAP checkpoints on every test set given, and write one report comparing them.

Test sets (any of):
- a mixed-up split: T-Classify and CompA-order scores with their breakdown, and retrieval of each
  clip by its caption (`mixup_` metrics);
- a caption manifest (AudioCaps, Clotho, ...): retrieval with several captions per clip, and
  T-Classify T2A over the captions that have an order-swapped negative (`pairs_` metrics);
- a zero-shot classification set in ESC-50, UrbanSound8K or VGGSound layout (`zeroshot_<layout>_`);
- the CompA-order benchmark CSV (`tclap.data.benchmarks`): its text, audio and group scores and
  T-Classify on its items (`compa_order_` metrics).

Every data set is read (and checked) before any model is loaded, so bad input fails fast.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from tclap.data.benchmarks import read_compa_order
from tclap.data.datasets import mixup_rows, read_pairs
from tclap.data.mixup import MANIFEST
from tclap.embedding_cache import Embedder
from tclap.errors import DataError
from tclap.eval_report import write_report
from tclap.evaluation import (compa_order_decisions, embed_rows, swap_similarity, t_classify_breakdown,
                              tclassify_margins)
from tclap.model import ClapEncoder, load_clap
from tclap.retrieval import rows_retrieval
from tclap.zeroshot import DEFAULT_PROMPT, LAYOUTS, LabelledClip, check_prompt, zero_shot

T2A_MARGIN, A2T_MARGIN = "T2A: sim(a, t+) - sim(a, t-)", "A2T: sim(a+, t) - sim(a-, t)"


@dataclass
class EvalSets:
    """The data to evaluate on, already read: rows as `mixup_rows` / `read_pairs` give them."""

    mixup_rows: list[dict] = field(default_factory=list)
    mixup_records: list[dict] = field(default_factory=list)
    mixup_source: str = ""
    pairs_rows: list[dict] = field(default_factory=list)
    pairs_source: str = ""
    zeroshot_clips: list[LabelledClip] = field(default_factory=list)
    zeroshot_layout: str = ""
    prompt: str = DEFAULT_PROMPT
    compa_order_rows: list[dict] = field(default_factory=list)


def read_test_sets(mixup: Path | None = None, split: str = "test", pairs: Path | None = None,
                   audio_root: Path | None = None, zeroshot: Path | None = None, zeroshot_layout: str = "esc50",
                   prompt: str = DEFAULT_PROMPT, zeroshot_options: dict | None = None,
                   compa_order: Path | None = None) -> EvalSets:
    """Read and check the test sets; at least one is needed.

    Args:
        mixup: a folder built by `tclap mixup`.
        split: its split to score.
        pairs: caption manifest (CSV/JSONL: audio, caption[, negative]).
        audio_root: folder the manifest's and the CompA-order file's audio paths are relative to.
        zeroshot: zero-shot classification set root.
        zeroshot_layout: "esc50", "us8k" or "vggsound".
        prompt: zero-shot text template with `{label}`.
        zeroshot_options: extra arguments of the layout's reader (e.g. VGGSound's `name_pattern`).
        compa_order: a CompA-order CSV.
    """
    if not (mixup or pairs or zeroshot or compa_order):
        raise DataError("nothing to evaluate on: give a mixed-up folder, a caption manifest, a zero-shot set "
                        "or a CompA-order file")
    sets = EvalSets(prompt=prompt)
    if mixup:
        sets.mixup_rows, sets.mixup_records = mixup_rows(mixup, split)
        sets.mixup_source = f"{Path(mixup) / MANIFEST} (split {split!r})"
        if not sets.mixup_rows:
            raise DataError(f"{sets.mixup_source}: no clips")
    if pairs:
        sets.pairs_rows, sets.pairs_source = read_pairs(pairs, audio_root), str(pairs)
    if zeroshot:
        if zeroshot_layout not in LAYOUTS:
            raise DataError(f"zero-shot layout {zeroshot_layout!r} is not one of {', '.join(LAYOUTS)}")
        sets.zeroshot_clips = LAYOUTS[zeroshot_layout](zeroshot, **(zeroshot_options or {}))
        sets.zeroshot_layout = zeroshot_layout
        check_prompt(prompt)
    if compa_order:
        sets.compa_order_rows = read_compa_order(compa_order, audio_root)
    return sets


def evaluate_encoder(embedder: Embedder, sets: EvalSets) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Metrics of one model on the test sets, and its T-Classify margins (for the histograms).

    Args:
        embedder: the model with its embedding cache.
        sets: from `read_test_sets`.
    """
    metrics: dict[str, float] = {}
    margins: dict[str, torch.Tensor] = {}
    if sets.mixup_rows:
        e = embed_rows(embedder, sets.mixup_rows)
        metrics.update(t_classify_breakdown(e, sets.mixup_records))
        metrics.update(_prefixed("mixup_", swap_similarity(e)))
        margins[f"mixup {T2A_MARGIN}"], margins[f"mixup {A2T_MARGIN}"] = tclassify_margins(e)
        metrics.update(_prefixed("mixup_", rows_retrieval(embedder, sets.mixup_rows, sets.mixup_source)))
    if sets.pairs_rows:
        metrics.update(_prefixed("pairs_", rows_retrieval(embedder, sets.pairs_rows, sets.pairs_source)))
        e = embed_rows(embedder, sets.pairs_rows)
        if len(e["neg_text_index"]):
            t2a = tclassify_margins(e)[0]
            metrics["pairs_tclassify_t2a"] = 100.0 * float((t2a > 0).float().mean())
            metrics["pairs_n_negatives"] = len(t2a)
            margins[f"pairs {T2A_MARGIN}"] = t2a
    if sets.compa_order_rows:
        e = embed_rows(embedder, sets.compa_order_rows)
        decisions = compa_order_decisions(e)
        metrics.update({f"compa_order_{k}": 100.0 * float(decisions[k].mean()) for k in ("text", "audio", "group")})
        t2a, a2t = tclassify_margins(e)
        metrics["compa_order_tclassify_t2a"] = 100.0 * float((t2a > 0).float().mean())
        metrics["compa_order_tclassify_a2t"] = 100.0 * float((a2t > 0).float().mean())
        metrics["compa_order_items"] = len(sets.compa_order_rows)
        margins[f"compa-order {T2A_MARGIN}"], margins[f"compa-order {A2T_MARGIN}"] = t2a, a2t
    if sets.zeroshot_clips:
        accuracy = zero_shot(embedder, sets.zeroshot_clips, sets.prompt)
        metrics.update(_prefixed(f"zeroshot_{sets.zeroshot_layout}_", accuracy))
    return metrics, margins


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {prefix + k: v for k, v in metrics.items()}


def model_names(model_dirs: list[Path]) -> list[str]:
    """Directory names, with as many parent folders as it takes to tell duplicates apart (`a/final`, `b/final`);
    a trainer's output folder (`final`, `checkpoint-N`) always comes with its run's folder (`tclap/final`)."""
    paths = [Path(d).resolve() for d in model_dirs]
    if len(set(paths)) < len(paths):
        raise DataError(f"the same checkpoint is listed twice: {[str(d) for d in model_dirs]}")
    depth = [2 if p.name == "final" or p.name.startswith("checkpoint-") else 1 for p in paths]
    while True:
        names = ["/".join(p.parts[-d:]) for p, d in zip(paths, depth)]
        clashing = [i for i, name in enumerate(names) if names.count(name) > 1]
        if not clashing:
            return names
        for i in clashing:
            depth[i] += 1


def evaluate_models(model_dirs: list[Path], out: Path, sets: EvalSets, cache: Path | None = None,
                    batch_size: int = 32, device: str = "cpu") -> dict[str, dict[str, float]]:
    """Evaluate each checkpoint on the test sets; write metrics.json, table.md and margins.png under `out`.

    Args:
        model_dirs: checkpoint directories (`save_clap` / `save_pretrained` format).
        out: report folder.
        sets: from `read_test_sets`.
        cache: embedding cache folder (a rerun on the same model and files computes nothing).
        batch_size: files or captions per forward pass.
        device: where the models run.
    Returns:
        {model name: {metric: value}}, as in metrics.json.
    """
    names = model_names(model_dirs)
    for model_dir in model_dirs:
        if not Path(model_dir).is_dir():
            raise DataError(f"{model_dir}: checkpoint directory not found")
    results, margins = {}, {}
    for name, model_dir in zip(names, model_dirs):
        encoder = ClapEncoder(*load_clap(model_dir)).to(device)
        embedder = Embedder(encoder, model_dir, cache, batch_size)
        results[name], margins[name] = evaluate_encoder(embedder, sets)
    write_report(results, margins, out)
    return results
