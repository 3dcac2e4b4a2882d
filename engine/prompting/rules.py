"""The offline rules refiner (default backend): deterministic prompt -> EditPlan.

Reading order: normalise, correct typos of known words by edit distance (spelling.py), read unknown
words by meaning through an optional `WordMatcher` (embed_match.py), read the clauses (clauses.py),
refuse what cannot be read confidently (unclear.py: UnclearPrompt with suggestions), combine the
clauses into one plan (compose.py), and check it against the avatar when a context is given
(context.py: NothingToEdit for what the avatar lacks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from engine.prompting.clauses import read_prompt
from engine.prompting.compose import plan_data
from engine.prompting.context import AvatarContext, check_plan
from engine.prompting.lexicon import correct_spelling, unknown_words
from engine.prompting.plan import EditPlan, PlanError, sanitize_plan
from engine.prompting.unclear import Readable, check_consistent, check_readable, reads

__all__ = ["RulesConfig", "RulesRefiner", "WordMatcher", "unknown_words"]


class WordMatcher(Protocol):
    """Reads an unknown word by meaning: returns (known word or phrase, similarity) or None."""

    def match(self, word: str) -> tuple[str, float] | None: ...


@dataclass(frozen=True)
class RulesConfig:
    """Settings of the rules refiner."""

    use_embeddings: bool | None = None  # None: read unknown words by meaning when a model is installed
    embed_threshold: float = 0.6  # lowest cosine similarity accepted for a meaning match


def _anything(_: str) -> bool:
    return True


class RulesRefiner:
    """Deterministic prompt -> plan from word tables (+ optional meaning matches)."""

    name = "rules"

    def __init__(self, config: RulesConfig | None = None, matcher: WordMatcher | None = None) -> None:
        self.config = config or RulesConfig()
        self._matcher = matcher
        self._matcher_tried = matcher is not None

    def _get_matcher(self, notes: list[str]) -> WordMatcher | None:
        if self._matcher_tried or self.config.use_embeddings is False:
            return self._matcher
        self._matcher_tried = True
        from engine.prompting.embed_match import EmbeddingMatcher, embedding_model_path

        path = embedding_model_path()
        if path is None:
            if self.config.use_embeddings:
                notes.append("no sentence-embedding model installed; unknown words are ignored")
            return None
        self._matcher = EmbeddingMatcher(path, threshold=self.config.embed_threshold)
        return self._matcher

    def _read_words(self, prompt: str, notes: list[str]) -> str:
        """The prompt normalised, typos corrected, unknown words read by meaning where a matcher is set."""
        text = correct_spelling(prompt, notes)
        unknown = unknown_words(text)
        matcher = self._get_matcher(notes) if unknown else None
        for word in unknown if matcher is not None else []:
            found = matcher.match(word)
            if found is not None:
                text = re.sub(rf"\b{re.escape(word)}\b", found[0], text)
                notes.append(f"read {word!r} as {found[0]!r} (meaning match {found[1]:.2f})")
        return text

    def refine(self, prompt: str, context: AvatarContext | None = None) -> tuple[EditPlan, list[str]]:
        """A plan and notes (spelling, meaning matches, ignored clauses, clamping).

        PlanError for an empty prompt; UnclearPrompt (with suggestions) for one it cannot read
        confidently; NothingToEdit when the context shows the avatar lacks what is to be changed.
        """
        return self._refine(prompt, context, reads(lambda text: self._refine(text, None, _anything)))

    def _refine(self, prompt: str, context: AvatarContext | None, readable: Readable) -> tuple[EditPlan, list[str]]:
        if not prompt or not prompt.strip():
            raise PlanError("the prompt is empty")
        notes: list[str] = []
        text = self._read_words(prompt, notes)
        readings = read_prompt(text)
        check_readable(prompt, text, readings, readable)
        appearance = [r for r in readings if r.is_appearance and not r.negated]
        check_consistent(readings, appearance, readable, prompt)
        plan, clamp_notes = sanitize_plan(plan_data(prompt, readings, notes, context), prompt=prompt)
        return plan, notes + check_plan(plan, context) + clamp_notes
