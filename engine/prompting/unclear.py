"""Honest uncertainty: when the rules refiner cannot read a prompt confidently it says so (UnclearPrompt,
"I can't tell what to change: ...") with 2-4 prompts it can read that come closest to the words given,
instead of guessing a plan.

A prompt is unclear when nothing in it is known; when most of its content words are unknown; when a
clause asks for an appearance edit without saying where ("make it glossy"); when it contradicts
itself ("bigger and smaller", two colours for the hair, smile and don't smile); or when it asks for
several different appearance edits that one plan cannot hold (one colour per plan).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from engine.head.components import expand
from engine.prompting.clauses import ClauseReading, words_of
from engine.prompting.compose import reading_part
from engine.prompting.context import component_words
from engine.prompting.lexicon import known_content_count, unknown_words
from engine.prompting.plan import PlanError, UnclearPrompt
from engine.prompting.vocab import OPPOSITE_SHAPES, STOPWORDS

EXAMPLES: tuple[str, ...] = (
    "make her lips red", "make her hair blonde", "make her eyes green", "give her a big smile",
    "add glasses", "remove her glasses", "make her eyebrows thicker and darker", "close the left eye",
    "make her hair curly", "make her nose smaller", "whiten her teeth", "give her pointy elf ears",
    "make her lips glossy", "make her skin paler", "put a hat on her", "make her look surprised",
    "open her mouth wide", "make her frown", "give him a beard", "add freckles to her face",
    "turn her into a bronze statue", "make the whites of her eyes red", "add earrings",
    "make her neck longer", "raise her eyebrows", "make her look angry",
)
"""Prompts the refiner reads, offered when nothing closer can be built (the suite checks they read)."""

COMPONENT_EXAMPLES: dict[str, tuple[str, ...]] = {
    "hair": ("make the hair blonde", "make the hair curly", "make the hair shorter"),
    "lips": ("make the lips red", "make the lips glossy", "make the lips fuller"),
    "eyes": ("make the eyes green", "make the eyes bigger", "close the eyes"),
    "brows": ("make the eyebrows darker", "make the eyebrows thicker", "raise the eyebrows"),
    "nose": ("make the nose smaller", "make the nose pointier", "add a nose ring"),
    "skin": ("make the skin paler", "add freckles to the face", "give the skin a tan"),
    "ears": ("give her pointy elf ears", "add earrings", "make the ears smaller"),
    "neck": ("add a necklace", "make the neck longer", "make the neck paler"),
    "mouth_interior": ("whiten the teeth", "make the teeth gold", "open the mouth wide"),
    "accessory": ("remove the glasses", "make the glasses red", "add a hat"),
}
"""Readable prompts per component, offered when a prompt names the component but no edit."""

COLOUR_EXAMPLES: dict[str, tuple[str, ...]] = {
    "hair": ("blonde", "black", "red"), "lips": ("red", "pink", "nude"), "eyes": ("brown", "green", "blue"),
    "brows": ("dark brown", "black", "blonde"), "skin": ("tan", "pale pink", "bronze"),
}
"""Colours offered for a colour edit that names none, per component."""

KIND_TARGETS: dict[str, tuple[str, ...]] = {
    "colour": ("hair", "lips", "eyes"), "texture": ("lips", "hair", "skin"), "shape": ("nose", "lips", "ears"),
    "lightness": ("hair", "eyebrows", "skin"),
}
"""Components offered for an edit that names no component, per kind of edit."""

_GROUP_OF = {"left_eye": "eyes", "right_eye": "eyes", "left_brow": "brows", "right_brow": "brows",
             "upper_lip": "lips", "lower_lip": "lips"}

Readable = Callable[[str], bool]


def closest_examples(prompt: str, n: int = 3) -> list[str]:
    """The n EXAMPLES sharing most content words with the prompt (the first n when none shares one)."""
    words = {w for w in words_of(prompt.lower()) if len(w) > 2 and w not in STOPWORDS}
    shared = sorted(EXAMPLES, key=lambda e: -len(words & set(e.split())))
    if not words & set(shared[0].split()):
        return list(EXAMPLES[:n])
    return shared[:n]


def _as_prompt(clause: str) -> str:
    """A clause as a prompt of its own: "her lips red" -> "make her lips red"."""
    first = clause.split(" ", 1)[0]
    return f"make {clause}" if first in ("her", "his", "their", "the", "its", "your") else clause


def _edit_words(r: ClauseReading) -> tuple[str, str] | None:
    """(kind, words) of what a clause asks for, to build "make the <component> <words>"."""
    if r.colour_name:
        return "colour", r.colour_name
    if r.lightness:
        return "lightness", "darker" if r.lightness < 0 else "lighter"
    if r.texture:
        return "texture", " ".join(r.texture)
    if r.shape:
        return "shape", " ".join(r.shape)
    return None


def _keep_readable(candidates: list[str], readable: Readable, fallback: str) -> list[str]:
    out = [c for c in dict.fromkeys(_as_prompt(c) for c in candidates) if readable(c)][:4]
    for extra in closest_examples(fallback, 4):
        if len(out) >= 2:
            break
        if extra not in out:
            out.append(extra)
    return out


def unclear(reason: str, candidates: list[str], readable: Readable, prompt: str) -> UnclearPrompt:
    """An UnclearPrompt with the readable candidates (topped up from EXAMPLES to at least two)."""
    return UnclearPrompt(reason, _keep_readable(candidates, readable, prompt))


def check_readable(prompt: str, text: str, readings: list[ClauseReading], readable: Readable) -> None:
    """Raise UnclearPrompt when the prompt's words cannot be read confidently (see the module doc)."""
    live = [r for r in readings if not r.negated or r.expression]
    appearance = [r for r in live if r.is_appearance]
    unknown = unknown_words(text)
    if len(unknown) >= 2 and len(unknown) > known_content_count(text):
        raise unclear(f"I don't know the words {', '.join(repr(w) for w in unknown)}",
                      closest_examples(text), readable, prompt)
    if not appearance and not any(r.expression for r in live):
        named = [c for r in readings for c in r.components]
        if any(r.negated and r.is_appearance for r in readings):
            reason = "the prompt only says what not to change"
        elif named:
            reason = f"it names the {component_words(list(expand(named)))} but not what to do"
        else:
            reason = f"no part of the face, colour, material, accessory or expression I know in {prompt.strip()!r}"
        candidates = [e for c in expand(named) for e in COMPONENT_EXAMPLES.get(_GROUP_OF.get(c, c), ())]
        raise unclear(reason, candidates or closest_examples(text), readable, prompt)
    for r in appearance:
        if not r.targets:
            found = _edit_words(r)
            kind, words = found if found else ("colour", "red")
            candidates = [f"make the {t} {words}" for t in KIND_TARGETS[kind]]
            raise unclear(f"{r.text!r} does not say which part of the face to change", candidates, readable, prompt)
        if r.colour_kind and r.colour is None and not r.lightness and not r.removal and not r.texture:
            targets = [c for c in expand(r.targets) if c != "accessory"]
            colours = COLOUR_EXAMPLES.get(_GROUP_OF.get(targets[0], targets[0]), ("red", "black", "blue"))
            where = component_words(targets)
            candidates = [f"{c} {r.makeup}" if r.makeup and r.makeup != "dye" else f"make the {where} {c}"
                          for c in colours]
            raise unclear(f"{r.text!r} does not say which colour", candidates, readable, prompt)


