from __future__ import annotations

import pytest

from tclap.data.negatives import swap_event_order
from tclap.data.phrasing import PHRASINGS, label_text, phrasings


def test_reversed_tag_follows_the_slot_order():
    by_template = {p.template: p for p in PHRASINGS}
    assert by_template["{1} after {0}"].reversed and by_template["{1}, preceded by {0}"].reversed
    assert not by_template["{0} before {1}"].reversed and by_template["{0} before {1}"].before_after
    assert not by_template["{0} followed by {1}"].reversed


def test_render_puts_events_in_time_order():
    p = next(p for p in PHRASINGS if p.template == "{1} after {0}")
    assert p.render(["siren", "knock"]) == "knock after siren"
    with pytest.raises(ValueError):
        p.render(["siren"])


def test_unseen_phrasings_only_for_evaluation():
    for n in (2, 3):
        train, test = phrasings(n, include_unseen=False), phrasings(n, include_unseen=True)
        assert all(p.seen for p in train) and any(not p.seen for p in test)
        assert set(train) < set(test)
    assert {p.n_events for p in PHRASINGS} == {2, 3}
    assert label_text("crying_baby") == "crying baby"


@pytest.mark.parametrize("phrasing", PHRASINGS, ids=lambda p: p.template)
def test_rule_backend_reads_every_template_in_time_order(phrasing):
    """The negative-caption parser must recover the event order of our own captions."""
    labels = ["siren", "click train", "dog bark"][: phrasing.n_events]
    result = swap_event_order(phrasing.render(labels))
    assert result.negative is not None, result.reason
    assert list(result.events) == labels
    assert list(swap_event_order(result.negative).events) != labels
