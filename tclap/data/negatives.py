"""Order-swapped negative captions: the shared result type, the rule-based backend and the
verb-form converter it uses to move events between clause and noun-phrase slots."""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Negative:
    """A backend's answer for one caption."""

    caption: str
    negative: str | None      # None when the caption cannot be swapped
    reason: str | None        # why not, e.g. "single event", "simultaneous: 'while'"
    events: tuple[str, ...]   # event clauses in temporal order as parsed (may be empty)


# ---------------------------------------------------------------------------------------------
# Rule-based backend.
#
# A caption is cut into event clauses at connective "runs": consecutive connective units
# ("then", "followed by", "after", ", and", ...) between two clauses. Each run becomes a link
# with a direction (does the next clause happen later or earlier?) and a tightness: before/after
# bind tighter than then/commas, so "A before B, then C" is (A before B), then C. The negative keeps
# the written skeleton (every link's text where it was) and moves the events through the slots,
# which turns a template caption into the same template with the labels permuted. When an event
# cannot stand in its new slot ("followed by" takes a noun phrase), the moved events change verb form
# ("a woman speaks" <-> "a woman speaking") if their verbs are known for sure; otherwise the events
# are joined with ", then" instead.
# ---------------------------------------------------------------------------------------------

_MODIFIER = (r"(?:shortly|soon|just|right|immediately|directly|quickly|long|not long|moments|seconds|"
             r"minutes|a moment|a second|a split second|a few seconds|a few moments)")
_PAUSE = (r"(?:(?:a|an|one|some|several|a few|a couple of)\s+)?(?:(?:short|brief|long|little)\s+)?"
          r"(?:while|moment|moments|pause|second|seconds|minute|minutes|time|bit|delay|silence)")
_BE = r"(?:(?:is|are|was|were|which is|which are|that is|and is|and are)\s+)?"
_ADVERB = r"(?:shortly|soon|quickly|closely|immediately|eventually|later|finally|briefly|then)"
_NEXT_WORD = r"(?=\s+[a-z0-9])"      # a before/after connective must have a clause after it
_END = r"(?![a-z0-9'’-])"
_WORD = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]+)*")

# (kind, pattern): the longest match at a token wins; "block" matches are ordinary clause text.
_UNITS: tuple[tuple[str, str], ...] = (
    ("block", r"(?:every\s+)?now and (?:then|again)|(?:by|until|till|since|back) then|as before|"
              r"one after (?:the\s+)?another|one after the other|(?:day|time) after (?:day|time)|after all|"
              r"next\s+(?:to|room|day|one|time)|(?:a|an|the|this|that|his|her|their|its)\s+(?:next|later)|"
              r"(?:the\s+)?(?:day|night|week|month|year|evening|morning)\s+(?:before|after)"),
    ("filler", r",|;|\.|and"),
    ("then", r"then|(?:(?<=[,;.]\s)|(?<=\band\s)|(?<=\bthen\s))next|after (?:that|this|which)|"
             rf"{_MODIFIER}\s+after(?=\s*[,;.])"),    # "soon after, a man speaks"
    ("adverb", rf"{_MODIFIER}\s+after(?=\s*$)|after {_PAUSE}|{_PAUSE}\s+later|before long|later(?:\s+on)?|"
               r"afterwards?|thereafter|eventually|finally|subsequently|"
               r"(?:soon|shortly|immediately|right|just|quickly)\s+(?:afterwards?|thereafter)"),
    ("back", r"before (?:that|this)|prior to (?:that|this)"),
    ("followed", _BE + rf"(?:{_ADVERB}\s+)?followed\s+(?:{_ADVERB}\s+)?by"),
    ("preceded", _BE + rf"(?:{_ADVERB}\s+)?preceded\s+(?:{_ADVERB}\s+)?by"),
    ("comes_before", rf"(?:comes|come|came)\s+(?:{_MODIFIER}\s+)?before"),
    ("comes_after", rf"(?:comes|come|came)\s+(?:{_MODIFIER}\s+)?after"),
    ("before", rf"(?:{_MODIFIER}\s+)?(?:before|prior to){_NEXT_WORD}"),
    ("after", rf"(?:{_MODIFIER}\s+)?after{_NEXT_WORD}"),
)
_UNIT_PATTERNS = tuple((kind, re.compile(f"(?:{pattern}){_END}")) for kind, pattern in _UNITS)


@dataclass(frozen=True)
class _LinkKind:
    direction: int   # +1: the clause after the link happens later; -1: earlier
    tight: bool      # before/after bind tighter than then/commas
    left: str        # what the slot before the link takes: "free", "np" or "same" (as written)
    right: str


