"""T-Classify margins, CompA-order paired scores and the mixed-up breakdown, on hand-built embeddings."""
from __future__ import annotations

import pytest
import torch

from fake_embedder import DictEmbedder
from tclap.evaluation import (compa_order_decisions, embed_rows, swap_similarity, t_classify_breakdown,
                              tclassify_margins)

# Five items in 2-D (T0 caption, A0 audio, T1 negative caption, A1 negative audio); similarities are dot products.
#   item 0: s00=1, s10=0, s11=1, s01=0        -> text right, audio right
#   item 1: s00=2, s10=1, s11=1, s01=0.5      -> text right, audio wrong (s11 = s10)
#   item 2: s00=1, s10=1.5, s11=2, s01=0      -> text wrong (s00 < s10), audio right
#   item 3: negative caption only, s00=1, s10=2
#   item 4: negative audio only, s00=1, s01=3
TEXT = [[1, 0], [1, 0], [1, 0], [1, 0], [0, 1]]
AUDIO = [[1, 0], [2, 1], [1, 0], [1, 0], [0, 1]]
NEG_TEXT = {0: [0, 1], 1: [0, 1], 2: [1.5, 2], 3: [2, 0]}
NEG_AUDIO = {0: [0, 1], 1: [0.5, 1], 2: [0, 1], 4: [0, 3]}


def hand_built() -> dict[str, torch.Tensor]:
    return {"text": torch.tensor(TEXT, dtype=torch.float32), "audio": torch.tensor(AUDIO, dtype=torch.float32),
            "neg_text": torch.tensor(list(NEG_TEXT.values())), "neg_text_index": torch.tensor(list(NEG_TEXT)),
            "neg_audio": torch.tensor(list(NEG_AUDIO.values())), "neg_audio_index": torch.tensor(list(NEG_AUDIO))}


def test_margins_are_positive_minus_negative_similarity():
    t2a, a2t = tclassify_margins(hand_built())
    assert t2a.tolist() == [1 - 0, 2 - 1, 1 - 1.5, 1 - 2]          # s(A0,T0) - s(A0,T1), items 0-3
    assert a2t.tolist() == [1 - 0, 2 - 0.5, 1 - 0, 1 - 3]          # s(T0,A0) - s(T0,A1), items 0, 1, 2, 4


def test_compa_order_scores_only_items_with_both_negatives():
    scores = compa_order_decisions(hand_built())
    assert scores["index"].tolist() == [0, 1, 2]
    assert scores["text"].tolist() == [1, 1, 0]
    assert scores["audio"].tolist() == [1, 0, 1]
    assert scores["group"].tolist() == [1, 0, 0]


RECORDS = [{"n_events": n, "phrasing_seen": seen, "before_after": ba} for n, seen, ba in
           [(2, True, False), (2, False, False), (3, True, True), (3, False, False), (2, True, False)]]


def test_breakdown_by_phrasing_and_number_of_events():
    result = t_classify_breakdown(hand_built(), RECORDS)
    third = 100 / 3
    expected = {
        # overall: T2A items 0-3 right/right/wrong/wrong, A2T items 0,1,2,4 right/right/right/wrong
        "tclassify_t2a": 50.0, "tclassify_a2t": 75.0, "compa_text": 2 * third, "compa_audio": 2 * third,
        "compa_group": third, "n_items": 5,
        # items 0, 1, 4
        "tclassify_t2a_2_events": 100.0, "tclassify_a2t_2_events": 2 * third, "compa_text_2_events": 100.0,
        "compa_audio_2_events": 50.0, "compa_group_2_events": 50.0, "n_2_events": 3,
        # items 2, 3
        "tclassify_t2a_3_events": 0.0, "tclassify_a2t_3_events": 100.0, "compa_text_3_events": 0.0,
        "compa_audio_3_events": 100.0, "compa_group_3_events": 0.0, "n_3_events": 2,
        # items 0, 2, 4
        "tclassify_t2a_seen_phrasing": 50.0, "tclassify_a2t_seen_phrasing": 2 * third,
        "compa_text_seen_phrasing": 50.0, "compa_audio_seen_phrasing": 100.0, "compa_group_seen_phrasing": 50.0,
        "n_seen_phrasing": 3,
        # items 1, 3
        "tclassify_t2a_unseen_phrasing": 50.0, "tclassify_a2t_unseen_phrasing": 100.0,
        "compa_text_unseen_phrasing": 100.0, "compa_audio_unseen_phrasing": 0.0, "compa_group_unseen_phrasing": 0.0,
        "n_unseen_phrasing": 2,
        # item 2
        "tclassify_t2a_before_after": 0.0, "tclassify_a2t_before_after": 100.0, "compa_text_before_after": 0.0,
        "compa_audio_before_after": 100.0, "compa_group_before_after": 0.0, "n_before_after": 1,
    }
    assert result.keys() == expected.keys()
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key


