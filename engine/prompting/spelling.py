"""Typos read by edit distance against the refiner's own vocabulary ("lipps" -> "lips",
"eyebrwos" -> "eyebrows"): no list of typos, just the words the tables know.

A word is corrected only when it is unknown, not a real word (an English word list: "clown" is not a
typo of "crown"), at least 4 letters long, keeps its first letter (or swaps its first two), and
exactly one known word is nearest, within 1 edit (words up to 5 letters) or 2 edits (longer words);
of several nearest words, the single one at least as long as the typo wins (a left-out letter is the
commonest typo: "darkr" -> "darker", not "dark"). Edits are insertions, deletions, substitutions and
swaps of neighbours (optimal string alignment distance).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from functools import lru_cache

MIN_LENGTH = 4
"""Shorter words are never corrected (too many near neighbours)."""


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Optimal string alignment distance of a and b; any value above `limit` is returned as limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return min(prev[-1], limit + 1)


@lru_cache(maxsize=1)
def english_words() -> Container[str]:
    """An English word list (pyspellchecker's, ~160k words; loaded once, ~0.6 s): a word in it is a word,
    not a typo, even when it is one edit from a known word ("clown" is not "crown")."""
    from spellchecker import SpellChecker

    return SpellChecker().word_frequency.dictionary


def allowed_edits(word: str) -> int:
    """How many edits a typo of this length may hold."""
    return 1 if len(word) <= 5 else 2


class Speller:
    """Corrects unknown words to the single nearest word of a vocabulary; real words are never typos."""

    def __init__(self, vocabulary: Iterable[str], real_words: Container[str] = frozenset()) -> None:
        self.vocabulary = frozenset(w for w in vocabulary if w.isalpha())
        self.real_words = real_words  # words of the language that are left as they are
        self._by_start: dict[str, list[str]] = {}
        for w in self.vocabulary:
            if len(w) >= MIN_LENGTH - 1:
                self._by_start.setdefault(w[0], []).append(w)

    def correct(self, word: str) -> str | None:
        """The known word this one is a typo of, or None (known, real, too short, no or several nearest)."""
        if len(word) < MIN_LENGTH or not word.isalpha() or word in self.vocabulary or word in self.real_words:
            return None
        limit = allowed_edits(word)
        starts = {word[0], word[1]}  # the first letter kept, or the first two swapped
        best: list[str] = []
        best_d = limit + 1
        for start in starts:
            for cand in self._by_start.get(start, ()):
                if cand[0] != word[0] and cand[:2] != word[1::-1]:
                    continue
                cand_limit = min(limit, allowed_edits(cand))
                d = edit_distance(word, cand, cand_limit)
                if d > cand_limit:
                    continue
                if d < best_d:
                    best, best_d = [cand], d
                elif d == best_d:
                    best.append(cand)
        if len(best) > 1:  # a letter left out is the commonest typo: prefer words at least as long
            best = [c for c in best if len(c) >= len(word)]
        return best[0] if best_d <= limit and len(best) == 1 else None