_LINK_KINDS = {
    "then": _LinkKind(+1, False, "free", "free"),
    "adverb": _LinkKind(+1, False, "free", "free"),
    "list": _LinkKind(+1, False, "free", "free"),
    "back": _LinkKind(-1, False, "free", "free"),
    "followed": _LinkKind(+1, False, "free", "np"),
    "preceded": _LinkKind(-1, True, "free", "np"),
    "comes_before": _LinkKind(+1, True, "np", "np"),
    "comes_after": _LinkKind(-1, True, "np", "np"),
    "before": _LinkKind(+1, True, "same", "same"),
    "after": _LinkKind(-1, True, "same", "same"),
    "opening_after": _LinkKind(+1, True, "free", "same"),     # "After X, Y": X first
    "opening_before": _LinkKind(-1, True, "free", "same"),    # "Before X, Y": Y first
}
_LOOSE_FORWARD = {"then", "adverb", "list"}

_OPENING_MARKER = re.compile(r"(?:at first|first of all|firstly|first|initially|to begin with|in the beginning)"
                             r"(?:\s*,\s*|\s+)(?=[a-z0-9])")
_SIMULTANEITY = re.compile(
    r"\b(at the same time|simultaneously|in the background|along with|together with|accompanied by|"
    r"while|whilst|meanwhile|amidst|amid|alongside|during|until|when|with|over|as)\b")
_NOT_SIMULTANEITY = re.compile(r"\bas well as\b|\b(?:such|same|known) as\b|\bas (?:if|though)\b|\bas \w+ as\b|"
                               r"\b(?:a|short|little|long) while\b|\bover and over\b")

_DETERMINERS = set("a an the this that these those another some his her their its my your our one two three "
                   "four several many few multiple various numerous both each every".split())
_PRONOUNS = set("he she it they".split())
# Object pronouns that, in a later clause, point back to an earlier one ("... a woman answers it").
# "her" is one too when nothing follows it ("feeds her"), not as a possessive ("clears her throat").
_OBJECT_PRONOUNS = set("it them him".split())
_SUBJECT_PRONOUNS = _PRONOUNS | set("someone somebody something everyone we you i".split())
_ING_NOUNS = set("ring rings king thing things something nothing anything everything string strings spring "
                 "wing wings ceiling building".split())
_AUXILIARIES = set("is are was were has have had can could will would does do did gets keeps".split())
_ADJECTIVES = set("loud quiet soft faint distant heavy light high low deep sharp short long brief rapid quick "
                  "slow small large big little metallic mechanical electronic electric rhythmic steady constant "
                  "continuous intermittent sporadic occasional frequent random other more additional further "
                  "distinct clear gentle strong powerful intense hard".split())
_PREPOSITIONS = set("in on at from to into onto with without by near behind outside inside nearby across through "
                    "under over along around during while as whilst amid amidst until when which who that where "
                    "meanwhile".split())
# Third-person verb forms rarely used as plural nouns: "rain falls" is a clause, "church bells" is not.
_VERBS = set("""speaks talks says sings chants mumbles murmurs falls blows flows rumbles roars plays runs drips
    pours splashes rustles howls crackles sizzles hums buzzes whirs whines rings chirps tweets barks growls
    passes approaches moves drives idles revs accelerates decelerates starts stops continues fades ends begins
    goes comes sounds blares wails echoes trickles gushes gurgles babbles patters pounds booms thunders
    clatters rattles jingles squeaks squeals screeches grinds whooshes flaps flutters meows purrs moos
    oinks bleats quacks clucks coos croaks hisses breathes sniffs applauds strums types vibrates explodes
    flies lands increases decreases slows resumes repeats subsides recedes ceases dies""".split())
# Verb forms that are just as often plural nouns ("knocks", "claps").
_NOUN_LIKE_VERBS = set("""knocks claps clicks beeps bangs taps pops cracks crashes thuds ticks laughs whistles
    bubbles chimes cheers screams shouts yells cries coughs sneezes snores honks whispers calls creaks""".split())
_BASE_VERBS = set("""chirp sing tweet talk speak bark ring play pass cheer clap laugh chatter fall blow flow
    rumble roar crash splash drip rustle crackle buzz hum honk beep approach move drive run fly go come start
    stop continue fade croak quack cluck moo bleat meow howl growl whistle shout yell scream cry call squeak
    creak rattle clatter tick click knock bang tap pop crack echo sound begin end""".split())
_PLURAL_NOUNS = set("people men women children geese mice sheep cattle".split())
_CONTINUATIONS = set("""stops stop continues continue fades fade ends end resumes resume ceases cease dies die
    repeats repeat slows slow quiets subsides recedes diminishes finishes returns starts start begins begin
    keeps keep goes gets becomes grows increases decreases intensifies disappears""".split())


class _NotSwappable(Exception):
    """Raised inside the parser; the message is the `Negative.reason`."""


@dataclass(frozen=True)
class _Token:
    text: str    # lowercased
    start: int   # character span in the caption body
    end: int


@dataclass(frozen=True)
class _Unit:
    first: int   # token indices, inclusive
    last: int
    kind: str
    text: str


