"""Rule-based order-swapped negatives: hand-written expected answers for templates, free-form
captions, before/after traps, simultaneity and every refusal reason."""
from __future__ import annotations

import re
from collections import Counter

import pytest

from tclap.data.negatives import Negative, RuleBackend, swap_event_order
from tclap.data.phrasing import PHRASINGS

# (caption, expected negative, events in temporal order)
SWAPS = [
    # the project's templates, two events
    ("siren followed by knock", "knock followed by siren", ("siren", "knock")),
    ("siren and then knock", "knock and then siren", ("siren", "knock")),
    ("first siren, then knock", "first knock, then siren", ("siren", "knock")),
    ("siren, after that knock", "knock, after that siren", ("siren", "knock")),
    ("siren before knock", "knock before siren", ("siren", "knock")),
    ("knock after siren", "siren after knock", ("siren", "knock")),
    ("siren, then knock", "knock, then siren", ("siren", "knock")),
    ("siren, and afterwards knock", "knock, and afterwards siren", ("siren", "knock")),
    ("siren, later knock", "knock, later siren", ("siren", "knock")),
    ("knock, preceded by siren", "siren, preceded by knock", ("siren", "knock")),
    ("siren comes before knock", "knock comes before siren", ("siren", "knock")),
    ("knock comes after siren", "siren comes after knock", ("siren", "knock")),
    ("siren, next knock", "knock, next siren", ("siren", "knock")),
    # the templates, three events with multi-word labels
    ("click train followed by crying baby and then siren", "siren followed by crying baby and then click train",
     ("click train", "crying baby", "siren")),
    ("first siren, then knock, then drum roll", "first drum roll, then knock, then siren",
     ("siren", "knock", "drum roll")),
    ("siren, crying baby, and then click train", "click train, crying baby, and then siren",
     ("siren", "crying baby", "click train")),
    ("siren before church bells, then drum roll", "drum roll before church bells, then siren",
     ("siren", "church bells", "drum roll")),
    ("siren, after that water drops, and finally bell", "bell, after that water drops, and finally siren",
     ("siren", "water drops", "bell")),
    ("siren, then knock, and later bell", "bell, then knock, and later siren", ("siren", "knock", "bell")),
    # free-form AudioCaps-style sequences
    ("A dog barks, then a man speaks.", "A man speaks, then a dog barks.", ("a dog barks", "a man speaks")),
    ("A clock ticks and then an alarm rings", "An alarm rings and then a clock ticks",
     ("a clock ticks", "an alarm rings")),
    ("Footsteps approach, a door slams, then a woman screams.",
     "A woman screams, a door slams, then footsteps approach.",
     ("footsteps approach", "a door slams", "a woman screams")),
    ("A man speaks, then a woman laughs, and later a dog barks.",
     "A dog barks, then a woman laughs, and later a man speaks.",
     ("a man speaks", "a woman laughs", "a dog barks")),
    ("A door opens followed by footsteps and then a door closes.",
     "A door closes followed by footsteps and then a door opens.",
     ("a door opens", "footsteps", "a door closes")),
    ("Several gunshots followed by a man speaking", "A man speaking followed by several gunshots",
     ("several gunshots", "a man speaking")),
    ("A man speaks. Then a dog barks.", "A dog barks. Then a man speaks.", ("a man speaks", "a dog barks")),
    ("A man speaks. A dog barks. Then a car passes.", "A car passes. A dog barks. Then a man speaks.",
     ("a man speaks", "a dog barks", "a car passes")),
    ("First a man speaks, then a dog barks.", "First a dog barks, then a man speaks.",
     ("a man speaks", "a dog barks")),
    ("a man speaks, subsequently a dog barks", "a dog barks, subsequently a man speaks",
     ("a man speaks", "a dog barks")),
    ("People talk, then a bus passes.", "A bus passes, then people talk.", ("people talk", "a bus passes")),
    # a clause can't fill a noun-phrase slot: ", then" instead
    ("A man speaks followed by a loud bang.", "A loud bang, then a man speaks.", ("a man speaks", "a loud bang")),
    ("A bell rings, followed shortly by a man speaking.", "A man speaking, then a bell rings.",
     ("a bell rings", "a man speaking")),
    ("A car horn honks, preceded by an engine revving.", "A car horn honks, then an engine revving.",
     ("an engine revving", "a car horn honks")),
    # before / after, sentence-initial forms and the traps
    ("A dog barks after a man speaks.", "A man speaks after a dog barks.", ("a man speaks", "a dog barks")),
    ("After a man speaks, a dog barks.", "After a dog barks, a man speaks.", ("a man speaks", "a dog barks")),
    ("Before a man speaks, a dog barks.", "Before a dog barks, a man speaks.", ("a dog barks", "a man speaks")),
    ("A man speaks, after which a dog barks.", "A dog barks, after which a man speaks.",
     ("a man speaks", "a dog barks")),
    ("A man speaks, then after a while a dog barks.", "A dog barks, then after a while a man speaks.",
     ("a man speaks", "a dog barks")),
    ("A dog barks shortly after a man speaks.", "A man speaks shortly after a dog barks.",
     ("a man speaks", "a dog barks")),
    ("Right after a door slams, a baby cries.", "Right after a baby cries, a door slams.",
     ("a door slams", "a baby cries")),
    ("A man speaks, and after that a dog barks.", "A dog barks, and after that a man speaks.",
     ("a man speaks", "a dog barks")),
    ("A man speaks and shortly after a dog barks", "A dog barks and shortly after a man speaks",
     ("a man speaks", "a dog barks")),
    ("A man talks about the day before, then a dog barks.", "A dog barks, then a man talks about the day before.",
     ("a man talks about the day before", "a dog barks")),
    ("A dog barks next door, then a man speaks", "A man speaks, then a dog barks next door",
     ("a dog barks next door", "a man speaks")),
    # simultaneity inside a sequence stays with its clause
    ("A man speaks while a car passes, then a horn honks.", "A horn honks, then a man speaks while a car passes.",
     ("a man speaks while a car passes", "a horn honks")),
    ("A siren wails as a truck passes, then a man shouts, and finally a door slams.",
     "A door slams, then a man shouts, and finally a siren wails as a truck passes.",
     ("a siren wails as a truck passes", "a man shouts", "a door slams")),
    ("A man speaks, laughing, then a dog barks.", "A dog barks, then a man speaks, laughing.",
     ("a man speaks, laughing", "a dog barks")),
]

