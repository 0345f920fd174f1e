"""Caption augmentation for training: random word insertion.

The "random insertion" operation of EDA (Wei & Zou, "EDA: Easy Data Augmentation Techniques for
Boosting Performance on Text Classification Tasks", EMNLP 2019), with a made-up word in place of a
synonym: a string of random letters lands in a random gap between words. A text tower trained on a
closed set of caption templates otherwise reads any unfamiliar word as meaningful; with insertions it
learns that a word it does not know carries no order, so "{1} comes after {0}" reads as "{1} after {0}".
It teaches no new words ("preceded by" stays unknown): that needs a pretrained text tower.
"""
from __future__ import annotations

import string

import numpy as np

LETTERS = np.array(list(string.ascii_lowercase))


def insert_random_word(caption: str, rng: np.random.Generator, twin: str | None = None,
                       length: tuple[int, int] = (3, 8)) -> tuple[str, str | None]:
    """`caption` with one word of random lowercase letters inserted at a random word gap, and its twin.

    The twin (the order-swapped caption) gets the same word before the same word of it (its k-th
    occurrence if the caption's is its k-th; punctuation ignored, so "dog," matches "dog"), or at its
    end when the caption's gap is the end, so the made-up word stays with the word it preceded; when the
    twin lacks that word (a rewritten negative: "before" for "after"), at a random gap of its own.

    Args:
        caption: words separated by single spaces.
        rng: source of the gap, the word length (uniform in `length`, inclusive) and the letters.
        twin: the caption's order-swapped twin; None or "" is passed through unchanged.
        length: (shortest, longest) inserted word, in letters.

    Returns:
        (caption, twin) with the word inserted in both.
    """
    words = caption.split(" ")
    gap = int(rng.integers(len(words) + 1))
    word = "".join(rng.choice(LETTERS, int(rng.integers(length[0], length[1] + 1))))
    if not twin:
        return _insert(words, gap, word), twin
    twin_words = twin.split(" ")
    if gap == len(words):
        twin_gap = len(twin_words)
    else:
        bare, twin_bare = [_bare(w) for w in words], [_bare(w) for w in twin_words]
        anchor = bare[gap]
        where = [i for i, w in enumerate(twin_bare) if w == anchor]
        occurrence = bare[:gap].count(anchor)
        twin_gap = where[occurrence] if occurrence < len(where) else int(rng.integers(len(twin_words) + 1))
    return _insert(words, gap, word), _insert(twin_words, twin_gap, word)


def _bare(word: str) -> str:
    return word.strip(string.punctuation)


def _insert(words: list[str], gap: int, word: str) -> str:
    return " ".join(words[:gap] + [word] + words[gap:])