@dataclass(frozen=True)
class _Parse:
    marker: str               # "First, ": kept at the front of any realisation
    opening: str              # "After ": the first half of an opening before/after, part of the skeleton
    events: list[str]         # in written order
    links: list[str]          # link kinds between consecutive written events
    link_texts: list[str]     # the text between them, as written
    ranks: list[int]          # temporal position of each written event
    suffix: str               # final punctuation


def swap_event_order(caption: str) -> Negative:
    """The caption with its sound events in reverse temporal order, or why it has none to reverse.

    A wrong negative teaches the model the wrong thing, so anything the parser is unsure about
    (no ordering word, simultaneity only, a second clause without a new event, an empty clause)
    comes back with `negative=None` and a reason instead.

    Args:
        caption: a free-form caption, e.g. "A dog barks, then a man speaks."
    """
    try:
        parse = _parse(caption)
    except _NotSwappable as why:
        return Negative(caption, None, str(why), ())
    temporal = tuple(event for _, event in sorted(zip(parse.ranks, parse.events)))
    negative = _realise(parse, temporal[::-1])
    if _normalise(negative) == _normalise(caption):
        return Negative(caption, None, "reversing the events leaves the caption unchanged", temporal)
    if caption.strip()[:1].isupper():
        negative = negative[:1].upper() + negative[1:]
    return Negative(caption, negative, None, temporal)


class RuleBackend:
    """Negative-caption backend built on `swap_event_order`: deterministic, no model, no network."""

    name = "rule"

    def __call__(self, captions: list[str]) -> list[Negative]:
        """One `Negative` per caption, in input order.

        Args:
            captions: the captions to rewrite.
        """
        return [swap_event_order(caption) for caption in captions]


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _lower(text: str) -> str:
    """Lowercase without changing the length, so character spans stay valid."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _parse(caption: str) -> _Parse:
    body = caption.strip()
    match = re.search(r"[\s,;:]*[.!?]*\s*$", body)
    suffix, body = re.sub(r"[^.!?]", "", match.group()), body[:match.start()]
    run_on = re.search(r"[a-z]+\s+(?:A|An|The)\s+[a-z]+", body)
    if run_on:
        raise _NotSwappable(f"unsure: a new sentence starts inside the caption ({run_on.group()!r}, no full stop)")
    lower = _lower(body)
    marker = _OPENING_MARKER.match(lower)
    marker_text = body[:marker.end()] if marker else ""
    tokens = [_Token(m.group(), m.start(), m.end())
              for m in re.finditer(r"[a-z0-9]+(?:['’-][a-z0-9]+)*|[,;.]", lower) if m.start() >= len(marker_text)]
    if not tokens:
        raise _NotSwappable("empty caption")
    runs = _connective_runs(tokens, lower)
    first, opening = 0, ""
    if runs and runs[0][0].first == 0 and runs[0][-1].kind in ("before", "after"):
        runs, first = _opening_clause(runs, tokens)
        opening = body[tokens[0].start:tokens[first].start]
    if not runs:
        raise _NotSwappable(_no_sequence_reason(lower))
    spans, kinds = _segments(runs, tokens, first)
    spans, kinds = _split_lists(spans, kinds, tokens, body)
    events = [_sentence_case(body, tokens[a].start, tokens[b].end) for a, b in spans]
    link_texts = [body[tokens[spans[i][1]].end:tokens[spans[i + 1][0]].start] for i in range(len(kinds))]
    _check_events(events, kinds)
    return _Parse(marker_text, opening, events, kinds, link_texts, _temporal_ranks(kinds), suffix)


def _match_unit(tokens: list[_Token], i: int, lower: str) -> _Unit | None:
    """The longest connective unit starting at token i, if any."""
    best = None
    for kind, pattern in _UNIT_PATTERNS:
        match = pattern.match(lower, tokens[i].start)
        if match and (best is None or match.end() > best[1]):
            best = (kind, match.end())
    if best is None:
        return None
    last = max(j for j in range(i, len(tokens)) if tokens[j].end <= best[1])
    return _Unit(i, last, best[0], lower[tokens[i].start:tokens[last].end])


def _connective_runs(tokens: list[_Token], lower: str) -> list[list[_Unit]]:
    """Maximal runs of adjacent connective units that hold at least one ordering word.

    A run of adverbs alone at the very start or end ("a dog barks after a while") is clause text.
    """
    runs, current, i = [], [], 0
    while i < len(tokens):
        unit = _match_unit(tokens, i, lower)
        if unit is None or unit.kind == "block":
            runs.append(current)
            current = []
        else:
            current.append(unit)
        i = unit.last + 1 if unit else i + 1
    runs.append(current)
    kept = []
    for run in runs:
        words = [u.kind for u in run if u.kind != "filler"]
        at_edge = run and (run[0].first == 0 or run[-1].last == len(tokens) - 1)
        if words and not (at_edge and set(words) == {"adverb"}):
            kept.append(run)
    return kept


def _run_kind(run: list[_Unit]) -> str:
    """One link kind for a run: "and then later" is "then"; "and shortly after X" is "then" too."""
    kinds = [u.kind for u in run if u.kind != "filler"]
    joined_by_and = any(u.text == "and" for u in run)
    if len(kinds) == 1 and not (kinds[0] == "after" and joined_by_and):
        return kinds[0]
    if set(kinds) <= _LOOSE_FORWARD:
        return "then"
    if set(kinds) <= _LOOSE_FORWARD | {"followed"}:
        return "followed"
    if kinds[-1] == "after" and set(kinds[:-1]) <= _LOOSE_FORWARD:
        return "then"      # "and shortly after a man speaks" = "and shortly afterwards a man speaks"
    raise _NotSwappable(f"unsure: mixed connectives {' '.join(u.text for u in run)!r}")


def _opening_clause(runs: list[list[_Unit]], tokens: list[_Token]) -> tuple[list[list[_Unit]], int]:
    """"After X, Y" / "Before X, Y": the comma closing X becomes the link. Returns runs, X's first token."""
    head = runs[0]
    if any(u.kind != "filler" for u in head[:-1]):
        raise _NotSwappable(f"unsure: mixed connectives {' '.join(u.text for u in head)!r}")
    first = head[-1].last + 1
    comma = next((j for j in range(first, len(tokens)) if tokens[j].text == ","), None)
    if comma is None:
        raise _NotSwappable(f"unsure: no comma closes the opening {head[-1].text!r} clause")
    if len(runs) > 1 and runs[1][0].first <= comma:
        raise _NotSwappable(f"unsure: connective inside the opening {head[-1].text!r} clause")
    return [[_Unit(comma, comma, f"opening_{head[-1].kind}", ",")]] + runs[1:], first