NOT_SWAPPABLE = [
    ("Birds chirp while a man speaks.", "simultaneous: 'while'"),
    ("A man speaks as a car passes by.", "simultaneous: 'as'"),
    ("A man speaks with a dog barking in the background.", "simultaneous: 'with'"),
    ("A dog barks during a thunderstorm", "simultaneous: 'during'"),
    ("Rain falls, and at the same time thunder rumbles", "simultaneous: 'at the same time'"),
    ("A dog barks and a man speaks.", "no ordering connective"),
    ("A dog barks every now and then", "no ordering connective"),
    ("A man speaks as well as a woman", "single event"),
    ("A dog barks.", "single event"),
    ("A dog barks after a while.", "single event"),
    ("Before long a dog barks", "single event"),
    ("An engine runs then stops.", "second clause is not a new event: 'stops'"),
    ("An engine idles and then fades away.", "second clause is not a new event: 'fades away'"),
    ("A man speaks, then continues", "second clause is not a new event: 'continues'"),
    ("A dog barks, then barks again.", "second clause is not a new event: 'barks again'"),
    ("A man speaks then laughs", "second clause has no subject of its own: 'laughs'"),
    ("A man speaks and then he laughs.", "'he' refers to an earlier clause: 'he laughs'"),
    ("A man speaks, then the man laughs", "'the man' refers to an earlier clause: 'the man laughs'"),
    ("A dog barks, then a man speaks again", "'again' refers to an earlier clause: 'a man speaks again'"),
    ("A dog barks first, then a man speaks.", "unsure: 'first' inside a clause: 'a dog barks first'"),
    ("a man speaks and then", "connective at the end: 'and then'"),
    ("then a dog barks", "empty clause before 'then'"),
    ("After a man speaks a dog barks", "unsure: no comma closes the opening 'after' clause"),
    ("A dog barks before a cat meows after a bird chirps", "unsure: the connectives point both ways"),
    ("A man speaks then a man speaks.", "reversing the events leaves the caption unchanged"),
    ("", "empty caption"),
]

CONNECTIVE_WORDS = set("then and followed by after before preceded comes first later afterwards next finally "
                       "subsequently that which shortly".split())


def content_words(text: str) -> Counter:
    return Counter(w for w in re.findall(r"[a-z']+", text.lower()) if w not in CONNECTIVE_WORDS)


@pytest.mark.parametrize("caption, negative, events", SWAPS)
def test_swaps(caption, negative, events):
    result = swap_event_order(caption)
    assert result == Negative(caption, negative, None, events)


@pytest.mark.parametrize("caption, negative, events", SWAPS)
def test_negative_keeps_the_content_words(caption, negative, events):
    assert content_words(swap_event_order(caption).negative) == content_words(caption)


@pytest.mark.parametrize("caption, negative, events", SWAPS)
def test_negative_parses_to_the_reversed_events(caption, negative, events):
    assert swap_event_order(negative).events == events[::-1]


@pytest.mark.parametrize("caption, reason", NOT_SWAPPABLE)
def test_not_swappable(caption, reason):
    result = swap_event_order(caption)
    assert (result.negative, result.reason) == (None, reason)


@pytest.mark.parametrize("labels", [("siren", "click train", "crying baby"),
                                    ("water drops", "church bells", "door wood knock"),
                                    ("chirp", "knock", "hum")])
@pytest.mark.parametrize("phrasing", PHRASINGS, ids=lambda p: p.template)
def test_template_swaps_to_the_same_template_and_back(phrasing, labels):
    labels = labels[:phrasing.n_events]
    caption = phrasing.render(labels)
    first = swap_event_order(caption)
    assert first.events == labels
    assert first.negative == phrasing.render(labels[::-1])
    second = swap_event_order(first.negative)
    assert second.events == labels[::-1]
    assert second.negative == caption


def test_backend_is_deterministic_and_keeps_order():
    captions = [caption for caption, _, _ in SWAPS] + [caption for caption, _ in NOT_SWAPPABLE]
    backend = RuleBackend()
    assert backend.name == "rule"
    results = backend(captions)
    assert [r.caption for r in results] == captions
    assert results == RuleBackend()(captions)
