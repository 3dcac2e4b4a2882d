"""Reading one prompt: split into clauses and read each clause's components, colour, kind words,
accessory, expression deltas and intensity. Pure functions over lower-case text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.head.components import COMPONENTS
from engine.prompting.colours import NAMED_COLOURS, RGB, hex_to_rgb
from engine.prompting.vocab import (
    ACCESSORIES, COLOUR_KIND_WORDS, COMPONENT_WORDS, DEFAULT_COLOURS, DEFAULT_INTENSITY, EXPR_INDEX_PATTERN,
    EXPRESSION_PATTERNS, INTENSITY_WORDS, NEGATIONS, SHAPE_WORDS, TEXTURE_WORDS, WHOLE_HEAD_WORDS, find_colour,
    scan_phrases,
)

_SPLIT = re.compile(r"[,;!?]|\.(?!\d)|\b(?:and|then|while|plus|also|but)\b")
_COLOUR_AND = re.compile(r"\b([a-z]+) and ([a-z]+)\b")


@dataclass
class ClauseReading:
    """What one clause says. Component entries are COMPONENTS or GROUPS names."""

    text: str  # the clause, lower case
    components: list[str] = field(default_factory=list)  # targets named outside expression phrases
    whole_head: bool = False  # a style/whole-head word: the edit covers every component
    colour: RGB | None = None  # the colour named, after modifiers
    colour_name: str | None = None  # the words that named it
    colour_kind: bool = False  # a colour or colour-edit word (dye, lipstick...) is present
    makeup: str | None = None  # lipstick / blush / eyeliner ... when named
    texture: list[str] = field(default_factory=list)  # texture/material/style words
    shape: list[str] = field(default_factory=list)  # shape/size words
    accessory: str | None = None  # accessory name
    accessory_place: tuple[str, ...] = ()  # components where the accessory sits
    expression: dict[str, float] = field(default_factory=dict)  # deltas at this clause's intensity
    intensity: float = DEFAULT_INTENSITY  # 0..1
    intensity_word: str | None = None  # the word that set the intensity

    @property
    def is_appearance(self) -> bool:
        return bool(self.colour_kind or self.texture or self.shape or self.accessory or self.whole_head)


def normalise(prompt: str) -> str:
    """Lower case; punctuation that carries no meaning becomes spaces (keeps '#', '_', '.', ',')."""
    text = prompt.lower().replace("’", "'").replace("-", " ")
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


def _read_intensity(words: list[str], reading: ClauseReading) -> None:
    matches = scan_phrases(words, INTENSITY_WORDS)
    if matches:
        _, _, phrase = max(matches, key=lambda m: abs(INTENSITY_WORDS[m[2]] - DEFAULT_INTENSITY))
        reading.intensity = INTENSITY_WORDS[phrase]
        reading.intensity_word = phrase


def _negated(text: str, start: int) -> bool:
    before = text[:start].split()[-3:]
    return any(w in NEGATIONS for w in before)


def _read_expressions(text: str, reading: ClauseReading) -> str:
    """Fill reading.expression; returns the text with expression phrases blanked out."""
    blanked = text
    for pattern, deltas in EXPRESSION_PATTERNS:
        m = re.search(pattern, blanked)
        if m is None:
            continue
        sign = -1.0 if _negated(blanked, m.start()) else 1.0
        for name, weight in deltas.items():
            if name == "blink_left" and "blink_right" not in deltas and re.search(r"\bright\b", text):
                name = "blink_right"  # "wink with the right eye"
            if name.startswith("blink_") and "blink_right" in deltas:
                if re.search(r"\bleft\b", text) and name == "blink_right":
                    continue
                if re.search(r"\bright\b", text) and name == "blink_left":
                    continue
            value = sign * weight * reading.intensity
            if abs(value) > abs(reading.expression.get(name, 0.0)):  # "raise brows in surprise": once
                reading.expression[name] = value
        blanked = blanked[:m.start()] + " " * (m.end() - m.start()) + blanked[m.end():]
    for m in EXPR_INDEX_PATTERN.finditer(text):
        value = float(m.group(2)) if m.group(2) is not None else reading.intensity
        reading.expression[f"expr_{int(m.group(1))}"] = value
        blanked = blanked[:m.start()] + " " * (m.end() - m.start()) + blanked[m.end():]
    return blanked


def _read_appearance(words: list[str], reading: ClauseReading) -> None:
    for _, _, phrase in scan_phrases(words, COMPONENT_WORDS):
        reading.components.extend(COMPONENT_WORDS[phrase])
    for _, _, phrase in scan_phrases(words, ACCESSORIES):
        if reading.accessory is None:
            reading.accessory, reading.accessory_place = ACCESSORIES[phrase]
    reading.texture = [p for _, _, p in scan_phrases(words, TEXTURE_WORDS)]
    reading.shape = [p for _, _, p in scan_phrases(words, SHAPE_WORDS)]
    reading.whole_head = any(p for _, _, p in scan_phrases(words, WHOLE_HEAD_WORDS))
    kind_words = [p for _, _, p in scan_phrases(words, COLOUR_KIND_WORDS)]
    reading.makeup = next((w for w in kind_words if w in DEFAULT_COLOURS or w in COMPONENT_WORDS), None)
    hex_rgb = next((hex_to_rgb(w) for w in words if w.startswith("#") and hex_to_rgb(w)), None)
    found = (hex_rgb, next(w for w in words if w.startswith("#"))) if hex_rgb else find_colour(words)
    if found is not None:
        reading.colour, reading.colour_name = found
    elif reading.makeup in DEFAULT_COLOURS:
        name = DEFAULT_COLOURS[reading.makeup]
        reading.colour, reading.colour_name = NAMED_COLOURS[name], name
    reading.colour_kind = bool(kind_words) or found is not None


def read_clause(clause: str) -> ClauseReading:
    """Everything one clause says (see ClauseReading)."""
    reading = ClauseReading(text=clause)
    _read_intensity(words_of(clause), reading)
    rest = _read_expressions(clause, reading)
    _read_appearance(words_of(rest), reading)
    if reading.whole_head:
        reading.components = list(COMPONENTS)
    return reading


def read_prompt(prompt: str) -> list[ClauseReading]:
    """Readings of every clause of a prompt; a clause that only names components (\"her hair\" in
    \"make her hair and brows red\") lends them to the nearest appearance clause."""
    readings: list[ClauseReading] = []
    for clause in split_clauses(normalise(prompt)):
        r = read_clause(clause)
        prev = readings[-1] if readings else None
        if (prev is not None and r.is_appearance and not r.components and not r.accessory
                and not prev.expression and not r.expression):  # "dark eyeshadow, charcoal grey"
            r = read_clause(prev.text + " " + clause)
            readings[-1] = r
        else:
            readings.append(r)
    for i, r in enumerate(readings):
        if r.components and not r.is_appearance and not r.expression:
            order = list(range(i + 1, len(readings))) + list(range(i - 1, -1, -1))
            target = next((readings[j] for j in order if readings[j].is_appearance), None)
            if target is not None:
                target.components[:0] = r.components
                r.components = []
    return readings