def _segments(runs: list[list[_Unit]], tokens: list[_Token],
              first: int) -> tuple[list[tuple[int, int]], list[str]]:
    """Token spans of the clauses between runs, and each run's link kind."""
    spans, kinds, start = [], [], first
    for run in runs:
        text = " ".join(u.text for u in run)
        if run[0].first <= start:
            raise _NotSwappable(f"empty clause before {text!r}")
        spans.append((start, run[0].first - 1))
        kinds.append(_run_kind(run))
        start = run[-1].last + 1
    if start >= len(tokens):
        raise _NotSwappable(f"connective at the end: {text!r}")
    spans.append((start, len(tokens) - 1))
    return spans, kinds


def _split_lists(spans: list[tuple[int, int]], kinds: list[str], tokens: list[_Token],
                 body: str) -> tuple[list[tuple[int, int]], list[str]]:
    """Cut "A, B" inside a clause of a sequence ("A, B, and then C") into list items.

    A comma only separates events when the pieces on both sides are events of the same make:
    all clauses ("birds chirp, a dog barks, then ...") or, in a caption of bare labels, all
    noun phrases ("siren, crying baby, and then rooster"). Commas before a participle, an
    adverbial or a relative clause stay inside their clause.
    """
    pieces = [_list_pieces(a, b, tokens, body) for a, b in spans]
    all_labels = all(_phrase_kind(body[tokens[a].start:tokens[b].end]) != "clause"
                     for span_pieces in pieces for a, b in span_pieces)
    new_spans, new_kinds = [], []
    for i, span_pieces in enumerate(pieces):
        texts = [body[tokens[a].start:tokens[b].end] for a, b in span_pieces]
        if all_labels or all(_phrase_kind(text) != "np" for text in texts):
            new_spans += span_pieces
            new_kinds += ["list"] * (len(span_pieces) - 1)
        else:
            new_spans.append(spans[i])
        new_kinds += kinds[i:i + 1]
    return new_spans, new_kinds


def _list_pieces(a: int, b: int, tokens: list[_Token], body: str) -> list[tuple[int, int]]:
    """Token spans of the comma-separated items of one clause (one span when it is no list)."""
    pieces, start = [], a
    for p in range(a + 1, b):
        if tokens[p].text not in (",", ";", ".") or not body[tokens[p].end:tokens[p].end + 1].isspace():
            continue
        right = p + 2 if tokens[p + 1].text == "and" else p + 1
        if right > b or p <= start or tokens[p - 1].text in (",", ";", "."):
            continue
        left_words = [t.text for t in tokens[start:p]]
        right_words = [t.text for t in tokens[right:b + 1]]
        if _is_modifier(left_words) or _is_modifier(right_words) or left_words[-1] in _ADJECTIVES:
            continue
        left_is_clause = _phrase_kind(body[tokens[start].start:tokens[p - 1].end]) == "clause"
        if right_words[0].endswith("ing") and left_is_clause:
            continue           # "a man speaks, laughing, ..."
        pieces.append((start, p - 1))
        start = right
    pieces.append((start, b))
    return pieces


