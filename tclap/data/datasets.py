"""Training data: audio-caption datasets, the 4:1 batch mix, and the collator.

Three sources feed T-CLAP (paper §3.1-3.2): positive-only pairs (the large set, Auto-ACD), caption
sets with order-swapped negative captions (AudioCaps, Clotho), and mixed-up clips with both a
negative caption and a negative audio. Every dataset yields the same sample dict:
`{"id", "audio" (L,), "caption", "neg_caption" (str | None), "neg_audio" ((L,) | None)}`.
A sample that cannot be loaded comes back as `{"id", "error"}`; the collator drops it and lists
the reason in the batch, so a bad file is counted by the trainer, never a worker traceback.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Sampler, Subset

from tclap.audio import fit_length, load_audio
from tclap.data.augment import insert_random_word
from tclap.data.mixup import MANIFEST, read_manifest
from tclap.csv_rows import csv_rows, jsonl_rows
from tclap.errors import DataError


@dataclass(frozen=True)
class AudioWindow:
    """Decode, resample and bring audio to the model window.

    Training crops at random (one offset shared by a clip and its negative, so they stay
    comparable); evaluation crops deterministically from the start.
    """

    sample_rate: int
    seconds: float
    train: bool = True

    @property
    def length(self) -> int:
        return int(round(self.sample_rate * self.seconds))

    def __call__(self, paths: Sequence[Path], rng: np.random.Generator) -> list[np.ndarray]:
        signals = [load_audio(p, self.sample_rate) for p in paths]
        return self.fit(signals, rng)

    def fit(self, signals: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """Fit already-decoded signals; all of them share one crop offset."""
        n, length = len(signals[0]), self.length
        if not self.train or n <= length:
            return [fit_length(s, length, crop="start") for s in signals]
        start = int(rng.integers(0, n - length + 1))
        return [fit_length(s[start:], length, crop="start") for s in signals]


class _AudioTextDataset(Dataset):
    """Shared loading: rows of (id, audio path, caption, negative caption, negative audio path).

    With `word_insertion` p > 0, a sample's caption gets a random word with probability p, drawn anew
    each epoch from epoch `word_insertion_from` on, and its negative caption the same word before the
    same word (`tclap.data.augment`); p = 0 leaves both as they are.
    """

    def __init__(self, rows: list[dict], window: AudioWindow, seed: int = 0, word_insertion: float = 0.0,
                 word_insertion_from: int = 0):
        if not 0.0 <= word_insertion <= 1.0:
            raise DataError(f"data.word_insertion: a probability in [0, 1], got {word_insertion}")
        self.rows, self.window, self.seed = rows, window, seed
        self.word_insertion, self.word_insertion_from = word_insertion, word_insertion_from
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.draw(index)

    def draw(self, index: int, listing: int = 0) -> dict:
        """Row `index` with this epoch's crop and inserted word; `listing` k > 0 (the k-th extra listing of
        an oversampled row, `Oversampled`) draws its own, and listing 0 the row's usual ones."""
        row, key = self.rows[index], [self.seed, self.epoch, index]
        rng = np.random.default_rng(key + [2, listing] if listing else key)
        paths = [row["audio"]] + ([row["neg_audio"]] if row.get("neg_audio") else [])
        try:
            signals = self.window(paths, rng)
        except DataError as error:
            return {"id": row["id"], "error": str(error)}
        caption, neg_caption = row["caption"], row.get("neg_caption")
        if self.word_insertion and self.epoch >= self.word_insertion_from:
            words = np.random.default_rng(key + [3, listing] if listing else key + [1])
            if words.random() < self.word_insertion:
                caption, neg_caption = insert_random_word(caption, words, twin=neg_caption)
        return {"id": row["id"], "audio": signals[0], "caption": caption, "neg_caption": neg_caption,
                "neg_audio": signals[1] if len(signals) > 1 else None}


def without_fields(dataset: _AudioTextDataset, *fields: str) -> _AudioTextDataset:
    """`dataset` with `fields` ("neg_caption", "neg_audio") set to None in every row, so they are not even
    loaded (a negative audio is then not decoded, and the batch holds none)."""
    dataset.rows = [{**row, **dict.fromkeys(fields)} for row in dataset.rows]
    return dataset


class EpochConcatDataset(ConcatDataset):
    """A ConcatDataset that passes `set_epoch` on to its parts, so their crops and caption insertions
    change per epoch (torch's ConcatDataset has no `set_epoch`, and the trainer and accelerate only call
    the outer dataset's)."""

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            dataset.set_epoch(epoch)