def test_breakdown_by_word_order_where_the_records_give_it():
    # items 1 and 3 are unseen phrasings; item 1 names its events against time order, as does seen item 2
    records = [{**r, "word_order_reversed": i in (1, 2)} for i, r in enumerate(RECORDS)]
    result = t_classify_breakdown(hand_built(), records)
    assert t_classify_breakdown(hand_built(), RECORDS).items() <= result.items()  # the old keys are unchanged
    # reversed: items 1, 2 (T2A right / wrong; A2T right / right; CompA group wrong / wrong)
    assert (result["tclassify_t2a_reversed_wording"], result["tclassify_a2t_reversed_wording"],
            result["compa_group_reversed_wording"], result["n_reversed_wording"]) == (50.0, 100.0, 0.0, 2)
    # unseen and reversed: item 1 only; unseen in time order: item 3 only (T2A wrong, no negative audio)
    assert (result["tclassify_t2a_unseen_reversed_wording"], result["n_unseen_reversed_wording"]) == (100.0, 1)
    assert (result["tclassify_t2a_unseen_time_order_wording"], result["n_unseen_time_order_wording"]) == (0.0, 1)
    assert "tclassify_a2t_unseen_time_order_wording" not in result


def test_breakdown_by_template_where_the_records_name_it():
    templates = ["{0} then {1}", "{1} comes after {0}", "{0} then {1}", "{1} comes after {0}", "{0} then {1}"]
    records = [{**r, "phrasing": p} for r, p in zip(RECORDS, templates)]
    result = t_classify_breakdown(hand_built(), records)
    assert t_classify_breakdown(hand_built(), RECORDS).items() <= result.items()
    # "{0} then {1}": items 0, 2, 4 (T2A right / wrong; A2T right / right / wrong); the other: items 1, 3
    then, after = "_phrasing[{0} then {1}]", "_phrasing[{1} comes after {0}]"
    assert (result[f"tclassify_t2a{then}"], result[f"tclassify_a2t{then}"], result[f"n{then}"]) == \
        (50.0, pytest.approx(200 / 3), 3)
    assert (result[f"tclassify_t2a{after}"], result[f"tclassify_a2t{after}"], result[f"n{after}"]) == (50.0, 100.0, 2)


def test_the_main_jobs_headline_t_classify_names_are_breakdown_keys():
    from tclap.experiment import HEADLINE

    records = [{**r, "word_order_reversed": i in (1, 2)} for i, r in enumerate(RECORDS)]
    wanted = {key for key in HEADLINE.values() if key.startswith("tclassify_")}
    assert wanted <= t_classify_breakdown(hand_built(), records).keys()


def test_empty_subgroups_and_scores_without_items_are_left_out():
    records = [{**r, "before_after": False} for r in RECORDS]
    e = hand_built()
    e["neg_audio"], e["neg_audio_index"] = e["neg_audio"][:0], e["neg_audio_index"][:0]
    result = t_classify_breakdown(e, records)
    assert not any(k.endswith("_before_after") for k in result)
    assert not any(k.startswith(("tclassify_a2t", "compa_")) for k in result)
    assert result["tclassify_t2a"] == 50.0


def test_embed_rows_indexes_the_negatives_each_row_has():
    embedder = DictEmbedder(audio={"a.wav": [1, 0], "b.wav": [0, 1], "a.neg.wav": [0.5, 0.5]},
                            text={"a then b": [1, 0], "b then a": [0, 1], "b": [0, 2]})
    rows = [{"audio": "a.wav", "caption": "a then b", "neg_caption": "b then a", "neg_audio": "a.neg.wav"},
            {"audio": "b.wav", "caption": "b", "neg_caption": None}]
    e = embed_rows(embedder, rows)
    assert e["audio"].tolist() == [[1, 0], [0, 1]] and e["text"].tolist() == [[1, 0], [0, 2]]
    assert e["neg_text_index"].tolist() == [0] and e["neg_text"].tolist() == [[0, 1]]
    assert e["neg_audio_index"].tolist() == [0] and e["neg_audio"].tolist() == [[0.5, 0.5]]
    only_positive = embed_rows(embedder, rows[1:])
    assert only_positive["neg_text"].shape == only_positive["neg_audio"].shape == (0, 2)
    assert tclassify_margins(only_positive)[0].shape == (0,)


def test_swap_similarity_against_a_hand_computation():
    """Unit vectors at angles (degrees): captions 0, 90, 0; swapped captions of items 0 and 1 at 0 and 60;
    clips 0, 0, 90; swapped clip of item 2 at 90."""
    def unit(degrees):
        rad = torch.deg2rad(torch.tensor(degrees, dtype=torch.float32))
        return torch.stack([torch.cos(rad), torch.sin(rad)], dim=-1)

    e = {"text": unit([0.0, 90.0, 0.0]), "neg_text": unit([0.0, 60.0]), "neg_text_index": torch.tensor([0, 1]),
         "audio": unit([0.0, 0.0, 90.0]), "neg_audio": unit([90.0]), "neg_audio_index": torch.tensor([2])}
    result = swap_similarity(e)
    assert result["swap_cosine_text"] == pytest.approx((1.0 + 3 ** 0.5 / 2) / 2)  # cos 0, cos 30
    assert result["pairwise_cosine_text"] == pytest.approx((0 + 1 + 0) / 3)   # pairs (0,1), (0,2), (1,2)
    assert result["swap_cosine_audio"] == pytest.approx(1.0)                  # an order-blind clip
    assert result["pairwise_cosine_audio"] == pytest.approx((1 + 0 + 0) / 3, abs=1e-6)