def _is_modifier(words: list[str]) -> bool:
    """An adverbial or relative piece ("in the distance", "loudly", "which echoes"), not an event."""
    return words[0] in _PREPOSITIONS or words[0].endswith("ly")


def _sentence_case(body: str, start: int, end: int) -> str:
    """An event's text, its first letter lowercased when only sentence position capitalised it."""
    text = body[start:end]
    word = text.split()[0]
    at_sentence_start = not body[:start].strip() or body[:start].rstrip()[-1] in ".!?"
    if at_sentence_start and word[0].isupper() and (len(word) == 1 or word[1:].islower()):
        return text[0].lower() + text[1:]
    return text


def _words(text: str) -> list[str]:
    return _WORD.findall(_lower(text))


def _check_events(events: list[str], kinds: list[str]) -> None:
    """Refuse clauses that would not survive a move: no new event, a back-reference, a stray "first"."""
    for event in events:
        if _words(event)[-1] == "first":
            raise _NotSwappable(f"unsure: 'first' inside a clause: {event!r}")
    for j, (event, previous, link) in enumerate(zip(events[1:], events, kinds), start=1):
        words = _words(event)
        if link in _LOOSE_FORWARD | {"back"} and _starts_with_verb(words):
            if words[0] in _CONTINUATIONS or "again" in words:
                raise _NotSwappable(f"second clause is not a new event: {event!r}")
            raise _NotSwappable(f"second clause has no subject of its own: {event!r}")
        reference = _back_reference(words, {w for earlier in events[:j] for w in _words(earlier)})
        if reference:
            raise _NotSwappable(f"{reference!r} refers to an earlier clause: {event!r}")
        if link in ("before", "after") and words[0].endswith("ing") and _phrase_kind(previous) == "clause":
            raise _NotSwappable(f"second clause has no subject of its own: {event!r}")
        if words[0].endswith("ing") and _ends_phrase(words[1:]) and _has_participle(previous):
            raise _NotSwappable(f"the subject of {previous!r} carries over to {event!r} (shared subject)")


def _back_reference(words: list[str], earlier: set[str]) -> str | None:
    """A phrase that only makes sense after an earlier clause: "he", "answers it", "again", "another",
    "the dog"."""
    if words[0] in _PRONOUNS:
        return words[0]
    for i, word in enumerate(words):
        if i and (word in _OBJECT_PRONOUNS or (word == "her" and _ends_phrase(words[i + 1:]))):
            return word
        if word == "again" and words[i - 1:i] != ["and"] and words[i + 1:i + 3] != ["and", "again"]:
            return word
        if word in ("another", "same"):
            return " ".join(words[i - 1:i + 2] if word == "same" else words[i:i + 2])
        if word == "the" and i + 1 < len(words) and words[i + 1] in earlier - _DETERMINERS:
            return f"the {words[i + 1]}"
    return None


def _has_participle(phrase: str) -> bool:
    """A noun phrase whose subject does something in -ing form: "a vehicle engine revving"."""
    words = _words(phrase)
    if _phrase_kind(phrase) != "np" or words[0].endswith("ing"):  # "drinking sipping": gerunds, no subject
        return False
    return any(w.endswith("ing") and w not in _ING_NOUNS for w in words[1:])


def _ends_phrase(rest: list[str]) -> bool:
    """Whether a word followed by `rest` closes its noun phrase (no noun of its own follows)."""
    return not rest or rest[0] in _PREPOSITIONS | set("again up down back away off out loudly softly".split())


def _starts_with_verb(words: list[str]) -> bool:
    first = words[0]
    return (first in _CONTINUATIONS or first in _VERBS or first in _NOUN_LIKE_VERBS
            or (first in _BASE_VERBS and "again" in words))


def _is_plural(word: str) -> bool:
    return word.endswith("s") and not word.endswith(("ss", "us", "is", "'s", "’s"))


def _phrase_kind(text: str) -> str:
    """"clause" (has a finite verb), "np" (a noun phrase) or "either" (can't tell: "water drops").

    Noun-phrase slots ("followed by X") refuse clauses; the guess leans towards "clause", since
    a wrong "np" would let "a bang followed by a man speaks" through.
    """
    words = _words(text)
    if words[0] in _SUBJECT_PRONOUNS and len(words) > 1:
        return "clause"
    kind = "np"
    for i in range(1, len(words)):
        word, previous = words[i], words[i - 1]
        if word in _AUXILIARIES:
            return "clause"
        if (previous in _DETERMINERS | _ADJECTIVES | _PREPOSITIONS | {"of", "and", "or"}
                or previous.endswith(("ing", "ed", "'s", "’s", "ly"))):
            continue
        if word in _VERBS or (word in _BASE_VERBS and (previous in _PLURAL_NOUNS or _is_plural(previous))):
            return "clause"
        if _is_plural(word):
            kind = "clause" if words[0] in ("a", "an") and i >= 2 else "either"
    return kind


