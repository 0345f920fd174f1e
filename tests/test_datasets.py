from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import ConcatDataset, DataLoader

from tclap.data.datasets import (AudioTextCollator, AudioWindow, CaptionPairs, MixedBatchSampler, MixupClips,
                                 read_pairs, temporal_count)
from tclap.errors import DataError


def test_mixup_clips_give_aligned_positive_and_negative(mixup_dir):
    train = MixupClips(mixup_dir, "train", AudioWindow(16000, 3.0, train=True), seed=1)
    sample = train[0]
    assert sample["audio"].shape == sample["neg_audio"].shape == (48000,)
    assert sample["caption"] != sample["neg_caption"]
    # one crop offset for both: the full clips agree on where the window starts
    full = MixupClips(mixup_dir, "train", AudioWindow(16000, 4.0, train=False))[0]
    start = next(s for s in range(16001) if np.array_equal(full["audio"][s:s + 48000], sample["audio"]))
    np.testing.assert_array_equal(full["neg_audio"][start:start + 48000], sample["neg_audio"])


def test_evaluation_window_is_deterministic_and_training_crops_vary(mixup_dir):
    evaluation = MixupClips(mixup_dir, "test", AudioWindow(16000, 2.0, train=False))
    np.testing.assert_array_equal(evaluation[0]["audio"], evaluation[0]["audio"])
    train = MixupClips(mixup_dir, "train", AudioWindow(16000, 2.0, train=True))
    crops = set()
    for epoch in range(5):
        train.set_epoch(epoch)
        crops.add(train[0]["audio"].tobytes())
    assert len(crops) > 1


def test_short_audio_is_repeat_padded(mixup_dir):
    """LAION-CLAP's repeatpad: whole copies of the 4-s clip, then zeros up to the 9-s window."""
    sample = MixupClips(mixup_dir, "val", AudioWindow(16000, 9.0, train=True))[0]
    np.testing.assert_array_equal(sample["audio"][:64000], sample["audio"][64000:128000])
    assert not sample["audio"][128000:].any() and sample["audio"][:64000].any()


def write_pairs(tmp_path, mixup_dir, rows, suffix=".jsonl"):
    path = tmp_path / f"pairs{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        keys = list(rows[0])
        path.write_text(",".join(keys) + "\n" + "".join(",".join(str(r[k]) for k in keys) + "\n" for r in rows))
    return path


def test_caption_pairs_read_jsonl_and_csv(mixup_dir, tmp_path):
    audio = str(mixup_dir / "audio" / "mix000000.wav")
    rows = [{"audio": audio, "caption": "a knock then a beep", "negative": "a beep then a knock"},
            {"audio": audio, "caption": "a knock and a beep", "negative": ""}]
    jsonl = write_pairs(tmp_path, mixup_dir, rows)
    window = AudioWindow(16000, 1.0, train=False)
    assert len(CaptionPairs(jsonl, window)) == 2
    assert len(CaptionPairs(jsonl, window, temporal_only=True)) == 1
    assert CaptionPairs(jsonl, window, positive_only=True)[0]["neg_caption"] is None
    csv_path = write_pairs(tmp_path, mixup_dir, [{"audio": audio, "caption": "a knock"}], ".csv")
    assert CaptionPairs(csv_path, window)[0]["audio"].shape == (16000,)


@pytest.mark.parametrize("content, message", [
    ("audio,text\nx.wav,hello\n", "missing column"),
    ("audio,caption\nx.wav,\n", ":2: empty or missing caption"),
])
def test_bad_manifests_name_the_row(tmp_path, content, message):
    path = tmp_path / "m.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_pairs(path)
    (tmp_path / "m.jsonl").write_text('{"audio": "a.wav", "caption": "x"}\n{not json\n')
    with pytest.raises(DataError, match="m.jsonl:2: malformed"):
        read_pairs(tmp_path / "m.jsonl")


def test_unloadable_audio_is_skipped_with_its_reason(mixup_dir, tmp_path):
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    sf.write(tmp_path / "ok.wav", np.full(8000, 0.1, dtype=np.float32), 16000)
    path = write_pairs(tmp_path, mixup_dir, [{"audio": "broken.wav", "caption": "x"},
                                              {"audio": "ok.wav", "caption": "y"}])
    dataset = CaptionPairs(path, AudioWindow(16000, 1.0, train=False))
    batch = next(iter(DataLoader(dataset, batch_size=2, num_workers=1, collate_fn=AudioTextCollator())))
    assert batch["captions"] == ["y"] and len(batch["skipped"]) == 1
    assert "broken.wav" in batch["skipped"][0] and "cannot decode" in batch["skipped"][0]


