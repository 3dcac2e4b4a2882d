"""The offline rules refiner (default backend): deterministic prompt -> EditPlan.

Words it does not know can be read by meaning through an optional `WordMatcher` (see
embed_match.py): each unknown word is replaced by the closest known word before reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from engine.head.components import expand
from engine.prompting.clauses import ClauseReading, normalise, read_prompt, words_of
from engine.prompting.colours import MODIFIERS, rgb_to_hex
from engine.prompting.plan import EditKind, EditPlan, PlanError, sanitize_plan
from engine.prompting.vocab import (
    ACCESSORIES, COLOUR_KIND_WORDS, COMPONENT_WORDS, EXPRESSION_PATTERNS, INTENSITY_WORDS, NAMED_COLOURS,
    SHAPE_WORDS, STOPWORDS, TEXTURE_WORDS, WHOLE_HEAD_WORDS,
)

KIND_ORDER: tuple[EditKind, ...] = (
    EditKind.ACCESSORY, EditKind.TEXTURE, EditKind.SHAPE, EditKind.COLOUR, EditKind.EXPRESSION,
)
"""Order of kinds in a plan: the primary (first) kind is the most specific appearance edit."""

# Per kind: (guidance at intensity 0, at 1), image guidance (0, 1), steps, keyframes, iterations.
KIND_VALUES: dict[EditKind, dict[str, Any]] = {
    EditKind.COLOUR: {"g": (6.5, 9.5), "ig": (1.8, 1.2), "steps": 20, "keyframes": 8, "iterations": 1000},
    EditKind.TEXTURE: {"g": (7.0, 11.0), "ig": (1.6, 1.1), "steps": 30, "keyframes": 10, "iterations": 1500},
    EditKind.ACCESSORY: {"g": (8.0, 12.0), "ig": (1.4, 1.0), "steps": 30, "keyframes": 12, "iterations": 2000},
    EditKind.SHAPE: {"g": (7.5, 11.0), "ig": (1.5, 1.0), "steps": 30, "keyframes": 12, "iterations": 2000},
}

BASE_NEGATIVE = "blurry, distorted face, deformed, changed identity, artifacts, low quality"


class WordMatcher(Protocol):
    """Reads an unknown word by meaning: returns (known word or phrase, similarity) or None."""

    def match(self, word: str) -> tuple[str, float] | None: ...


def known_words() -> frozenset[str]:
    """Every single word the rules tables know (phrases split into words)."""
    tables = [COMPONENT_WORDS, ACCESSORIES, TEXTURE_WORDS, SHAPE_WORDS, COLOUR_KIND_WORDS, NAMED_COLOURS,
              INTENSITY_WORDS, MODIFIERS, WHOLE_HEAD_WORDS]
    return frozenset(w for t in tables for phrase in t for w in phrase.split())


def unknown_words(prompt: str) -> list[str]:
    """Content words of a prompt that no table, expression pattern or stop list knows."""
    known = known_words()
    out: list[str] = []
    for word in words_of(normalise(prompt)):
        if (len(word) < 3 or not word.isalpha() or word in known or word in STOPWORDS or word in out
                or any(re.search(p, word) for p, _ in EXPRESSION_PATTERNS)):
            continue
        out.append(word)
    return out


@dataclass(frozen=True)
class RulesConfig:
    """Settings of the rules refiner."""

    use_embeddings: bool | None = None  # None: read unknown words by meaning when a model is installed
    embed_threshold: float = 0.6  # lowest cosine similarity accepted for a meaning match


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

    def _substitute(self, prompt: str, notes: list[str]) -> str:
        unknown = unknown_words(prompt)
        if not unknown:
            return prompt
        matcher = self._get_matcher(notes)
        if matcher is None:
            return prompt
        text = normalise(prompt)
        for word in unknown:
            found = matcher.match(word)
            if found is not None:
                text = re.sub(rf"\b{re.escape(word)}\b", found[0], text)
                notes.append(f"read {word!r} as {found[0]!r} (meaning match {found[1]:.2f})")
        return text

    def refine(self, prompt: str) -> tuple[EditPlan, list[str]]:
        """A plan and notes (meaning matches, defaults taken, clamping). PlanError if nothing is asked."""
        if not prompt or not prompt.strip():
            raise PlanError("the prompt is empty")
        notes: list[str] = []
        readings = read_prompt(self._substitute(prompt, notes))
        data = plan_data(prompt, readings, notes)
        plan, clamp_notes = sanitize_plan(data, prompt=prompt)
        return plan, notes + clamp_notes


def _kinds(appearance: list[ClauseReading], expression: dict[str, float]) -> list[EditKind]:
    present = set()
    for r in appearance:
        if r.accessory:
            present.add(EditKind.ACCESSORY)
        if r.texture or (r.whole_head and not r.colour_kind):
            present.add(EditKind.TEXTURE)
        if r.shape:
            present.add(EditKind.SHAPE)
        if r.colour_kind:
            present.add(EditKind.COLOUR)
    if expression:
        present.add(EditKind.EXPRESSION)
    return [k for k in KIND_ORDER if k in present]


def _diffusion_values(kinds: list[EditKind], intensity: float) -> dict[str, Any]:
    """Guidance, steps, strength, keyframes, iterations: the most demanding kind wins."""
    appearance = [KIND_VALUES[k] for k in kinds if k in KIND_VALUES]
    if not appearance:
        return {"keyframes": 0, "iterations": 0, "strength": 0.05 + 0.5 * intensity}
    lerp = lambda pair: round(pair[0] + (pair[1] - pair[0]) * intensity, 2)  # noqa: E731
    return {
        "guidance_scale": max(lerp(v["g"]) for v in appearance),
        "image_guidance_scale": min(lerp(v["ig"]) for v in appearance),
        "steps": max(v["steps"] for v in appearance),
        "strength": round(0.45 + 0.5 * intensity, 2),
        "keyframes": max(v["keyframes"] for v in appearance),
        "iterations": max(v["iterations"] for v in appearance),
    }


def _instruction(r: ClauseReading, targets: str) -> str:
    if r.accessory:
        colour = f"{r.colour_name} " if r.colour_name else ""
        return f"add {colour}{r.accessory}"
    if r.whole_head:
        targets = "whole head"
    parts: list[str] = []
    if r.shape:
        parts.append(f"make the {targets} {' '.join(r.shape)}")
    if r.texture:
        texture = " ".join(r.texture)
        colour = f"{r.colour_name} " if r.colour_name and r.colour_name not in texture else ""
        parts.append(f"give the {targets} a {colour}{texture} look")
    elif r.colour_kind:
        what = f" {r.makeup}" if r.makeup and r.makeup not in ("colour", "color", "dye") else ""
        parts.append(f"apply {r.colour_name or 'a new colour'}{what} to the {targets}" if what
                     else f"make the {targets} {r.colour_name or 'a new colour'}")
    return " and ".join(parts)


def plan_data(prompt: str, readings: list[ClauseReading], notes: list[str]) -> dict[str, Any]:
    """Combine clause readings into loose plan data (validated afterwards by sanitize_plan)."""
    appearance = [r for r in readings if r.is_appearance]
    expression: dict[str, float] = {}
    for r in readings:
        for name, delta in r.expression.items():
            expression[name] = round(expression.get(name, 0.0) + delta, 3)
    if not appearance and not expression:
        raise PlanError(f"no edit found in {prompt!r}: name a component, colour, material, accessory or expression")
    names: list[str] = []
    for r in appearance:
        own = r.components or list(r.accessory_place)
        if not own:
            own = ["skin"]
            notes.append(f"no component named in {r.text!r}; editing the skin")
        names.extend(own + (["accessory"] if r.accessory else []))
    components = expand(names)
    kinds = _kinds(appearance, expression)
    colours = [(r.colour, r.colour_name) for r in appearance if r.colour is not None]
    if len({c for c, _ in colours}) > 1:
        notes.append(f"several colours named; the plan's colour is the first ({colours[0][1]})")
    intensity = max((r.intensity for r in appearance), default=None)
    if intensity is None:
        intensity = max(r.intensity for r in readings if r.expression)
    targets = _target_words(names)
    instructions = [_instruction(r, _target_words(r.components or list(r.accessory_place) or ["skin"]))
                    for r in appearance]
    instructions = [i for i in instructions if i]
    expr_text = ", ".join(f"{k} {v:+.2f}" for k, v in expression.items())
    if instructions:
        refined = "; ".join(instructions) + "; keep the face, identity and lighting unchanged elsewhere, photorealistic"
    else:
        refined = "the same person, " + ", ".join(f"{k.replace('_', ' ')} {v:+.2f}" for k, v in expression.items())
    negative = BASE_NEGATIVE
    if EditKind.COLOUR in kinds:
        negative += f", colour bleeding outside the {targets}"
    if EditKind.ACCESSORY in kinds:
        negative += ", floating or duplicated objects"
    values = _diffusion_values(kinds, intensity)
    rationale = (f"{'/'.join(k.value for k in kinds)} edit on {', '.join(components) or 'no components'}; "
                 f"intensity {intensity:.2f}" + (f"; expression {expr_text}" if expr_text else ""))
    return {
        "refined_prompt": refined, "negative_prompt": negative, "components": list(components),
        "kinds": [k.value for k in kinds], "colour": colours[0][0] if colours else None,
        "colour_name": colours[0][1] if colours else None,
        "accessory": next((r.accessory for r in appearance if r.accessory), None),
        "expression": expression, "intensity": intensity, "rationale": rationale[:300], **values,
    }


def _target_words(names: list[str]) -> str:
    """"hair", "brows" -> "hair and brows" (accessory and repeats left out)."""
    out: list[str] = []
    for n in names:
        if n != "accessory" and n.replace("_", " ") not in out:
            out.append(n.replace("_", " "))
    return " and ".join(out) if len(out) < 3 else ", ".join(out[:-1]) + " and " + out[-1]


def colour_hex(plan: EditPlan) -> str | None:
    """The plan's colour as "#rrggbb" (None without one)."""
    return None if plan.colour is None else rgb_to_hex(plan.colour)