def _temporal_ranks(kinds: list[str]) -> list[int]:
    """Temporal position of each written event: tight links group first, loose links order groups."""
    groups, group_directions, loose_directions = [[0]], [set()], set()
    for i, kind in enumerate(kinds, start=1):
        link = _LINK_KINDS[kind]
        if link.tight:
            groups[-1].append(i)
            group_directions[-1].add(link.direction)
        else:
            groups.append([i])
            group_directions.append(set())
            loose_directions.add(link.direction)
    if len(loose_directions) > 1 or any(len(d) > 1 for d in group_directions):
        raise _NotSwappable("unsure: the connectives point both ways")
    groups = [group[::-1] if directions == {-1} else group for group, directions in zip(groups, group_directions)]
    if loose_directions == {-1}:
        groups = groups[::-1]
    order = [event for group in groups for event in group]
    ranks = [0] * len(order)
    for rank, event in enumerate(order):
        ranks[event] = rank
    return ranks


def _fits(constraint: str, new: str, old: str) -> bool:
    if constraint == "np":
        return _phrase_kind(new) != "clause"
    if constraint == "same":
        kinds = {_phrase_kind(new), _phrase_kind(old)}
        return len(kinds) == 1 or "either" in kinds
    return True


def _slots_fit(events: list[str], old_events: list[str], constraints: list[list[str]]) -> bool:
    return all(_fits(c, new, old) for new, old, cs in zip(events, old_events, constraints) for c in cs)


def _realise(parse: _Parse, order: tuple[str, ...]) -> str:
    """Write the events in `order` (temporal) into the caption's own skeleton, or with ", then".

    When an event does not fit its new slot, the events that moved between clause and noun-phrase
    slots change verb form first; ", then" is the last resort.
    """
    slots = [order[rank] for rank in parse.ranks]
    constraints = [[] for _ in slots]
    for i, kind in enumerate(parse.links):
        constraints[i].append(_LINK_KINDS[kind].left)
        constraints[i + 1].append(_LINK_KINDS[kind].right)
    if not _slots_fit(slots, parse.events, constraints):
        slots = _reworded(slots, parse.events, constraints)
    if slots is None or not _slots_fit(slots, parse.events, constraints):
        return parse.marker + ", then ".join(order) + parse.suffix
    text = parse.marker + parse.opening + slots[0]
    for link_text, event in zip(parse.link_texts, slots[1:]):
        text += link_text + (event[0].upper() + event[1:] if link_text.rstrip()[-1:] in (".", "!", "?")
                             else event)
    return text + parse.suffix


def _reworded(slots: list[str], old_events: list[str], constraints: list[list[str]]) -> list[str] | None:
    """The events in verb forms that suit their new slots, or None when one can't be re-formed.

    A clause moved into a noun-phrase slot becomes a participle phrase, and a noun phrase moved
    into a slot that held a clause becomes a clause, so "A woman speaks followed by a baby crying"
    swaps to "A baby cries followed by a woman speaking" with its connective kept. A noun phrase
    without a verb ("a loud bang") can't become a clause: None.
    """
    events = []
    for new, old, cs in zip(slots, old_events, constraints):
        if "np" in cs and _phrase_kind(new) == "clause":
            new = _reword(new, to_participle=True)
        elif "np" not in cs and _phrase_kind(old) == "clause" and _phrase_kind(new) != "clause":
            new = _reword(new, to_participle=False)
        if new is None:
            return None
        events.append(new)
    return events


def _reword(event: str, to_participle: bool) -> str | None:
    """The event with its verb in the other form: "a baby cries" <-> "a baby crying".

    None unless the event is a plain "<subject> <verb> [rest]" and the other form is known for
    sure: a wrongly spelled verb would teach the model bad English.
    """
    found = _find_verb(event, participle=not to_participle)
    if found is None:
        return None
    start, end, plural = found
    word = _lower(event[start:end])
    if to_participle:                  # "birds chirp" -> "birds chirping", "a dog barks" -> "a dog barking"
        new = _participle(word) if plural else participle_of(word).word
    else:                              # "birds chirping" -> "birds chirp", "a dog barking" -> "a dog barks"
        new = _base_of_participle(word) if plural else finite_of(word).word
    if new is None:
        return None
    return event[:start] + new + event[end:]


# What may follow the verb of a re-formed phrase: "crying loudly", "revving up", "giving a speech".
# A bare noun right after it could make the "verb" part of a compound ("car parking noise").
_AFTER_VERB = (_DETERMINERS | _PREPOSITIONS
               | set("about for of up down away off out back past overhead twice once very".split()))
# A second clause after the verb: re-forming one verb would leave the other in the old form.
_SECOND_CLAUSE = (set("and or but then that which who while whilst as when where until".split())
                  | _AUXILIARIES | _VERBS | _NOUN_LIKE_VERBS)


