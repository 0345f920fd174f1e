import string

import numpy as np
import pytest

from tclap.data.augment import insert_random_word
from tclap.data.datasets import AudioWindow, EpochConcatDataset, MixupClips
from tclap.errors import DataError


def _inserted(original: str, augmented: str) -> tuple[int, str]:
    """(gap, word) such that removing that word from `augmented` gives back `original`."""
    words, base = augmented.split(" "), original.split(" ")
    found = [(i, w) for i, w in enumerate(words) if words[:i] + words[i + 1:] == base]
    assert found, (original, augmented)
    return found[0]


def test_one_word_of_letters_lands_in_any_gap_and_the_rest_is_kept():
    rng = np.random.default_rng(0)
    caption = "dog bark after siren"
    gaps, lengths = set(), set()
    for _ in range(300):
        out, twin = insert_random_word(caption, rng, length=(3, 5))
        assert twin is None and len(out.split(" ")) == 5
        gap, word = _inserted(caption, out)
        assert set(word) <= set(string.ascii_lowercase)
        gaps.add(gap), lengths.add(len(word))
    assert gaps == {0, 1, 2, 3, 4} and lengths == {3, 4, 5}   # both ends count, the length range is inclusive
    draw = insert_random_word(caption, np.random.default_rng(7))
    assert draw == insert_random_word(caption, np.random.default_rng(7))


# for each gap of the caption (0 = before its first word), where the twin gets the word: written by hand
TWIN_BY_GAP = [
    ("siren and then knock", "knock and then siren",
     ["knock and then W siren", "knock W and then siren", "knock and W then siren", "W knock and then siren",
      "knock and then siren W"]),
    ("first dog bark, then siren", "first siren, then dog bark",   # "bark," is "bark" to the twin
     ["W first siren, then dog bark", "first siren, then W dog bark", "first siren, then dog W bark",
      "first siren, W then dog bark", "first W siren, then dog bark", "first siren, then dog bark W"]),
    ("drum roll after drum", "drum after drum roll",               # the k-th "drum" stays the k-th
     ["W drum after drum roll", "drum after drum W roll", "drum W after drum roll", "drum after W drum roll",
      "drum after drum roll W"]),
]


@pytest.mark.parametrize("caption, twin, expected", TWIN_BY_GAP)
def test_the_twin_gets_the_same_word_before_the_same_word(caption, twin, expected):
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(200):
        out, out_twin = insert_random_word(caption, rng, twin=twin)
        gap, word = _inserted(caption, out)
        assert out_twin == expected[gap].replace("W", word)
        seen.add(gap)
    assert seen == set(range(len(expected)))


def test_a_twin_without_the_word_gets_it_at_a_gap_of_its_own():
    rng = np.random.default_rng(2)
    for _ in range(50):
        out, out_twin = insert_random_word("a knock before a beep", rng, twin="the beep after the knock")
        _, word = _inserted("a knock before a beep", out)
        assert _inserted("the beep after the knock", out_twin)[1] == word


def test_a_missing_or_empty_twin_is_passed_through():
    for twin in (None, ""):
        assert insert_random_word("a knock", np.random.default_rng(3), twin=twin)[1] == twin


def test_the_same_sample_and_epoch_draw_the_same_words(mixup_dir):
    """A resumed run sees the captions the interrupted one would have."""
    window = AudioWindow(16000, 1.0, train=True)
    one, other = (MixupClips(mixup_dir, "train", window, seed=5, word_insertion=1.0) for _ in range(2))
    one.set_epoch(3), other.set_epoch(3)
    assert [one[i]["caption"] for i in range(len(one))] == [other[i]["caption"] for i in range(len(other))]


def test_training_captions_get_words_at_the_rate_asked_anew_each_epoch(mixup_dir):
    window = AudioWindow(16000, 1.0, train=True)
    plain = MixupClips(mixup_dir, "train", window)
    always = MixupClips(mixup_dir, "train", window, word_insertion=1.0)
    half = MixupClips(mixup_dir, "train", window, word_insertion=0.5)
    for i in range(len(plain)):
        row = plain.rows[i]
        assert (plain[i]["caption"], plain[i]["neg_caption"]) == (row["caption"], row["neg_caption"])
        sample = always[i]
        word = _inserted(row["caption"], sample["caption"])[1]
        assert _inserted(row["neg_caption"], sample["neg_caption"])[1] == word   # the pair shares its word
        np.testing.assert_array_equal(sample["audio"], plain[i]["audio"])   # the audio crop does not move
    changed = [half[i]["caption"] != half.rows[i]["caption"] for i in range(len(half))]
    assert 0.25 < np.mean(changed) < 0.75
    first = always[0]["caption"]
    always.set_epoch(1)
    assert always[0]["caption"] != first


def test_insertions_start_at_their_epoch_in_every_part_of_a_concatenation(mixup_dir):
    """torch's ConcatDataset has no set_epoch: without passing it on, every epoch would see epoch 0's draws."""
    window = AudioWindow(16000, 1.0, train=True)
    parts = [MixupClips(mixup_dir, split, window, word_insertion=1.0, word_insertion_from=2)
             for split in ("train", "val")]
    data = EpochConcatDataset(parts)
    last = len(data) - 1
    data.set_epoch(1)
    assert (data[0]["caption"], data[last]["caption"]) == (parts[0].rows[0]["caption"], parts[1].rows[-1]["caption"])
    data.set_epoch(2)
    drawn = data[0]["caption"], data[last]["caption"]
    _inserted(parts[0].rows[0]["caption"], drawn[0]), _inserted(parts[1].rows[-1]["caption"], drawn[1])
    data.set_epoch(3)
    assert data[0]["caption"] != drawn[0] and data[last]["caption"] != drawn[1]


def test_word_insertion_must_be_a_probability(mixup_dir):
    with pytest.raises(DataError, match="data.word_insertion"):
        MixupClips(mixup_dir, "train", AudioWindow(16000, 1.0), word_insertion=1.5)


def test_the_run_config_reaches_every_training_dataset(mixup_dir, tmp_path):
    from tclap.data.orderfree import write_order_free_pairs
    from tclap.model import ModelConfig
    from tclap.train import DataConfig, RunConfig, build_datasets, prepare

    pairs = tmp_path / "orderfree.jsonl"
    write_order_free_pairs(mixup_dir, pairs)
    positive, temporal = build_datasets(DataConfig(mixup=str(mixup_dir), positive_only=[str(pairs)],
                                                   temporal_captions=[str(pairs)], word_insertion=0.3,
                                                   word_insertion_from=4),
                                        AudioWindow(16000, 1.0), seed=0)
    assert [(d.word_insertion, d.word_insertion_from) for d in positive + temporal] == [(0.3, 4)] * 3
    cfg = RunConfig(model=ModelConfig(init="tiny", vocab_size=400),
                    data=DataConfig(mixup=str(mixup_dir), positive_only=[str(pairs)]))
    cfg.train.batch_size = 4
    assert isinstance(prepare(cfg)[1].dataset, EpochConcatDataset)   # the trainer's set_epoch reaches the parts