def _overlap(a: ClauseReading, b: ClauseReading) -> bool:
    return bool(set(expand(a.targets)) & set(expand(b.targets)))


def _shape_clash(words: list[str]) -> tuple[str, str] | None:
    for more, less in OPPOSITE_SHAPES:
        a, b = next((w for w in words if w in more), None), next((w for w in words if w in less), None)
        if a and b:
            return a, b
    return None


def _without(text: str, word: str) -> str:
    """The clause with one word (and an "and" joining it) taken out."""
    return re.sub(r"\s+", " ", re.sub(rf"\band {word}\b|\b{word} and\b|\b{word}\b", "", text)).strip()


def check_consistent(readings: list[ClauseReading], appearance: list[ClauseReading], readable: Readable,
                     prompt: str) -> None:
    """Raise UnclearPrompt for contradictions and for appearance edits one plan cannot hold together."""
    for r in appearance:
        if len(r.shift_signs) > 1:
            raise unclear("it asks for darker and lighter at once",
                          [_without(r.text, w) for w in ("lighter", "darker")], readable, prompt)
        clash = _shape_clash(r.shape)
        if clash:
            raise unclear(f"{clash[0]!r} and {clash[1]!r} contradict each other",
                          [_without(r.text, clash[1]), _without(r.text, clash[0])], readable, prompt)
    for name in {k for r in readings for k in r.expression}:
        texts = {r.expression[name] > 0: r.text for r in readings if name in r.expression}
        if len(texts) > 1:
            raise unclear(f"it asks for {name.replace('_', ' ')} and for no {name.replace('_', ' ')}",
                          [texts[True], texts[False]], readable, prompt)
    for i, a in enumerate(appearance):
        for b in appearance[i + 1:]:
            _check_pair(a, b, readable, prompt)


def _check_pair(a: ClauseReading, b: ClauseReading, readable: Readable, prompt: str) -> None:
    both = [a.text, b.text]
    if a.colour is not None and b.colour is not None and a.colour != b.colour:
        if _overlap(a, b):
            raise unclear(f"it names two colours ({a.colour_name}, {b.colour_name}) for the same part", both,
                          readable, prompt)
        raise unclear(f"one edit holds one colour, and this prompt names two ({a.colour_name} and "
                      f"{b.colour_name}); do them one at a time", both, readable, prompt)
    if a.lightness and b.lightness and (a.lightness > 0) != (b.lightness > 0) and _overlap(a, b):
        raise unclear("it asks for darker and lighter at once", both, readable, prompt)
    clash = _shape_clash(a.shape + b.shape)
    if clash and _overlap(a, b):
        raise unclear(f"{clash[0]!r} and {clash[1]!r} contradict each other", both, readable, prompt)
    if a.accessory and a.accessory == b.accessory and a.action != b.action:
        raise unclear(f"it both adds and removes the {a.accessory}", both, readable, prompt)
    if a.action != b.action and "remove" in (a.action, b.action):
        raise unclear("one edit either removes something or changes something; do them one at a time", both,
                      readable, prompt)
    if not _overlap(a, b) and _signature(a) != _signature(b):
        raise unclear("one edit applies one change to every part it targets, and this prompt asks for different "
                      "changes to different parts; do them one at a time", both, readable, prompt)


def _signature(r: ClauseReading) -> tuple[object, ...]:
    """What a clause does, apart from where: clauses with one signature can share a plan."""
    return (r.action, r.colour, r.lightness > 0 if r.lightness else None, tuple(r.texture), tuple(r.shape),
            r.accessory, r.makeup, reading_part(r))


def reads(refine: Callable[[str], object]) -> Readable:
    """A Readable from a refine function: True when it gives a plan for the prompt."""
    def readable(text: str) -> bool:
        try:
            refine(text)
        except PlanError:
            return False
        return True
    return readable
