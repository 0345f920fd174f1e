"""The scale path: sharded tar datasets (webdataset, the format LAION-CLAP trains from).

`write_shards` packs the rows of any dataset here (mixed-up clips, caption pairs) into tars of
`shard_size` samples: `{id}.audio.{ext}` (the original file bytes), `{id}.neg_audio.{ext}` when
there is a negative audio, and `{id}.json` with the captions. `ShardStream` reads them back as the
same sample dicts the map-style datasets give, streaming, so 2M pairs never sit in memory.
"""
from __future__ import annotations

import io
import itertools
import random
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import webdataset as wds
from torch.utils.data import IterableDataset

from tclap.audio import decode_audio
from tclap.data.datasets import AudioWindow, temporal_count
from tclap.errors import DataError


def _key(sample_id: str) -> str:
    """webdataset splits keys at the first dot, so ids are made dot-free."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", sample_id)


def write_shards(rows: Iterable[dict], out_dir: str | Path, shard_size: int = 1000) -> list[Path]:
    """Pack dataset rows (`id`, `audio`, `caption`, optional `neg_caption`, `neg_audio`) into tars.

    Args:
        rows: rows as the datasets in `tclap.data.datasets` hold them (audio as paths).
        out_dir: folder for `shard-000000.tar`, ...
        shard_size: samples per shard.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    with wds.ShardWriter(str(out_dir / "shard-%06d.tar"), maxcount=shard_size, verbose=0) as sink:
        for row in rows:
            key = _key(row["id"])
            if key in seen:
                raise DataError(f"duplicate sample id {row['id']!r} (as shard key {key!r})")
            seen.add(key)
            sample = {"__key__": key, "json": json.dumps(
                {"id": row["id"], "caption": row["caption"], "neg_caption": row.get("neg_caption")}).encode()}
            for field in ("audio", "neg_audio"):
                if row.get(field):
                    path = Path(row[field])
                    if not path.is_file():
                        raise DataError(f"{path}: audio file not found (sample {row['id']})")
                    sample[f"{field}{path.suffix}"] = path.read_bytes()
            sink.write(sample)
    return sorted(out_dir.glob("shard-*.tar"))


class ShardStream(IterableDataset):
    """Stream samples from shards, split across nodes and dataloader workers.

    Args:
        urls: shard paths or a brace pattern ("shards/shard-{000000..000099}.tar").
        window: decode/resample/crop settings, as for the map-style datasets.
        shuffle: size of the sample shuffle buffer (0: keep shard order, for evaluation).
        seed: shuffling and cropping seed.
    """

    def __init__(self, urls: str | list[str], window: AudioWindow, shuffle: int = 1000, seed: int = 0):
        self.urls = [str(u) for u in urls] if isinstance(urls, list) else str(urls)
        self.window, self.shuffle, self.seed = window, shuffle, seed

    def __iter__(self) -> Iterator[dict]:
        pipeline = wds.WebDataset(self.urls, shardshuffle=100 if self.shuffle else False, seed=self.seed,
                                  nodesplitter=wds.split_by_node, empty_check=False)
        if self.shuffle:
            pipeline = pipeline.shuffle(self.shuffle, rng=random.Random(self.seed))
        for index, raw in enumerate(pipeline):
            yield self._decode(raw, np.random.default_rng([self.seed, index]))

    def _decode(self, raw: dict, rng: np.random.Generator) -> dict:
        meta = json.loads(raw["json"])
        fields = {name.split(".")[0]: name for name in raw if name.startswith(("audio.", "neg_audio."))}
        try:
            signals = [decode_audio(io.BytesIO(raw[fields[f]]), self.window.sample_rate,
                                    f"{raw['__url__']}:{raw['__key__']}.{fields[f]}")
                       for f in ("audio", "neg_audio") if f in fields]
            signals = self.window.fit(signals, rng)
        except (DataError, KeyError) as error:
            return {"id": meta["id"], "error": f"{raw['__url__']}:{raw['__key__']}: {error}"}
        return {"id": meta["id"], "audio": signals[0], "caption": meta["caption"],
                "neg_caption": meta.get("neg_caption"), "neg_audio": signals[1] if len(signals) > 1 else None}


class MixedStream(IterableDataset):
    """Batches (lists of samples) from two streams, with the configured mix inside every batch.

    The streaming twin of `MixedBatchSampler`: an epoch ends with the positive-only stream; the
    temporal stream restarts when it runs out. Use with `DataLoader(batch_size=None, collate_fn=...)`.

    Args:
        positive_only: stream of positive-only samples (the large set).
        temporal: stream of samples with negatives.
        batch_size: samples per batch.
        ratio: e.g. {"positive_only": 4, "temporal": 1}.
    """

    def __init__(self, positive_only: IterableDataset, temporal: IterableDataset, batch_size: int,
                 ratio: dict[str, float]):
        self.positive_only, self.temporal = positive_only, temporal
        self.k_t = temporal_count(ratio, batch_size)
        self.k_p = batch_size - self.k_t

    def __iter__(self) -> Iterator[list[dict]]:
        positive, temporal = iter(self.positive_only), self._cycle(self.temporal)
        while True:
            batch = list(itertools.islice(positive, self.k_p))
            if len(batch) < self.k_p:
                return
            yield batch + [next(temporal) for _ in range(self.k_t)]

    @staticmethod
    def _cycle(stream: IterableDataset) -> Iterator[dict]:
        while True:
            empty = True
            for sample in stream:
                empty = False
                yield sample
            if empty:
                raise DataError("the temporal stream is empty")
