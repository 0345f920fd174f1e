"""Order-free captions: the offline stand-in for LAION's pretraining data.

No pretrained CLAP can be downloaded here, so the offline recipe first pretrains a baseline CLAP on
captions that never state an order, like the keyword-style captions much of LAION-CLAP's data has:
single events ("knock", "a sound of knock") and mixed-up clips described without order
("siren and knock", "knock, siren"). The same pairs are the positive-only part of T-CLAP's 4:1 batches.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tclap.data.library import assign_folds, read_library
from tclap.data.mixup import MANIFEST, read_manifest, read_settings
from tclap.data.phrasing import label_text
from tclap.errors import DataError

SINGLE = ("{0}", "a sound of {0}", "the sound of {0}", "{0} sound")
PAIR = ("{0} and {1}", "{0}, {1}", "sounds of {0} and {1}", "{0} and a {1}")


KINDS = ("mixup", "single")


def write_order_free_pairs(mixup_dir: str | Path, out: str | Path, split: str = "train", seed: int = 0,
                           kinds: tuple[str, ...] = KINDS) -> int:
    """Write a JSONL of (audio, order-free caption) pairs; returns the number of pairs.

    Covers the mixed-up clips of `split` (labels in random order, so the caption says nothing about
    time) and the library files of the same folds (single events), or the `kinds` given: a file of
    single events alone lets a run oversample them (`data.positive_only_repeats`). The captions are
    drawn for both kinds whatever `kinds` is, so each kind's rows are those of the combined file.

    Args:
        mixup_dir: a folder built by `tclap mixup` (its settings name the library and folds).
        out: JSONL to write (`id`, `caption`, `audio`). `audio` is relative to the JSONL's folder, as
            `read_pairs` reads it, where the clip lies under that folder (the main job's world and
            clips), so the JSONL's readers survive a move of the whole results folder; elsewhere (an
            outside `--library`) it is absolute.
        split: which split's clips and folds to use.
        seed: caption choice seed.
        kinds: "mixup" (the mixed-up clips), "single" (the single events), or both.

    Raises:
        DataError: `kinds` is empty or names something else.
    """
    if not kinds or set(kinds) - set(KINDS):
        raise DataError(f"kinds: one or more of {', '.join(KINDS)}, got {list(kinds)}")
    mixup_dir, out = Path(mixup_dir), Path(out)
    base = out.parent.resolve()
    settings = read_settings(mixup_dir)
    library = read_library(settings["library"])
    folds = assign_folds(library.folds, settings["test_folds"], settings["val_folds"])[split]
    rng = np.random.default_rng(seed)
    by_kind = {"mixup": [], "single": []}
    for record in (r for r in read_manifest(mixup_dir / MANIFEST) if r["split"] == split):
        labels = [e["label"] for e in record["events"]]
        order = rng.permutation(len(labels))
        template = PAIR[rng.integers(len(PAIR))] if len(labels) == 2 else ", ".join(
            "{%d}" % i for i in range(len(labels)))
        audio = _audio_path(mixup_dir / record["audio"], base)
        by_kind["mixup"].append({"id": f"{record['id']}-orderfree", "audio": audio,
                                 "caption": template.format(*[labels[i] for i in order])})
    for file in library.in_folds(folds):
        by_kind["single"].append({"id": f"{file.path.stem}-single", "audio": _audio_path(file.path, base),
                                  "caption": SINGLE[rng.integers(len(SINGLE))].format(label_text(file.category))})
    rows = [row for kind in KINDS if kind in kinds for row in by_kind[kind]]  # mixed-up clips first
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")  # as tclap.audio.write_wav: a killed run leaves no half file to reuse
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, out)
    return len(rows)


def _audio_path(path: Path, base: Path) -> str:
    """`path` relative to `base` (a resolved folder) where it lies under it, else absolute."""
    path = path.resolve()
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
