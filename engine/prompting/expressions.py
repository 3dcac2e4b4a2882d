"""Expression phrases of a clause -> named expression deltas (plan.EXPRESSION_NAMES), with sign and size.

Size: a state verb ("close the left eye", "wink", "open her mouth wide") is absolute, fully there
(1.0) unless an intensity word says how much ("half close her eyes": 0.5); other phrases take the
clause's intensity ("a big smile" 0.9, "smile a little" 0.3, default 0.6). Sign: negative when a
removal or negation cue comes before the phrase in the clause ("no longer smile", "don't frown") or
"less"/"anymore" right after it ("smile less").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_P = r"(?:her |his |their |the |its |your |a |an |both )?"
_SIDE = r"(?:left |right )?"


@dataclass(frozen=True)
class ExpressionPattern:
    """One expression phrase and the deltas it asks for at full size."""

    pattern: str  # regex on a lower-case clause
    deltas: tuple[tuple[str, float], ...]  # (expression name, weight at full size)
    absolute: bool = False  # a state verb: full size unless an intensity word is given
    sided: bool = False  # blink deltas follow "left" / "right" in the clause


EXPRESSION_PATTERNS: tuple[ExpressionPattern, ...] = (
    ExpressionPattern(r"\blaugh\w*", (("smile", 1.0), ("jaw_open", 0.5))),
    ExpressionPattern(r"\bsmirk\w*", (("smile", 0.5),)),
    ExpressionPattern(r"\b(?:smil\w*|grin\w*|happy|happier|cheerful|joyful|beam\w*)\b"
                      r"|\b(?:raise\w*|lift\w*|turn\w* up)\b.{0,12}\bcorners?\b", (("smile", 1.0),)),
    ExpressionPattern(r"\b(?:frown\w*|sad|sadder|unhappy|gloomy|upset|grumpy|sulk\w*)\b", (("frown", 1.0),)),
    ExpressionPattern(r"\b(?:surprise\w*|astonish\w*|shock\w*|amazed|startled)\b",
                      (("brow_raise", 1.0), ("jaw_open", 0.5))),
    ExpressionPattern(r"\b(?:raise\w*|lift\w*|arch\w*)\b.{0,20}\b(?:eye)?brows?\b|\b(?:eye)?brows? (?:raised|up)\b",
                      (("brow_raise", 1.0),)),
    ExpressionPattern(r"\b(?:angry|anger|angrier|furious|mad|scowl\w*|furrow\w*|stern)\b", (("brow_furrow", 1.0),)),
    ExpressionPattern(r"\bwink\w*", (("blink_left", 1.0),), absolute=True, sided=True),
    ExpressionPattern(r"\b(?:open\w*|unclose)\b " + _P + _SIDE + r"eyes?\b|\beyes? (?:wide )?open\b",
                      (("blink_left", -1.0), ("blink_right", -1.0)), absolute=True, sided=True),
    ExpressionPattern(r"\b(?:close|closed|closing|shut|shuts|shutting)\b.{0,14}\beyes?\b|\beyes? (?:closed|shut)\b"
                      r"|\bblink\w*|\bsleep\w*", (("blink_left", 1.0), ("blink_right", 1.0)), absolute=True,
                      sided=True),
    ExpressionPattern(r"\b(?:close|closed|closing|shut)\b " + _P + r"(?:mouth|jaw|lips)\b|\bmouth (?:closed|shut)\b",
                      (("jaw_open", -1.0),), absolute=True),
    ExpressionPattern(r"\b(?:pucker\w*|kiss\w*|pout\w*)", (("pucker", 1.0),)),
    ExpressionPattern(r"\bpuff\w*\b.{0,16}\bcheeks?\b|\bcheeks? puff\w*|\bpuffy cheeks\b", (("cheek_puff", 1.0),)),
    ExpressionPattern(r"\b(?:grimac\w*|stretch\w* " + _P + r"lips|tense " + _P + r"lips)", (("lip_stretch", 1.0),)),
    ExpressionPattern(r"\b(?:disgust\w*|sneer\w*|wrinkl\w* " + _P + r"nose|nose wrinkl\w*)", (("nose_wrinkle", 1.0),)),
    ExpressionPattern(r"\b(?:open\w* " + _P + r"(?:mouth|jaw)|mouth (?:wide )?open|jaw drop\w*|drop\w* " + _P
                      + r"jaw|yawn\w*|gasp\w*|scream\w*|shout\w*)", (("jaw_open", 1.0),)),
)
"""Expression phrases, most specific first (a matched phrase is blanked before the next is tried)."""

EXPR_INDEX_PATTERN = re.compile(r"\bexpr_(\d{1,3})\b(?:\s*(?:=|to|by|:)?\s*(-?\d+(?:\.\d+)?))?")
"""FLAME coefficient by index, optionally with a value: "expr_12 0.8", "expr_3 = -1"."""

_AFTER_NEGATION = re.compile(r"^\s*(?:\w+\s+){0,2}?(?:less|anymore|no more)\b")


EXPRESSION_WORDS: frozenset[str] = frozenset("""
smile smiles smiled smiling grin grins grinning laugh laughs laughing smirk smirking happy happier cheerful
joyful beaming frown frowns frowning sad sadder unhappy gloomy upset grumpy sulk sulking surprise surprised
astonished shocked amazed startled raise raised lift lifted arch arched angry anger angrier furious mad scowl
scowling furrow furrowed stern wink winks winking blink blinking close closed closing shut open opened opening
sleep sleeping asleep pucker puckered kiss kissing pout pouting puff puffed puffing puffy grimace grimacing
stretch stretched tense disgust disgusted sneer sneering wrinkle wrinkled yawn yawning gasp gasping scream
screaming shout shouting drop dropped jaw mouth eyes eye brows eyebrows cheeks lips nose corner corners
""".split())
"""The words expression phrases are made of (the vocabulary typos are corrected against)."""


def _sided(name: str, weight: float, pattern: ExpressionPattern, text: str) -> list[tuple[str, float]]:
    """Blink deltas for a sided phrase: "left"/"right" pick one eye; a wink is one eye (left by default)."""
    left, right = re.search(r"\bleft\b", text) is not None, re.search(r"\bright\b", text) is not None
    if not pattern.sided or not name.startswith("blink_"):
        return [(name, weight)]
    one_eye = len(pattern.deltas) == 1
    if right and not left:
        return [("blink_right", weight)] if name == ("blink_left" if one_eye else "blink_right") else []
    if left and not right:
        return [(name, weight)] if name == "blink_left" else []
    return [(name, weight)]


def read_expressions(text: str, intensity: float, intensity_given: bool,
                     cue_ends: list[int]) -> tuple[dict[str, float], str]:
    """Expression deltas of one clause and the clause with their phrases blanked out.

    `intensity` is the clause's (DEFAULT_INTENSITY unless `intensity_given`); `cue_ends` are the end
    offsets of removal/negation cues in `text`.
    """
    deltas: dict[str, float] = {}
    blanked = text
    for pattern in EXPRESSION_PATTERNS:
        m = re.search(pattern.pattern, blanked)
        if m is None:
            continue
        negated = any(end <= m.start() for end in cue_ends) or _AFTER_NEGATION.match(text[m.end():]) is not None
        size = intensity if (intensity_given or not pattern.absolute) else 1.0
        for name, weight in pattern.deltas:
            for key, w in _sided(name, weight, pattern, text):
                value = round((-1.0 if negated else 1.0) * w * size, 3)
                if abs(value) > abs(deltas.get(key, 0.0)):  # "raise brows in surprise": once
                    deltas[key] = value
        blanked = blanked[:m.start()] + " " * (m.end() - m.start()) + blanked[m.end():]
    for m in EXPR_INDEX_PATTERN.finditer(text):
        deltas[f"expr_{int(m.group(1))}"] = float(m.group(2)) if m.group(2) is not None else intensity
        blanked = blanked[:m.start()] + " " * (m.end() - m.start()) + blanked[m.end():]
    return deltas, blanked