def test_batch_mix_ratio_holds_in_every_batch():
    sampler = MixedBatchSampler(400, 37, batch_size=10, ratio={"positive_only": 4, "temporal": 1}, seed=0)
    batches = list(sampler)
    assert len(batches) == 400 // 8 == len(sampler)
    assert all(sum(i >= 400 for i in b) == 2 and len(b) == 10 for b in batches)
    positives = [i for b in batches for i in b if i < 400]
    assert sorted(positives) == list(range(400))  # one pass over the large set, no repeats
    temporal = Counter(i for b in batches for i in b if i >= 400)
    assert set(temporal) == set(range(400, 437))  # the small set cycles
    assert list(MixedBatchSampler(400, 37, 10, {"positive_only": 4, "temporal": 1}, seed=0)) == batches
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_batch_mix_edge_cases():
    assert temporal_count({"positive_only": 4, "temporal": 1}, 512) == 102
    only_temporal = MixedBatchSampler(0, 20, 4, {"positive_only": 4, "temporal": 1})
    assert len(list(only_temporal)) == 5 and all(min(b) >= 0 for b in only_temporal)
    with pytest.raises(DataError, match="cannot fill"):
        MixedBatchSampler(0, 0, 4, {"positive_only": 4, "temporal": 1})


def _temporal_orders(sampler, orders, n_positive):
    return [[orders[i - n_positive] for i in batch if i >= n_positive] for batch in sampler]