class Oversampled(Subset):
    """`dataset` with its first `head` items listed `repeats` times per epoch and the rest once, so a few
    clips (e.g. single events next to thousands of mixed-up pairs) are drawn as often as asked; epochs
    pass through `set_epoch`. Over a dataset that draws crops and words (`draw`), each listing of an
    item draws its own; over any other (cached features, a concatenation) every listing is the same.

    Args:
        dataset: the clips, or their cached features in the same order.
        head: how many leading items to repeat.
        repeats: times each of them is listed (1: the dataset unchanged).
    """

    def __init__(self, dataset: Dataset, head: int, repeats: int):
        super().__init__(dataset, [*range(head)] * repeats + [*range(head, len(dataset))])
        self.head, self.listed = head, head * repeats

    def __getitem__(self, i: int) -> dict:
        draw = getattr(self.dataset, "draw", None)
        if draw is None:
            return self.dataset[self.indices[i]]
        return draw(self.indices[i], listing=i // self.head if i < self.listed else 0)

    def __getitems__(self, indices: list[int]) -> list:  # Subset's would bypass __getitem__ (torch's fetcher calls it)
        return [self[i] for i in indices]

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


def mixup_rows(root: str | Path, split: str | None) -> tuple[list[dict], list[dict]]:
    """(dataset rows, manifest records) of a mixed-up folder, one split or all (`split=None`)."""
    root = Path(root)
    records = [r for r in read_manifest(root / MANIFEST) if split is None or r["split"] == split]
    rows = [{"id": r["id"], "audio": root / r["audio"], "caption": r["caption"], "neg_caption": r["neg_caption"],
             "neg_audio": root / r["neg_audio"], "order": tuple(e["label"] for e in r["events"])} for r in records]
    return rows, records


class MixupClips(_AudioTextDataset):
    """Mixed-up clips of one split, each with a negative caption and a negative audio."""

    def __init__(self, root: str | Path, split: str, window: AudioWindow, seed: int = 0,
                 word_insertion: float = 0.0, word_insertion_from: int = 0):
        rows, self.records = mixup_rows(root, split)
        if not rows:
            raise DataError(f"{Path(root) / MANIFEST}: no clips in split {split!r}")
        super().__init__(rows, window, seed, word_insertion, word_insertion_from)


def read_pairs(path: str | Path, audio_root: str | Path | None = None) -> list[dict]:
    """Rows of an audio-caption manifest (CSV or JSONL: `audio`, `caption`, optional `negative`).

    `tclap negatives` writes such a JSONL; captions it could not swap keep `negative` null and
    count as positive-only. Audio paths are relative to `audio_root` (default: the manifest's folder).

    Args:
        path: the manifest.
        audio_root: folder the `audio` column is relative to.
    """
    path = Path(path)
    root = Path(audio_root) if audio_root is not None else path.parent
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    raw = csv_rows(path, ["audio", "caption"]) if path.suffix == ".csv" else jsonl_rows(path)
    rows = []
    for where, r in raw:
        caption, audio = (r.get("caption") or "").strip(), (r.get("audio") or "").strip()
        if not caption or not audio:
            raise DataError(f"{where}: empty or missing {'caption' if not caption else 'audio'}")
        rows.append({"id": str(r.get("id") or f"{path.name}:{where.rsplit(':', 1)[1]}"), "audio": root / audio,
                     "caption": caption, "neg_caption": (r.get("negative") or None)})
    return rows


class CaptionPairs(_AudioTextDataset):
    """Audio-caption pairs; with `temporal_only`, just the rows that have a negative caption."""

    def __init__(self, path: str | Path, window: AudioWindow, audio_root: str | Path | None = None,
                 temporal_only: bool = False, positive_only: bool = False, seed: int = 0,
                 word_insertion: float = 0.0, word_insertion_from: int = 0):
        rows = read_pairs(path, audio_root)
        if temporal_only:
            rows = [r for r in rows if r["neg_caption"]]
        if positive_only:
            rows = [{**r, "neg_caption": None} for r in rows]
        super().__init__(rows, window, seed, word_insertion, word_insertion_from)


def temporal_count(ratio: dict[str, float], batch_size: int) -> int:
    """Temporal samples per batch for a `{"positive_only": 4, "temporal": 1}` style ratio."""
    total = ratio["positive_only"] + ratio["temporal"]
    return int(round(batch_size * ratio["temporal"] / total))


class MixedBatchSampler(Sampler[list[int]]):
    """Batches over EpochConcatDataset([positive_only, temporal]) with a fixed mix inside every batch.

    An epoch is one pass over the positive-only set (the large one); the temporal set cycles,
    reshuffled at each pass. With no positive-only set, an epoch is one pass over the temporal set.

    Args:
        n_positive_only: length of the first dataset.
        n_temporal: length of the second (its indices are offset by `n_positive_only`).
        batch_size: samples per batch.
        ratio: e.g. {"positive_only": 4, "temporal": 1} (paper: 4 : 1).
        seed: shuffling seed; `set_epoch` changes the order per epoch, reproducibly.
        orders: optional, one per temporal sample: its events in time order (e.g. ("dog", "speech")), or
            None. A batch then never holds two samples whose orders are each other's reverse: a sample that
            would be the second waits and comes first in a later batch of the epoch (those still waiting
            when the epoch ends come round in the next epoch's reshuffle). A real caption set almost never
            puts both orders of one pair in a batch; a small sound world does often (12 classes, 20
            mixed-up clips: 76 % of batches), and that lets L_c alone learn order (docs/results.md).
        group: consecutive batches that form one contrastive batch (N when N processes each take one
            sampler batch per step and L_c gathers them); `orders` holds across the group.
    """

    def __init__(self, n_positive_only: int, n_temporal: int, batch_size: int,
                 ratio: dict[str, float], seed: int = 0, orders: Sequence[Sequence | None] | None = None,
                 group: int = 1):
        if orders is not None and len(orders) != n_temporal:
            raise DataError(f"orders: one per temporal sample ({n_temporal}), got {len(orders)}")
        self.orders = None if orders is None else [None if o is None else tuple(o) for o in orders]
        self.group = group
        self.n_p, self.n_t, self.batch_size, self.seed = n_positive_only, n_temporal, batch_size, seed
        self.k_t = temporal_count(ratio, batch_size) if n_positive_only else batch_size
        if n_temporal == 0:
            self.k_t = 0
        self.k_p = batch_size - self.k_t
        if (self.k_p and not n_positive_only) or (self.k_t and not n_temporal) or batch_size < 1:
            raise DataError(f"cannot fill batches of {batch_size} ({self.k_p} positive-only, {self.k_t} "
                            f"temporal) from {n_positive_only} positive-only and {n_temporal} temporal samples")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_p // self.k_p if self.k_p else self.n_t // self.k_t

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        positive = rng.permutation(self.n_p) if self.n_p else np.zeros(0, dtype=int)
        temporal, put_off = _cycle(rng, self.n_t), deque()
        for b in range(len(self)):
            if b % self.group == 0:
                seen = set()
            batch = positive[b * self.k_p:(b + 1) * self.k_p].tolist()
            batch += [self.n_p + i for i in self._temporal_batch(temporal, put_off, seen)]
            yield batch

    def _temporal_batch(self, stream: Iterator[int], put_off: deque, seen: set) -> list[int]:
        """`k_t` temporal indices: those put off before first, then the stream's; with `orders`, one whose
        order reverses one in `seen` (the group's so far) waits in `put_off`. Every batch fills: a group's
        first sample is never refused, and the stream brings its order round again."""
        chosen, waiting = [], []
        while len(chosen) < self.k_t:
            i = put_off.popleft() if put_off else next(stream)
            order = self.orders[i] if self.orders is not None else None
            if order is not None and order[::-1] != order and order[::-1] in seen:
                waiting.append(i)
                continue
            chosen.append(i)
            seen.add(order)
        put_off.extend(waiting)
        return chosen


def _cycle(rng: np.random.Generator, n: int) -> Iterator[int]:
    while n:
        yield from rng.permutation(n).tolist()


class AudioTextCollator:
    """Stack samples into a batch; negatives are indexed into the batch, bad samples listed.

    Output: `audio` (B, L); `captions` (B); `neg_captions` (K) with `neg_caption_index` (K,);
    `neg_audio` (M, L) with `neg_audio_index` (M,); `skipped` (reasons). With a tokenizer, `text`
    holds the captions followed by the negative captions, tokenised together, so positives and
    negatives go through the text tower in one forward pass.

    Args:
        tokenizer: optional Hugging Face tokenizer.
        max_length: token limit for captions.
    """

    def __init__(self, tokenizer: Callable | None = None, max_length: int = 77):
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, samples: list[dict]) -> dict:
        good = [s for s in samples if "error" not in s]
        batch: dict = {"skipped": [s["error"] for s in samples if "error" in s], "ids": [s["id"] for s in good]}
        if not good:
            return batch
        batch["audio"] = torch.from_numpy(np.stack([s["audio"] for s in good]))  # (B, L)
        batch["captions"] = [s["caption"] for s in good]
        with_neg = [i for i, s in enumerate(good) if s["neg_caption"]]
        batch["neg_captions"] = [good[i]["neg_caption"] for i in with_neg]
        batch["neg_caption_index"] = torch.tensor(with_neg, dtype=torch.long)  # (K,)
        with_audio = [i for i, s in enumerate(good) if s["neg_audio"] is not None]
        batch["neg_audio"] = torch.from_numpy(
            np.stack([good[i]["neg_audio"] for i in with_audio]) if with_audio
            else np.zeros((0, batch["audio"].shape[1]), dtype=np.float32))  # (M, L)
        batch["neg_audio_index"] = torch.tensor(with_audio, dtype=torch.long)  # (M,)
        if self.tokenizer is not None:
            batch["text"] = self.tokenizer(batch["captions"] + batch["neg_captions"], padding=True,
                                           truncation=True, max_length=self.max_length, return_tensors="pt")
        return batch