def _find_verb(event: str, participle: bool) -> tuple[int, int, bool] | None:
    """Character span of the verb of a plain "<subject> <verb> [rest]" event, and whether the subject is plural.

    The verb is the first word after a plain subject ("a baby", "a car horn", "church bells") in
    the wanted form: an -ing word, a known 3rd-person singular form, or after a plural subject a
    known base form ("birds chirp"). None for any other shape: no subject ("a crying baby"), a
    subject with a preposition, pronoun or comma ("the sound of rain falling", "he speaks"), or a
    rest that starts with a bare noun or holds a second clause ("a man speaks and laughs").
    """
    lower = _lower(event)
    matches = list(_WORD.finditer(lower))
    words = [m.group() for m in matches]
    for k in range(1, len(words)):
        subject, word, rest = words[:k], words[k], words[k + 1:]
        plural = subject[-1] in _PLURAL_NOUNS or _is_plural(subject[-1])
        if participle:
            has_form = word.endswith("ing")
        elif plural:
            has_form = word in KNOWN_VERBS or word in _BASE_VERBS
        else:
            has_form = word in _BASE_BY_FINITE or word in _VERBS or word in _NOUN_LIKE_VERBS
        if not (has_form and _is_subject(subject)) or re.search(r"[^\w\s'’-]", lower[:matches[k].start()]):
            continue
        plain_rest = not rest or ((rest[0] in _AFTER_VERB or rest[0].endswith("ly"))
                                  and not any(w in _SECOND_CLAUSE for w in rest))
        return (matches[k].start(), matches[k].end(), plural) if plain_rest else None
    return None


def _is_subject(words: list[str]) -> bool:
    """A plain noun phrase that can be a clause's subject: "a baby", "water", not "a loud" or "he"."""
    return (words[0] not in _PRONOUNS | {"i", "we", "you"}
            and not any(w in _PREPOSITIONS or w in _AUXILIARIES or w in ("of", "and", "or") for w in words)
            and words[-1] not in _DETERMINERS | _ADJECTIVES
            and not words[-1].endswith(("'s", "’s", "ly")))


def _no_sequence_reason(lower: str) -> str:
    """Why a caption without an ordering connective is no sequence: simultaneity, plain "and", one event."""
    match = _SIMULTANEITY.search(_NOT_SIMULTANEITY.sub(lambda m: " " * len(m.group()), lower))
    if match:
        return f"simultaneous: {match.group(1)!r}"
    return "no ordering connective" if re.search(r"\band\b|[,;.]", lower) else "single event"


# ---------------------------------------------------------------------------------------------
# Verb forms: 3rd-person singular present ("cries") <-> "-ing" participle ("crying").
#
# From a base form both are spelled by rule, except where the rule hinges on stress ("opening" but
# "beginning"). Going back from an -ing form the letters often cannot tell: "giving" is give + ing
# but "singing" is sing + ing, and "running" doubled its "n" while "purring" and "yelling" did not.
# The generic rules answer only where the spelling decides; anything else must be in KNOWN_VERBS,
# or the converter refuses rather than guess.
# ---------------------------------------------------------------------------------------------

# (3rd-person singular, participle) that the spelling rules would get wrong.
_SPELLING_EXCEPTIONS = {"begin": ("begins", "beginning"), "die": ("dies", "dying"), "lie": ("lies", "lying"),
                        "tie": ("ties", "tying")}
# Common sound verbs; their forms are trusted whatever the spelling rules could tell alone.
KNOWN_VERBS = frozenset(_SPELLING_EXCEPTIONS) | frozenset("""
    accelerate ache add applaud approach babble bang bark beep blare blast bleat blow boom breathe bubble
    burp buzz cackle call caw chatter cheer chime chirp chop chug clang clank clap clatter click clink close
    cluck come coo cough crackle crash creak croak crow crunch cry ding drill drip drive drone drum echo
    fall fizz flap flow flush flutter fly gallop gasp giggle give go groan growl grunt gurgle gush hammer
    hiss honk hoot howl hum idle jingle knock laugh meow moan moo move mumble murmur neigh oink open pant
    pass patter ping play pop pour purr quack rattle rev ring roar roll rumble run rustle scrape scratch
    scream screech shout shriek shut sigh sing sizzle slam snap sneeze sniff snore snort sob sound speak
    splash spray sputter squawk squeak squeal start stomp stop strum swing talk tap thud thump thunder
    tick tinkle toot trickle tweet type vibrate wail walk whimper whine whir whisper whistle whoosh yap
    yell yelp zoom""".split())

# Ends of -ing stems that show no "e" was dropped and no consonant doubled: see(ing), play(ing),
# fix(ing), talk(ing), crash(ing), screech(ing), howl(ing), hiss(ing), buzz(ing), ...
_PLAIN_STEM = re.compile(r"(?:[aeioy]|[wx]|ck|sh|[tnrl]ch|gh|rk|lk|nk|sk|rp|mp|sp|lp|ft|lt|nt|pt|ct|xt|"
                         r"rd|ld|nd|rn|rm|lm|wl|rl|wn|rt|mb|ss|ff|zz)$")