def _reversed_pairs(groups):
    return [sum((b, a) in set(g) for (a, b) in set(g)) // 2 for g in groups]


def test_one_order_per_batch_never_puts_a_pair_with_its_reverse():
    """12 events, every ordered pair of them: without `orders` most batches hold some pair both ways."""
    events = [f"e{k}" for k in range(12)]
    orders = [[a, b] for a in events for b in events if a != b] * 2  # lists, as read from JSON
    pairs = [tuple(o) for o in orders]
    plain = MixedBatchSampler(200, len(orders), 40, {"positive_only": 1, "temporal": 1}, seed=0)
    kept = MixedBatchSampler(200, len(orders), 40, {"positive_only": 1, "temporal": 1}, seed=0, orders=orders)
    assert sum(c > 0 for c in _reversed_pairs(_temporal_orders(plain, pairs, 200))) > len(plain) // 2
    temporal = _temporal_orders(kept, pairs, 200)
    assert _reversed_pairs(temporal) == [0] * len(temporal) and all(len(t) == 20 for t in temporal)
    # the same stream, some samples later: none put off is lost (each waits a batch or two here)
    drawn = [i for batch in kept for i in batch if i >= 200]
    assert {i for batch in list(plain)[:8] for i in batch if i >= 200} <= set(drawn)
    assert len(set(drawn)) == len(drawn) == 200


def test_one_order_per_batch_holds_across_a_group_of_batches():
    """With N processes each taking one sampler batch a step, L_c sees N batches together."""
    events = [f"e{k}" for k in range(6)]
    orders = [(a, b) for a in events for b in events if a != b]
    for group in (1, 2, 3):
        sampler = MixedBatchSampler(0, len(orders), 6, {"positive_only": 0, "temporal": 1}, orders=orders,
                                    group=group)
        batches = _temporal_orders(sampler, orders, 0)
        steps = [sum(batches[k:k + group], []) for k in range(0, len(batches) - group + 1, group)]
        assert _reversed_pairs(steps) == [0] * len(steps)
    plain = _temporal_orders(MixedBatchSampler(0, len(orders), 6, {"positive_only": 0, "temporal": 1}), orders, 0)
    assert any(_reversed_pairs([sum(plain[k:k + 3], []) for k in range(0, len(plain) - 2, 3)]))


def test_a_put_off_sample_leads_the_next_batch_and_none_is_lost():
    orders = [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")]
    both = ({("a", "b"), ("b", "a")}, {("c", "d"), ("d", "c")})
    plain = MixedBatchSampler(0, 4, 2, {"positive_only": 0, "temporal": 1})
    sampler = MixedBatchSampler(0, 4, 2, {"positive_only": 0, "temporal": 1}, orders=orders)
    clashes = 0
    for epoch in range(20):
        plain.set_epoch(epoch)
        sampler.set_epoch(epoch)
        clashes += sum({orders[i] for i in b} in both for b in plain)
        batches = list(sampler)
        assert all({orders[i] for i in b} not in both for b in batches)
        assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]  # a put-off sample comes next batch
    assert clashes  # the epochs above did put samples off


def test_orders_must_match_the_temporal_samples():
    with pytest.raises(DataError, match="one per temporal sample"):
        MixedBatchSampler(0, 2, 2, {"positive_only": 0, "temporal": 1}, orders=[("a", "b")])


def test_collator_indexes_negatives_into_the_batch(mixup_dir, tmp_path):
    window = AudioWindow(16000, 1.0, train=False)
    audio = str(mixup_dir / "audio" / "mix000000.wav")
    pairs = CaptionPairs(write_pairs(tmp_path, mixup_dir, [{"audio": audio, "caption": "p0"},
                                                           {"audio": audio, "caption": "p1"}]), window)
    temporal = MixupClips(mixup_dir, "train", window)
    data = ConcatDataset([pairs, temporal])
    seen = []

    def tokenizer(texts, **kwargs):
        seen.append(texts)
        return {"input_ids": torch.zeros(len(texts), 3)}

    batch = AudioTextCollator(tokenizer)([data[0], data[2], data[1], data[3]])
    assert batch["audio"].shape == (4, 16000)
    assert batch["neg_caption_index"].tolist() == [1, 3] == batch["neg_audio_index"].tolist()
    assert batch["neg_captions"] == [temporal[0]["neg_caption"], temporal[1]["neg_caption"]]
    assert seen == [batch["captions"] + batch["neg_captions"]]
    assert torch.equal(batch["neg_audio"][0], torch.from_numpy(temporal[0]["neg_audio"]))


def test_repeated_files_are_drawn_that_many_times_per_epoch(mixup_dir, tmp_path):
    from tclap.data.datasets import EpochConcatDataset
    from tclap.data.orderfree import write_order_free_pairs
    from tclap.train import DataConfig, build_datasets

    for kind in ("mixup", "single"):
        write_order_free_pairs(mixup_dir, tmp_path / f"{kind}.jsonl", kinds=(kind,))
    files = [str(tmp_path / "mixup.jsonl"), str(tmp_path / "single.jsonl")]
    positive, _ = build_datasets(DataConfig(positive_only=files, positive_only_repeats=[1, 3]),
                                 AudioWindow(16000, 1.0), seed=0)
    data = EpochConcatDataset(positive)
    sampler = MixedBatchSampler(len(data), 0, batch_size=1, ratio={"positive_only": 1, "temporal": 0})
    seen = Counter(data[i]["id"] for batch in sampler for i in batch)
    mixups = [json.loads(line)["id"] for line in open(files[0])]
    singles = [json.loads(line)["id"] for line in open(files[1])]
    assert seen == Counter({**{i: 1 for i in mixups}, **{i: 3 for i in singles}})


def test_each_listing_of_a_repeated_row_draws_its_own_crop_and_word(mixup_dir, tmp_path):
    """Listing 0 is the row's usual draw (a run without repeats is unchanged); the extra listings crop
    and insert words of their own, through a DataLoader too (torch's fetcher calls `__getitems__`)."""
    from tclap.data.datasets import Oversampled
    from tclap.data.orderfree import write_order_free_pairs

    write_order_free_pairs(mixup_dir, tmp_path / "single.jsonl", kinds=("single",))
    pairs = CaptionPairs(tmp_path / "single.jsonl", AudioWindow(16000, 1.0), positive_only=True, seed=0,
                         word_insertion=1.0)
    n, repeated = len(pairs), Oversampled(pairs, len(pairs), 3)
    listings = [repeated[k * n] for k in range(3)]
    np.testing.assert_array_equal(listings[0]["audio"], pairs[0]["audio"])
    assert listings[0]["caption"] == pairs[0]["caption"]
    assert len({x["audio"].tobytes() for x in listings}) == len({x["caption"] for x in listings}) == 3
    fetched = next(iter(DataLoader(repeated, batch_sampler=[[0, n, 2 * n]], collate_fn=lambda b: b)))
    assert [x["caption"] for x in fetched] == [x["caption"] for x in listings]
    head = Oversampled(pairs, 2, 3)  # rows past the head are listed once, with their usual draw
    assert [x["caption"] for x in (head[6], head[7])] == [pairs[2]["caption"], pairs[3]["caption"]]
    assert head[2]["caption"] == listings[1]["caption"]
    plain = Oversampled([{"audio": 1}, {"audio": 2}], 1, 3)  # cached features: the same in every listing
    assert [plain[i] for i in range(4)] == [{"audio": 1}] * 3 + [{"audio": 2}]


@pytest.mark.parametrize("factors", [[1], [1, 0], [1, 2.5], [True, 1], 4])
def test_repeats_need_a_whole_number_per_file(mixup_dir, tmp_path, factors):
    from tclap.data.orderfree import write_order_free_pairs
    from tclap.train import DataConfig, build_datasets

    write_order_free_pairs(mixup_dir, tmp_path / "pairs.jsonl")
    with pytest.raises(DataError, match="data.positive_only_repeats"):
        build_datasets(DataConfig(positive_only=[str(tmp_path / "pairs.jsonl")] * 2, positive_only_repeats=factors),
                       AudioWindow(16000, 1.0), seed=0)


def test_repeats_leave_the_tiny_tokenizer_as_it_is(mixup_dir, tmp_path):
    """The tiny model's BPE is trained on every caption once; oversampling must not reweight it."""
    from tclap.data.orderfree import write_order_free_pairs
    from tclap.model import ModelConfig
    from tclap.train import DataConfig, RunConfig, prepare

    for kind in ("mixup", "single"):
        write_order_free_pairs(mixup_dir, tmp_path / f"{kind}.jsonl", kinds=(kind,))
    files = [str(tmp_path / "mixup.jsonl"), str(tmp_path / "single.jsonl")]
    vocabularies = []
    for repeats in ([], [1, 5]):
        cfg = RunConfig(model=ModelConfig(init="tiny", vocab_size=300),
                        data=DataConfig(positive_only=files, positive_only_repeats=repeats))
        cfg.train.batch_size = 4
        vocabularies.append(prepare(cfg)[2].tokenizer.get_vocab())
    assert vocabularies[0] == vocabularies[1]
