from __future__ import annotations

import io
import tarfile

import numpy as np

from tclap.data.datasets import AudioWindow, MixupClips
from tclap.data.shards import MixedStream, ShardStream, write_shards


def test_shards_stream_back_the_same_samples(mixup_dir, tmp_path):
    window = AudioWindow(16000, 4.0, train=False)
    clips = MixupClips(mixup_dir, "train", window)
    paths = write_shards(clips.rows, tmp_path, shard_size=8)
    assert [p.name for p in paths] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    streamed = list(ShardStream([str(p) for p in paths], window, shuffle=0))
    assert [s["id"] for s in streamed] == [r["id"] for r in clips.rows]
    for sample, expected in zip(streamed, (clips[i] for i in range(len(clips)))):
        assert sample["caption"] == expected["caption"] and sample["neg_caption"] == expected["neg_caption"]
        np.testing.assert_array_equal(sample["audio"], expected["audio"])
        np.testing.assert_array_equal(sample["neg_audio"], expected["neg_audio"])


def test_shuffled_stream_is_a_permutation(mixup_dir, tmp_path):
    clips = MixupClips(mixup_dir, "train", AudioWindow(16000, 1.0))
    paths = [str(p) for p in write_shards(clips.rows, tmp_path, shard_size=5)]
    ids = [s["id"] for s in ShardStream(paths, AudioWindow(16000, 1.0), shuffle=16, seed=1)]
    assert sorted(ids) == sorted(r["id"] for r in clips.rows) and ids != [r["id"] for r in clips.rows]


def test_a_corrupt_member_becomes_a_counted_error(mixup_dir, tmp_path):
    clips = MixupClips(mixup_dir, "val", AudioWindow(16000, 1.0, train=False))
    path = tmp_path / "bad.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in [("x.json", b'{"id": "x", "caption": "c", "neg_caption": null}'),
                           ("x.audio.wav", b"garbage")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (sample,) = ShardStream([str(path)], clips.window, shuffle=0)
    assert sample["id"] == "x" and "bad.tar" in sample["error"] and "cannot decode" in sample["error"]


def test_mixed_stream_keeps_the_ratio(mixup_dir, tmp_path):
    window = AudioWindow(16000, 1.0, train=False)
    train = MixupClips(mixup_dir, "train", window)
    positive = [str(p) for p in write_shards(
        [{**r, "neg_caption": None, "neg_audio": None} for r in train.rows], tmp_path / "p", shard_size=10)]
    temporal = [str(p) for p in write_shards(MixupClips(mixup_dir, "val", window).rows, tmp_path / "t")]
    batches = list(MixedStream(ShardStream(positive, window, shuffle=0), ShardStream(temporal, window, shuffle=0),
                               batch_size=5, ratio={"positive_only": 4, "temporal": 1}))
    assert len(batches) == 20 // 4
    assert all([s["neg_caption"] is not None for s in b] == [False] * 4 + [True] for b in batches)