@dataclass(frozen=True)
class VerbForm:
    """A converted verb form, or why the converter would not guess one."""

    word: str | None
    reason: str | None


def participle_of(finite: str) -> VerbForm:
    """The -ing form of a 3rd-person singular verb ("cries" -> "crying", "runs" -> "running").

    Used to turn a clause into a participle phrase for a "followed by" slot; `word` is None (with
    a reason) when the spelling could be wrong.

    Args:
        finite: one lowercase word, e.g. "gives".
    """
    base = _base_of_finite(finite)
    if base is None:
        return VerbForm(None, f"not a 3rd-person singular verb I can undo: {finite!r}")
    participle = _participle(base)
    if participle is None:
        return VerbForm(None, f"unsure how {base!r} spells its -ing form")
    return VerbForm(participle, None)


def finite_of(participle: str) -> VerbForm:
    """The 3rd-person singular form behind an -ing form ("crying" -> "cries", "giving" -> "gives").

    Used to turn a participle phrase back into a clause; `word` is None (with a reason) when the
    verb is not in KNOWN_VERBS and the spelling is ambiguous ("shaving": shav or shave?).

    Args:
        participle: one lowercase word, e.g. "buzzing".
    """
    base = _base_of_participle(participle)
    if base is None:
        return VerbForm(None, f"unsure which verb {participle!r} comes from")
    return VerbForm(_finite(base), None)


def _finite(base: str) -> str | None:
    """3rd-person singular by the spelling rules; None for "-z" after a vowel (quizzes or quizes?)."""
    if base in _SPELLING_EXCEPTIONS:
        return _SPELLING_EXCEPTIONS[base][0]
    if re.search(r"[aeiou]z$", base):
        return None
    if re.search(r"[^aeiou]y$", base):
        return base[:-1] + "ies"                            # cries
    if base.endswith(("s", "x", "z", "ch", "sh")) or re.search(r"[^o]o$", base):
        return base + "es"                                  # buzzes, washes, goes
    return base + "s"


def _participle(base: str) -> str | None:
    """The -ing form by the spelling rules; None where they can't tell ("-ie", "-c", stress)."""
    if base in _SPELLING_EXCEPTIONS:
        return _SPELLING_EXCEPTIONS[base][1]
    if base.endswith(("ie", "c")) or re.search(r"[aeiou]z$", base):
        return None                                         # vying, panicking, quizzing
    if base.endswith(("ee", "oe", "ye")):
        return base + "ing"                                 # seeing
    if base.endswith("e"):
        return base[:-1] + "ing"                            # giving
    if re.search(r"(?:^|[^aeiou]|qu)[aeiou][^aeiouwxy]$", base):
        if len(re.findall(r"[aeiouy]+", base)) == 1:
            return base + base[-1] + "ing"                  # running
        if base not in KNOWN_VERBS:
            return None                                     # opening or beginning: stress decides
    return base + "ing"                                     # talking, whimpering


def _base_of_finite(word: str) -> str | None:
    """The base form behind a 3rd-person singular form, or None when the spelling can't tell."""
    if word in _BASE_BY_FINITE:
        return _BASE_BY_FINITE[word]
    if not word.endswith("s") or re.search(r"^[^aeiou]ies$|oes$|[aeiou]ses$", word):
        return None                                         # ties or tys? goes or hoes? rises or buses?
    if word.endswith("ies"):
        base = word[:-3] + "y"
    elif re.search(r"(?:ss|sh|ch|x|zz)es$", word):
        base = word[:-2]
    else:
        base = word[:-1]
    return base if _finite(base) == word else None


def _base_of_participle(word: str) -> str | None:
    """The base form behind an -ing form, or None when the spelling can't tell."""
    if word in _BASE_BY_PARTICIPLE:
        return _BASE_BY_PARTICIPLE[word]
    stem = word[:-3]
    if not word.endswith("ing") or not re.search(r"[aeiouy]", stem) or re.fullmatch(r"[^aeiou]y", stem):
        return None                                         # "string"; "tying" could be tie
    if re.search(r"([bdgmnptv])\1$", stem):
        base = stem[:-1]                                    # running
    elif re.search(r"[^aeiourwl]l$", stem):
        base = stem + "e"                                   # rumbling, whistling
    elif _PLAIN_STEM.search(stem):
        base = stem                                         # talking, buzzing
    else:
        return None                                         # giving or singing? yelling or travelling?
    return base if _participle(base) == word else None


_BASE_BY_FINITE = {_finite(base): base for base in KNOWN_VERBS}
_BASE_BY_PARTICIPLE = {_participle(base): base for base in KNOWN_VERBS}
