"""Zero-shot classification (paper §3.3, Table 2): each clip gets the class whose prompt it is closest to.

The prompt is "A sound of {label}" by default, label = the category with "_" read as a space.
Three benchmark layouts are read as they are distributed:

- ESC-50: `meta/esc50.csv` (filename, fold, target, category) and `audio/`; 5 folds.
- UrbanSound8K: `metadata/UrbanSound8K.csv` (slice_file_name, fold, class, ...) and
  `audio/fold{fold}/`; 10 folds.
- VGGSound: `vggsound.csv` without a header (youtube_id, start_seconds, label, split) and `audio/`,
  with file names from a pattern (download tools differ); only the "test" split by default.

Accuracy is reported overall and per fold (ESC-50, UrbanSound8K), in percent, with the mean margin
of the true prompt's score over the best other prompt's (cosine units).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from tclap.data.library import read_library
from tclap.data.phrasing import label_text
from tclap.embedding_cache import Embedder
from tclap.csv_rows import csv_rows
from tclap.errors import DataError

DEFAULT_PROMPT = "A sound of {label}"
VGGSOUND_NAME = "{youtube_id}_{start_seconds:06d}.wav"
US8K_COLUMNS = ("slice_file_name", "fold", "class")


@dataclass(frozen=True)
class LabelledClip:
    path: Path
    label: str
    fold: int | None = None


def read_esc50(root: str | Path) -> list[LabelledClip]:
    """ESC-50 (or any library in its layout, such as `tclap synth-world`'s), every fold."""
    return [LabelledClip(f.path, f.category, f.fold) for f in read_library(root).files]


def read_us8k(root: str | Path) -> list[LabelledClip]:
    """UrbanSound8K, every fold (the paper uses the whole set)."""
    root = Path(root)
    meta = root / "metadata" / "UrbanSound8K.csv"
    if not meta.is_file():
        raise DataError(f"{meta}: UrbanSound8K metadata not found")
    clips = []
    for where, row in csv_rows(meta, US8K_COLUMNS):
        try:
            fold = int(row["fold"])
        except (TypeError, ValueError):
            raise DataError(f"{where}: fold must be an integer, got {row['fold']!r}") from None
        clips.append(_clip(where, root / "audio" / f"fold{fold}" / row["slice_file_name"], row["class"], fold))
    return _nonempty(clips, meta)


def read_vggsound(root: str | Path, name_pattern: str = VGGSOUND_NAME, split: str = "test",
                  csv_name: str = "vggsound.csv", audio_dir: str = "audio") -> list[LabelledClip]:
    """VGGSound rows of one split.

    Args:
        root: folder holding the CSV and the audio folder.
        name_pattern: audio file name over `youtube_id` and `start_seconds` (an int).
        split: which rows to keep ("test" is the official test set).
        csv_name: the header-less CSV, relative to `root`.
        audio_dir: the audio folder, relative to `root`.
    """
    root = Path(root)
    meta = root / csv_name
    if not meta.is_file():
        raise DataError(f"{meta}: VGGSound CSV not found")
    clips = []
    with open(meta, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            where = f"{meta}:{line}"
            if len(row) != 4:
                raise DataError(f"{where}: expected 4 columns (youtube_id, start_seconds, label, split), "
                                f"got {len(row)}")
            youtube_id, start, label, row_split = (v.strip() for v in row)
            if row_split != split:
                continue
            try:
                start_seconds = int(start)
            except ValueError:
                raise DataError(f"{where}: start_seconds must be an integer, got {start!r}") from None
            try:
                name = name_pattern.format(youtube_id=youtube_id, start_seconds=start_seconds)
            except (KeyError, IndexError, ValueError) as error:
                raise DataError(f"VGGSound name pattern {name_pattern!r}: {error} "
                                "(fields: {youtube_id}, {start_seconds} as an int)") from None
            clips.append(_clip(where, root / audio_dir / name, label))
    return _nonempty(clips, f"{meta} (split {split!r})")


LAYOUTS = {"esc50": read_esc50, "us8k": read_us8k, "vggsound": read_vggsound}


def _clip(where: str, path: Path, label: str, fold: int | None = None) -> LabelledClip:
    if not label.strip():
        raise DataError(f"{where}: empty label")
    if not path.is_file():
        raise DataError(f"{where}: audio file {path} not found")
    return LabelledClip(path, label.strip(), fold)


def _nonempty(clips: list[LabelledClip], source: str | Path) -> list[LabelledClip]:
    if not clips:
        raise DataError(f"{source}: no clips")
    return clips


def check_prompt(prompt: str) -> None:
    """A prompt needs the `{label}` slot: without it every class would read the same."""
    if "{label}" not in prompt:
        raise DataError(f"prompt {prompt!r} must contain {{label}}")


def class_prompts(labels: list[str], prompt: str = DEFAULT_PROMPT) -> list[str]:
    """One text per class: the prompt with `{label}` filled in (underscores read as spaces)."""
    check_prompt(prompt)
    return [prompt.format(label=label_text(label)) for label in labels]


def zero_shot_accuracy(audio: Tensor, class_text: Tensor, labels: Tensor,
                       folds: list[int | None]) -> dict[str, float]:
    """Accuracy (%) of nearest-prompt classification, overall (`acc`) and per fold (`acc_fold{k}`), and
    `margin` (and `margin_fold{k}`): the mean over clips of the true prompt's score minus the best other
    prompt's (cosine units for unit embeddings; negative where a clip is misclassified). It keeps telling two models
    apart where accuracy saturates (94-100 % on the offline validation fold, one clip per point).
    A single class has no margin.

    Args:
        audio: (N, D) clip embeddings.
        class_text: (C, D) prompt embeddings.
        labels: (N,) true class index of each clip.
        folds: each clip's fold, or None where the layout has none.
    """
    scores = audio @ class_text.T                                                                 # (N, C)
    correct = (scores.argmax(dim=1) == labels).float()                                           # (N,)
    true = scores.gather(1, labels[:, None]).squeeze(1)                                          # (N,)
    others = scores.scatter(1, labels[:, None], float("-inf")).max(dim=1).values                 # (N,)
    margin = true - others if len(class_text) > 1 else None  # one class: no other prompt to beat
    result = {"acc": 100.0 * float(correct.mean())}
    if margin is not None:
        result["margin"] = float(margin.mean())
    for fold in sorted({f for f in folds if f is not None}):
        in_fold = torch.tensor([f == fold for f in folds])
        result[f"acc_fold{fold}"] = 100.0 * float(correct[in_fold].mean())
        if margin is not None:
            result[f"margin_fold{fold}"] = float(margin[in_fold].mean())
    result["n"] = len(labels)
    return result


def zero_shot(embedder: Embedder, clips: list[LabelledClip], prompt: str = DEFAULT_PROMPT) -> dict[str, float]:
    """Zero-shot classification of labelled clips over the classes they contain.

    Args:
        embedder: the model with its embedding cache.
        clips: from `read_esc50`, `read_us8k` or `read_vggsound`.
        prompt: text template with `{label}`.
    """
    classes = sorted({c.label for c in clips})
    class_text = embedder.text(class_prompts(classes, prompt))
    audio = embedder.audio([c.path for c in clips])
    index_of = {label: i for i, label in enumerate(classes)}
    labels = torch.tensor([index_of[c.label] for c in clips])
    return zero_shot_accuracy(audio, class_text, labels, [c.fold for c in clips])
