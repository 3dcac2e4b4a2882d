"""Reading one prompt: split into clauses and read each clause's components, part, colour or lightness
shift, kind words, accessory, removal or negation, expression deltas and intensity. Pure functions over
lower-case text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.head.components import COMPONENTS, GROUPS
from engine.prompting.colours import NAMED_COLOURS, RGB, hex_to_rgb
from engine.prompting.expressions import read_expressions
from engine.prompting.vocab import (
    ACCESSORIES, COLOUR_KIND_WORDS, COLOUR_VERBS, COMPONENT_WORDS, DEFAULT_COLOURS, DEFAULT_INTENSITY,
    EXPRESSION_SIZE_WORDS, FEATURE_WORDS, IMPLIED_COMPONENT, INTENSITY_WORDS, LIGHTNESS_STEP, LIGHTNESS_WORDS,
    MAKEUP_WORDS, NEGATION_PATTERN, PHRASE_PATTERNS, REMOVAL_PATTERN, SHAPE_WORDS, SIZE_ADJECTIVES, TEXTURE_ALIASES,
    TEXTURE_WORDS, WHOLE_HEAD_WORDS, find_colour, scan_phrases,
)

_SPLIT = re.compile(r"[,;!?]|\.(?!\d)|\b(?:and|then|while|plus|also|but)\b")
_COLOUR_AND = re.compile(r"\b([a-z]+) and ([a-z]+)\b")
_OWNER_WORDS = frozenset({"her", "his", "their", "its", "the", "my", "your", "those", "these", "this", "that"})
_ADD_WORDS = frozenset({"add", "adds", "adding", "give", "giving", "put", "putting", "wear", "wears", "wearing",
                        "dress", "attach", "new"})
_VERBS = _ADD_WORDS | {"make", "turn", "change", "paint", "dye", "colour", "color", "apply", "get", "set"}


@dataclass
class ClauseReading:
    """What one clause says. Component entries are COMPONENTS or GROUPS names."""

    text: str  # the clause, lower case
    components: list[str] = field(default_factory=list)  # targets named outside expression phrases
    implied: list[str] = field(default_factory=list)  # components a texture word implies ("older": skin)
    part: str | None = None  # a PARTS name the clause targets ("iris", "sclera", "teeth")
    whole_head: bool = False  # a style/whole-head word: the edit covers every component
    colour: RGB | None = None  # the colour named, after modifiers
    colour_name: str | None = None  # the words that named it
    colour_kind: bool = False  # a colour, colour-edit word (dye, lipstick...) or lightness shift is present
    lightness: float = 0.0  # shift of the region's own lightness ("darker" < 0), when no colour is named
    shift_signs: set[float] = field(default_factory=set)  # signs of every comparative word (both: a contradiction)
    makeup: str | None = None  # lipstick / blush / eyeliner ... when named
    texture: list[str] = field(default_factory=list)  # texture/material/style words
    shape: list[str] = field(default_factory=list)  # shape/size words
    accessory: str | None = None  # accessory name
    accessory_place: tuple[str, ...] = ()  # components where the accessory sits
    accessory_owned: bool = False  # "her glasses": an accessory the avatar wears (changed, not added)
    removal: bool = False  # a removal cue ("remove", "no more", "without") outside expression phrases
    negated: bool = False  # a negation cue ("don't", "not") without a removal
    expression: dict[str, float] = field(default_factory=dict)  # signed deltas
    intensity: float = DEFAULT_INTENSITY  # 0..1
    intensity_word: str | None = None  # the word that set the intensity

    @property
    def is_appearance(self) -> bool:
        return bool(self.colour_kind or self.texture or self.shape or self.accessory or self.whole_head
                    or (self.removal and self.components))

    @property
    def action(self) -> str:
        """"remove", "add" (a new accessory) or "change" (plan.ACTIONS)."""
        if self.removal:
            return "remove"
        return "add" if self.accessory and not self.accessory_owned else "change"

    @property
    def targets(self) -> list[str]:
        """The components this clause edits (accessory places and "accessory" included)."""
        if self.accessory and self.accessory_owned and not self.removal:
            return ["accessory"]
        own = self.components or list(self.accessory_place) or self.implied
        return own + (["accessory"] if self.accessory else [])


def normalise(prompt: str) -> str:
    """Lower case; "n't" -> " not", possessive "'s" dropped; punctuation that carries no meaning becomes
    spaces (keeps '#', '_', '.', ',')."""
    text = prompt.lower().replace("’", "'").replace("-", " ")
    text = re.sub(r"\b(ca|wo)n't\b", r"\1 not", text)
    text = re.sub(r"n't\b", " not", text)
    text = re.sub(r"\b(dont|doesnt|didnt|shouldnt|wont|cant|isnt|arent|wouldnt)\b", lambda m: m.group(1)[:-2] + " not",
                  text)
    text = re.sub(r"(\w)'s\b", r"\1", text)
    text = re.sub(r"\b(take|took|taking|shave|wipe|strip)\s+((?:\w+\s+){1,3}?)(off|away|out)\b", r"\1 \3 \2", text)
    text = re.sub(r"[^a-z0-9_#'.,;!? ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def split_clauses(text: str) -> list[str]:
    """Clauses of a normalised prompt; "blue and green" stays together."""
    text = _COLOUR_AND.sub(lambda m: f"{m.group(1)} {m.group(2)}" if m.group(1) in NAMED_COLOURS
                           and m.group(2) in NAMED_COLOURS else m.group(0), text)
    return [c.strip() for c in _SPLIT.split(text) if c and c.strip()]


def words_of(text: str) -> list[str]:
    """Words of a clause (punctuation dropped, '#hex' and 'expr_3' kept)."""
    return [w.strip(".'") for w in re.split(r"[\s,;!?]+", text) if w.strip(".'")]


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _read_intensity(words: list[str], reading: ClauseReading) -> None:
    matches = scan_phrases(words, INTENSITY_WORDS)
    if matches:
        _, _, phrase = max(matches, key=lambda m: abs(INTENSITY_WORDS[m[2]] - DEFAULT_INTENSITY))
        reading.intensity = INTENSITY_WORDS[phrase]
        reading.intensity_word = phrase


def _read_cues(text: str, reading: ClauseReading) -> tuple[list[int], list[tuple[int, int]]]:
    """Removal and negation cues: sets reading.removal / negated; returns the cues' end offsets and the
    spans to blank before appearance words are read (cue words that name a component, like "bald", stay)."""
    removal = list(REMOVAL_PATTERN.finditer(text))
    negation = [m for m in NEGATION_PATTERN.finditer(text)
                if not any(r.start() <= m.start() < r.end() for r in removal)]
    reading.removal, reading.negated = bool(removal), bool(negation) and not removal
    spans = [(m.start(), m.end()) for m in removal + negation if m.group(0) not in COMPONENT_WORDS]
    return [m.end() for m in removal + negation], spans


def _read_phrases(text: str, reading: ClauseReading) -> str:
    """Set reading.part from PHRASE_PATTERNS and put their component words in ("the whites of her eyes" ->
    "sclera", "the inside of her mouth" -> "mouth interior")."""
    for pattern, replacement, part in PHRASE_PATTERNS:
        m = re.search(pattern, text)
        if m is None:
            continue
        if part is not None and reading.part is None:
            reading.part = part
        if replacement is not None:
            text = text[:m.start()] + replacement + text[m.end():]
    return text


def _read_accessory(words: list[str], reading: ClauseReading) -> None:
    for start, _, phrase in scan_phrases(words, ACCESSORIES):
        reading.accessory, reading.accessory_place = ACCESSORIES[phrase]
        owner = start > 0 and words[start - 1] in _OWNER_WORDS
        reading.accessory_owned = owner and not any(w in _ADD_WORDS for w in words)
        return


def _read_colour(words: list[str], reading: ClauseReading) -> None:
    kind_words = [p for _, _, p in scan_phrases(words, COLOUR_KIND_WORDS)]
    makeup = [w for w in kind_words if w in DEFAULT_COLOURS or w in MAKEUP_WORDS]
    reading.makeup = next(iter(makeup + [w for _, _, w in scan_phrases(words, MAKEUP_WORDS)]), None)
    hex_rgb = next((hex_to_rgb(w) for w in words if w.startswith("#") and hex_to_rgb(w)), None)
    found = (hex_rgb, next(w for w in words if w.startswith("#"))) if hex_rgb else find_colour(words)
    verb = next((COLOUR_VERBS[w] for w in words if w in COLOUR_VERBS), None)
    reading.shift_signs = {LIGHTNESS_WORDS[w] for w in words if w in LIGHTNESS_WORDS}
    shift = next((LIGHTNESS_WORDS[w] for w in words if w in LIGHTNESS_WORDS), 0.0)
    if found is not None:
        reading.colour, reading.colour_name = found
    elif verb is not None:
        reading.colour, reading.colour_name = NAMED_COLOURS[verb], verb
    elif shift:
        reading.lightness = round(shift * LIGHTNESS_STEP * reading.intensity, 4)
    elif reading.makeup in DEFAULT_COLOURS and not reading.removal:
        name = DEFAULT_COLOURS[reading.makeup]
        reading.colour, reading.colour_name = NAMED_COLOURS[name], name
    reading.colour_kind = bool(kind_words) or found is not None or verb is not None or shift != 0.0


def _read_shape(words: list[str], reading: ClauseReading) -> None:
    if reading.expression and not reading.components:  # "a bigger smile": the size of the expression
        return
    reading.shape = [p for _, _, p in scan_phrases(words, SHAPE_WORDS)]
    body = {w for w in COMPONENT_WORDS if " " not in w and w not in FEATURE_WORDS}
    core = [w for w in words if w in SIZE_ADJECTIVES or w not in INTENSITY_WORDS]  # "brows extremely thick"
    for i, w in enumerate(core):
        near = core[max(0, i - 1):i] + core[i + 1:i + 2]
        if w in SIZE_ADJECTIVES and any(n in body for n in near) and w not in reading.shape:
            reading.shape.append(w)


def _read_appearance(words: list[str], reading: ClauseReading) -> None:
    for _, _, phrase in scan_phrases(words, COMPONENT_WORDS):
        reading.components.extend(c for c in COMPONENT_WORDS[phrase] if c not in reading.components)
    if reading.removal and not reading.components and "head" in words:  # "shave his head": the hair
        reading.components.append("hair")
    for group, members in GROUPS.items():  # "the right eye ... iris": the named side, not both
        if group in reading.components and any(m in reading.components for m in members):
            reading.components.remove(group)
    _read_accessory(words, reading)
    words = [TEXTURE_ALIASES.get(w, w) for w in words]
    reading.texture = [p for _, _, p in scan_phrases(words, TEXTURE_WORDS)]
    reading.implied = list(dict.fromkeys(IMPLIED_COMPONENT[t] for t in reading.texture if t in IMPLIED_COMPONENT))
    _read_shape(words, reading)
    reading.whole_head = any(p for _, _, p in scan_phrases(words, WHOLE_HEAD_WORDS))
    _read_colour(words, reading)
    if reading.removal:  # what is taken away keeps no colour of its own ("no more red lipstick")
        reading.colour, reading.colour_name, reading.lightness = None, None, 0.0


def read_clause(clause: str) -> ClauseReading:
    """Everything one clause says (see ClauseReading)."""
    reading = ClauseReading(text=clause)
    _read_intensity(words_of(clause), reading)
    cue_ends, cue_spans = _read_cues(clause, reading)
    size_word = reading.intensity_word or next((w for w in words_of(clause) if w in EXPRESSION_SIZE_WORDS), None)
    size = EXPRESSION_SIZE_WORDS.get(size_word or "", reading.intensity) if not reading.intensity_word \
        else reading.intensity
    reading.expression, rest = read_expressions(clause, size, size_word is not None, cue_ends)
    if reading.expression:  # "widen her smile": the size word sets the clause's intensity too
        reading.intensity, reading.intensity_word = size, size_word
    for start, end in cue_spans:
        rest = _blank(rest, start, end)
    rest = _read_phrases(rest, reading)
    _read_appearance(words_of(rest), reading)
    if reading.whole_head:
        reading.components = list(COMPONENTS)
    return reading


def _floating(r: ClauseReading) -> bool:
    """An appearance clause that names nothing to edit ("thicker" in "thicker and darker eyebrows")."""
    return r.is_appearance and not (r.components or r.accessory or r.implied or r.negated or r.expression)


def _continues_removal(prev: ClauseReading, r: ClauseReading) -> bool:
    """"moustache" in "remove his beard and moustache": a bare thing after a removal is removed too."""
    return (prev.removal and not r.removal and not r.negated and not r.expression and r.colour is None
            and not r.lightness and not r.shape and bool(r.accessory or r.texture or r.makeup)
            and not any(w in _VERBS for w in words_of(r.text)))


def read_prompt(prompt: str) -> list[ClauseReading]:
    """Readings of every clause of a prompt. A clause that names no component joins its neighbour
    ("make her hair red and shiny", "thicker and darker eyebrows"); a clause that only names components
    ("her hair" in "her hair, make it red") lends them to the nearest appearance clause."""
    clauses = split_clauses(normalise(prompt))
    readings: list[ClauseReading] = []
    i = 0
    while i < len(clauses):
        r = read_clause(clauses[i])
        prev = readings[-1] if readings else None
        bare_removal = r.removal and not r.is_appearance and not r.expression  # "..., tone it down"
        if prev is not None and (((_floating(r) or bare_removal) and prev.is_appearance and not prev.expression)
                                 or _continues_removal(prev, r)):
            readings[-1] = read_clause(prev.text + " " + clauses[i])
        elif _floating(r) and i + 1 < len(clauses) and read_clause(clauses[i + 1]).components:
            clauses[i + 1] = clauses[i] + " " + clauses[i + 1]
        else:
            readings.append(r)
        i += 1
    for i, r in enumerate(readings):
        if r.components and not r.is_appearance and not r.expression and not r.removal:
            order = list(range(i + 1, len(readings))) + list(range(i - 1, -1, -1))
            target = next((readings[j] for j in order if readings[j].is_appearance), None)
            if target is not None:
                target.components[:0] = r.components
                r.components = []
    return readings
