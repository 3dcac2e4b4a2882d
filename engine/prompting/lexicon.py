"""The words the rules refiner knows, and reading a prompt's words against them: unknown words, typos
corrected by edit distance (spelling.py), and how much of a prompt is known."""

from __future__ import annotations

import re
from functools import lru_cache

from engine.prompting.clauses import normalise, words_of
from engine.prompting.colours import MODIFIERS, NAMED_COLOURS
from engine.prompting.expressions import EXPR_INDEX_PATTERN, EXPRESSION_WORDS
from engine.prompting.spelling import Speller, english_words
from engine.prompting.vocab import (
    ACCESSORIES, COLOUR_KIND_WORDS, COLOUR_VERBS, COMPONENT_WORDS, DESCRIPTIVE_WORDS, INTENSITY_WORDS, LIGHTNESS_WORDS,
    SHAPE_WORDS, SIZE_ADJECTIVES, STOPWORDS, TEXTURE_ALIASES, TEXTURE_WORDS, WHOLE_HEAD_WORDS,
)

_CUE_WORDS = ("remove", "removed", "removing", "delete", "erase", "rid", "take", "off", "away", "strip", "shave",
              "shaved", "wipe", "lose", "ditch", "more", "longer", "without", "no", "stop", "stopped", "not", "never",
              "anymore", "free", "quit", "less", "whites", "sclera", "clean", "shaven")


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """Every single word the rules tables know (phrases split into words), stop words excluded."""
    tables = [COMPONENT_WORDS, ACCESSORIES, TEXTURE_WORDS, SHAPE_WORDS, COLOUR_KIND_WORDS, NAMED_COLOURS,
              INTENSITY_WORDS, MODIFIERS, WHOLE_HEAD_WORDS, COLOUR_VERBS, LIGHTNESS_WORDS, SIZE_ADJECTIVES,
              TEXTURE_ALIASES, DESCRIPTIVE_WORDS]
    words = {w for t in tables for phrase in t for w in phrase.split()}
    return frozenset(words | EXPRESSION_WORDS | set(_CUE_WORDS))


@lru_cache(maxsize=1)
def speller() -> Speller:
    """A speller over the known words and the stop words that leaves English words alone."""
    return Speller(known_words() | STOPWORDS, english_words())


def _is_expression_word(word: str) -> bool:
    from engine.prompting.expressions import EXPRESSION_PATTERNS

    return any(re.search(p.pattern, word) for p in EXPRESSION_PATTERNS) or EXPR_INDEX_PATTERN.match(word) is not None


def _content(word: str) -> bool:
    return len(word) >= 3 and word.isalpha() and word not in STOPWORDS


def unknown_words(text: str) -> list[str]:
    """Content words of a prompt that no table, expression pattern or stop list knows (first occurrence order)."""
    known = known_words()
    out: list[str] = []
    for word in words_of(normalise(text)):
        if _content(word) and word not in known and word not in out and not _is_expression_word(word):
            out.append(word)
    return out


def known_content_count(text: str) -> int:
    """How many words of a prompt the tables know (stop words left out; hex colours and expr_<i> count)."""
    words = words_of(normalise(text))
    known = known_words()
    count = sum(1 for w in words if (_content(w) and (w in known or _is_expression_word(w))))
    return count + sum(1 for w in words if w.startswith("#") or w.startswith("expr_"))


def correct_spelling(text: str, notes: list[str]) -> str:
    """The normalised text with typos of known words corrected (one note per correction)."""
    text = normalise(text)
    for word in dict.fromkeys(words_of(text)):
        if not _content(word) or word in known_words() or _is_expression_word(word):
            continue
        fixed = speller().correct(word)
        if fixed is not None:
            text = re.sub(rf"\b{re.escape(word)}\b", fixed, text)
            notes.append(f"read {word!r} as {fixed!r} (spelling)")
    return text
