"""Captions with a word no caption contains: how well T-CLAP reads event order past an unknown word,
measured on the validation split, without looking at the test split's reserved phrasings.

Writes a copy of a mixed-up folder (the audio folder linked, the settings copied) whose `--split`
captions each carry one English word that no caption of the folder contains, right after the first
event's name and its comma ("siren suddenly and then knock", "knock softly after siren"), in a caption
and its order-swapped twin alike, so the two still differ only in order. Score the copy with
`tclap evaluate --mixup OUT --split val`: its `tclassify_t2a_reversed_wording` is the
"{1} <word> after {0}" case, the validation analogue of the test split's reserved "{1} comes after {0}"
(docs/results.md, "The unknown-word check": a rough guide, 39 clips).

    python scripts/unknown_word_captions.py --mixup results/offline/mixup --out results/offline/mixup_unknown_word
    tclap evaluate --model results/offline/seed0/tclap/final --mixup results/offline/mixup_unknown_word \
        --split val --out results/offline/eval_unknown_word
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np

from tclap.data.mixup import MANIFEST, SETTINGS, read_manifest, read_settings
from tclap.errors import DataError

WORDS = ("quickly", "softly", "suddenly", "clearly", "loudly", "briefly", "promptly")


def with_word(phrasing: str, word: str) -> str:
    """`phrasing` ("{1} after {0}") with `word` after its first placeholder (the first-named event, not
    necessarily the first in time) and a comma that follows it."""
    at = min(phrasing.index(p) for p in ("{0}", "{1}")) + 3
    at += phrasing[at:at + 1] == ","
    return f"{phrasing[:at]} {word}{phrasing[at:]}"


def write_unknown_word_copy(mixup: Path, out: Path, split: str = "val", seed: int = 0) -> int:
    """Write the copy; returns the number of captions changed.

    Args:
        mixup: a folder built by `tclap mixup`.
        out: the copy's folder; must not exist.
        split: whose captions get the word.
        seed: which word each caption gets.

    Raises:
        DataError: `out` exists, or `mixup` has no two-event clips in `split`, or every word is known.
    """
    if out.exists():
        raise DataError(f"{out} exists; give a new folder")
    records = read_manifest(mixup / MANIFEST)
    known = {w for r in records for text in (r["caption"], r["neg_caption"]) for w in text.replace(",", " ").split()}
    words = [w for w in WORDS if w not in known]
    chosen = [r for r in records if r["split"] == split and r["n_events"] == 2]
    if not chosen or not words:
        raise DataError(f"{mixup}: no two-event clips in split {split!r}" if not chosen else
                        f"{mixup}: every candidate word ({', '.join(WORDS)}) is in a caption already")
    rng = np.random.default_rng(seed)
    for r in chosen:
        r["phrasing"] = with_word(r["phrasing"], words[rng.integers(len(words))])
        r["caption"] = r["phrasing"].format(*[e["label"] for e in r["events"]])
        r["neg_caption"] = r["phrasing"].format(*[e["label"] for e in r["neg_events"]])
        r["phrasing_seen"] = False
    partial = out.with_name(out.name + ".partial")  # renamed when complete: a killed run leaves no `out`
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    os.symlink((mixup / "audio").resolve(), partial / "audio")
    settings = read_settings(mixup)  # the library named absolutely only: the copy may lie elsewhere
    (partial / SETTINGS).write_text(json.dumps({**settings, "library": str(settings["library"])}, indent=2))
    (partial / MANIFEST).write_text("".join(json.dumps(r) + "\n" for r in records))
    partial.rename(out)
    return len(chosen)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mixup", type=Path, required=True, help="a folder built by `tclap mixup`")
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the copy")
    parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        n = write_unknown_word_copy(args.mixup, args.out, args.split, args.seed)
    except DataError as error:
        raise SystemExit(f"unknown_word_captions: {error}") from None
    print(f"wrote {args.out}: {n} {args.split} captions with an unknown word")


if __name__ == "__main__":
    main()
