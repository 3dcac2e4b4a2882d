"""Word tables of the rules refiner: components and their synonyms, accessories, edit-kind words,
expression patterns and intensity words. Plain data plus two small scanners."""

from __future__ import annotations

import re

from engine.prompting.colours import MODIFIERS, NAMED_COLOURS, RGB, apply_modifier, mix

COMPONENT_WORDS: dict[str, tuple[str, ...]] = {
    "hair": ("hair",), "hairs": ("hair",), "hairstyle": ("hair",), "haircut": ("hair",), "fringe": ("hair",),
    "bangs": ("hair",), "locks": ("hair",), "curls": ("hair",), "ponytail": ("hair",), "braids": ("hair",),
    "mane": ("hair",), "scalp": ("hair",), "hairdo": ("hair",),
    "lips": ("lips",), "lip": ("lips",), "mouth": ("lips",), "lipstick": ("lips",), "lip gloss": ("lips",),
    "upper lip": ("upper_lip",), "top lip": ("upper_lip",), "lower lip": ("lower_lip",),
    "bottom lip": ("lower_lip",), "teeth": ("mouth_interior",), "tooth": ("mouth_interior",),
    "tongue": ("mouth_interior",), "gums": ("mouth_interior",), "fangs": ("mouth_interior",),
    "eyes": ("eyes",), "eye": ("eyes",), "iris": ("eyes",), "irises": ("eyes",), "pupils": ("eyes",),
    "eyeballs": ("eyes",), "eyelids": ("eyes",), "lashes": ("eyes",), "eyelashes": ("eyes",),
    "eyeshadow": ("eyes",), "eye shadow": ("eyes",), "eyeliner": ("eyes",), "mascara": ("eyes",),
    "left eye": ("left_eye",), "right eye": ("right_eye",),
    "brows": ("brows",), "brow": ("brows",), "eyebrows": ("brows",), "eyebrow": ("brows",),
    "left brow": ("left_brow",), "left eyebrow": ("left_brow",), "right brow": ("right_brow",),
    "right eyebrow": ("right_brow",),
    "nose": ("nose",), "nostrils": ("nose",), "nostril": ("nose",),
    "skin": ("skin",), "face": ("skin",), "complexion": ("skin",), "cheeks": ("skin",), "cheek": ("skin",),
    "forehead": ("skin",), "chin": ("skin",), "jawline": ("skin",), "temples": ("skin",),
    "freckles": ("skin",), "beard": ("skin",), "moustache": ("skin",), "mustache": ("skin",),
    "stubble": ("skin",), "blush": ("skin",), "tan": ("skin",), "sunburn": ("skin",),
    "ears": ("ears",), "ear": ("ears",), "earlobes": ("ears",), "lobes": ("ears",),
    "neck": ("neck",), "throat": ("neck",), "nape": ("neck",),
}
"""Words and phrases naming components or groups (engine.head.components names)."""

WHOLE_HEAD_WORDS: frozenset[str] = frozenset({
    "whole head", "entire head", "whole face", "entire face", "everything", "statue", "zombie", "robot",
    "alien", "cartoon", "anime", "painting", "sketch", "cyborg", "vampire",
})
"""Words that make an edit apply to every component (styles, whole-head phrases)."""

ACCESSORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "glasses": ("glasses", ("eyes", "nose")), "spectacles": ("glasses", ("eyes", "nose")),
    "eyeglasses": ("glasses", ("eyes", "nose")), "sunglasses": ("sunglasses", ("eyes", "nose")),
    "goggles": ("goggles", ("eyes", "nose")), "monocle": ("monocle", ("right_eye",)),
    "eyepatch": ("eyepatch", ("left_eye",)), "eye patch": ("eyepatch", ("left_eye",)),
    "hat": ("hat", ("hair",)), "cap": ("cap", ("hair",)), "beanie": ("beanie", ("hair",)),
    "beret": ("beret", ("hair",)), "fedora": ("fedora", ("hair",)), "top hat": ("top hat", ("hair",)),
    "cowboy hat": ("cowboy hat", ("hair",)), "helmet": ("helmet", ("hair",)), "crown": ("crown", ("hair",)),
    "tiara": ("tiara", ("hair",)), "headband": ("headband", ("hair",)), "bandana": ("bandana", ("hair",)),
    "hair clip": ("hair clip", ("hair",)), "hairpin": ("hairpin", ("hair",)), "bow": ("bow", ("hair",)),
    "flower": ("flower", ("hair",)), "flowers": ("flowers", ("hair",)), "halo": ("halo", ("hair",)),
    "horns": ("horns", ("hair",)), "earrings": ("earrings", ("ears",)), "earring": ("earring", ("ears",)),
    "headphones": ("headphones", ("ears", "hair")), "necklace": ("necklace", ("neck",)),
    "choker": ("choker", ("neck",)), "scarf": ("scarf", ("neck",)), "collar": ("collar", ("neck",)),
    "bow tie": ("bow tie", ("neck",)), "tie": ("tie", ("neck",)), "face mask": ("face mask", ("skin", "nose", "lips")),
    "mask": ("mask", ("skin", "nose")), "nose ring": ("nose ring", ("nose",)),
    "lip ring": ("lip ring", ("lips",)), "piercing": ("piercing", ("ears",)),
}
"""Accessory words -> (accessory name, components where it sits)."""

TEXTURE_WORDS: frozenset[str] = frozenset({
    "metallic", "metal", "glossy", "gloss", "shiny", "matte", "wooden", "wood", "marble", "stone", "porcelain",
    "crystal", "chrome", "velvet", "fur", "furry", "scales", "scaly", "freckles", "freckled", "tattoo", "tattoos",
    "scar", "scars", "wrinkles", "wrinkled", "aged", "older", "makeup", "glitter", "sparkly", "sparkles",
    "sparkling", "textured", "texture", "material", "plastic", "rubber", "leather", "icy", "frozen", "gold leaf",
    "statue", "zombie", "robot", "cartoon", "anime", "painting", "painted", "watercolor", "watercolour", "sketch",
    "sunburn", "sunburnt", "pimples", "acne", "beard", "moustache", "mustache", "stubble", "curly", "wavy",
    "straight", "braided", "spiky", "messy", "dreadlocks", "cyborg", "vampire", "tanned", "pores", "smooth",
    "snakeskin", "clay", "bronze statue", "weathered", "dirty", "wet", "lip gloss", "marble statue",
})
"""Texture, material and style words."""

SHAPE_WORDS: frozenset[str] = frozenset({
    "bigger", "larger", "smaller", "tinier", "thinner", "thicker", "fuller", "plumper", "plump", "longer",
    "shorter", "wider", "narrower", "pointy", "pointed", "pointier", "sharper", "rounder", "enlarge",
    "enlarged", "shrink", "shrunk", "slimmer", "elongate", "elongated", "elf", "elven", "hooked", "upturned",
    "bulkier", "broader", "reshape", "size", "shape", "button nose", "enormous", "taller",
})
"""Shape and size words (a few, like "big", count only when no expression claims them)."""

COLOUR_KIND_WORDS: frozenset[str] = frozenset({
    "dye", "dyed", "colour", "color", "recolour", "recolor", "tint", "tinted", "lipstick", "blush",
    "eyeshadow", "eye shadow", "eyeliner", "mascara", "highlights", "paint", "colored", "coloured",
})
"""Words that make an edit a colour edit even before a colour is named."""

DEFAULT_COLOURS: dict[str, str] = {
    "lipstick": "red", "blush": "pink", "eyeliner": "black", "mascara": "black", "tan": "tan",
}
"""Colour assumed when a makeup word comes without one."""

INTENSITY_WORDS: dict[str, float] = {
    "a little": 0.3, "a bit": 0.3, "a tad": 0.3, "slightly": 0.3, "slight": 0.3, "subtle": 0.3,
    "subtly": 0.3, "faint": 0.3, "faintly": 0.3, "hint of": 0.3, "touch of": 0.3, "gentle": 0.3,
    "gently": 0.3, "barely": 0.2, "mild": 0.35, "mildly": 0.35, "small": 0.35,
    "somewhat": 0.45, "moderately": 0.5, "moderate": 0.5, "much": 0.85,
    "very": 0.9, "really": 0.85, "big": 0.9, "huge": 0.95, "wide": 0.9, "broad": 0.9, "strongly": 0.9,
    "strong": 0.9, "a lot": 0.9, "heavily": 0.9, "heavy": 0.9, "intense": 0.9, "intensely": 0.9,
    "dramatic": 0.9, "dramatically": 0.9, "bold": 0.85, "lots": 0.9, "extremely": 1.0, "maximum": 1.0,
    "fully": 1.0, "completely": 1.0, "totally": 1.0, "massive": 1.0,
}
"""Intensity words -> intensity 0..1 (default DEFAULT_INTENSITY)."""

DEFAULT_INTENSITY = 0.6
"""Intensity when no intensity word is given."""

_P = r"(?:her |his |their |the |its |your |a |an )?"
EXPRESSION_PATTERNS: tuple[tuple[str, dict[str, float]], ...] = (
    (r"\blaugh\w*", {"smile": 1.0, "jaw_open": 0.5}),
    (r"\b(smil\w*|grin\w*|happy|happier|cheerful|joyful|beam\w*)\b", {"smile": 1.0}),
    (r"\b(frown\w*|sad|sadder|unhappy|gloomy|upset|grumpy|sulk\w*)\b", {"frown": 1.0}),
    (r"\b(surprise\w*|astonish\w*|shock\w*|amazed|startled)\b", {"brow_raise": 1.0, "jaw_open": 0.5}),
    (r"\b(raise\w*|lift\w*|arch\w*)\b.{0,20}\b(eye)?brows?\b|\b(eye)?brows? (raised|up)\b", {"brow_raise": 1.0}),
    (r"\b(angry|anger|angrier|furious|mad|scowl\w*|furrow\w*|stern)\b", {"brow_furrow": 1.0}),
    (r"\bwink\w*", {"blink_left": 1.0}),
    (r"\b(close|closed|closing|shut)\b.{0,12}\beyes?\b|\beyes? (closed|shut)\b|\bblink\w*|\bsleep\w*",
     {"blink_left": 1.0, "blink_right": 1.0}),
    (r"\b(pucker\w*|kiss\w*|pout\w*)", {"pucker": 1.0}),
    (r"\bpuff\w*\b.{0,16}\bcheeks?\b|\bcheeks? puff\w*|\bpuffy cheeks\b", {"cheek_puff": 1.0}),
    (r"\b(grimac\w*|stretch\w* " + _P + r"lips|tense " + _P + r"lips)", {"lip_stretch": 1.0}),
    (r"\b(disgust\w*|sneer\w*|wrinkl\w* " + _P + r"nose|nose wrinkl\w*)", {"nose_wrinkle": 1.0}),
    (r"\b(open\w* " + _P + r"(mouth|jaw)|mouth (wide )?open|jaw drop\w*|drop\w* " + _P + r"jaw|yawn\w*|gasp\w*"
     r"|scream\w*|shout\w*)", {"jaw_open": 1.0}),
)
"""Regex on a lower-case clause -> expression deltas at full intensity (scaled by the clause's)."""

EXPR_INDEX_PATTERN = re.compile(r"\bexpr_(\d{1,3})\b(?:\s*(?:=|to|by|:)?\s*(-?\d+(?:\.\d+)?))?")
"""FLAME coefficient by index, optionally with a value: "expr_12 0.8", "expr_3 = -1"."""

NEGATIONS: frozenset[str] = frozenset({"no", "not", "don't", "dont", "stop", "without", "less", "never", "remove"})
"""Words that flip an expression's sign when they come just before it."""

STOPWORDS: frozenset[str] = frozenset("""
a an the her his their its him them she he they it this that these those my your our me us you i we
give make add put change turn let have has had get set keep apply paint colour color into in on of to with
and or but then while also plus as at by for from up down out over some more less look looks looking like
be is are was were being been am do does did so too please can could would should will just now very
person woman man girl boy lady guy someone people avatar character model head expression expressions
same new old little bit lot much one two both each all any other own ever slightly somewhat rather quite
left right side beautiful pretty lovely gorgeous nice cute handsome quickly weird natural realistic
photorealistic style looking""".split())
"""Function words and generic verbs that are never looked up by meaning."""


def scan_phrases(words: list[str], table: dict[str, object] | frozenset[str]) -> list[tuple[int, int, str]]:
    """Longest-first phrase matches (start, end, phrase) of up to 3 words, non-overlapping."""
    found: list[tuple[int, int, str]] = []
    i = 0
    while i < len(words):
        for n in (3, 2, 1):
            phrase = " ".join(words[i:i + n])
            if i + n <= len(words) and phrase in table:
                found.append((i, i + n, phrase))
                i += n
                break
        else:
            i += 1
    return found


def _deish(word: str) -> str:
    """"reddish" -> "red", "bluish" -> "blue", "pinkish" -> "pink"; other words unchanged."""
    if not word.endswith("ish") or len(word) < 6:
        return word
    base = word[:-3]
    for cand in (base, base[:-1], base + "e"):
        if cand in NAMED_COLOURS:
            return cand
    return word


def find_colour(words: list[str]) -> tuple[RGB, str] | None:
    """The first colour named in `words` (with its modifiers, "blue green" mixes, "-ish" forms).

    Returns (rgb, the words that named it) or None.
    """
    matches = scan_phrases([_deish(w) for w in words], NAMED_COLOURS)
    if not matches:
        return None
    start, end, name = matches[0]
    group = [(start, end, name)]
    for s, e, n in matches[1:]:  # "blue green", "blue and green" mixes; stop at the first gap
        if s == group[-1][1] or (s == group[-1][1] + 1 and words[group[-1][1]] in ("and", "to")):
            group.append((s, e, n))
        else:
            break
    rgb = mix([NAMED_COLOURS[n] for _, _, n in group])
    mods: list[str] = []
    j = start - 1
    while j >= 0 and words[j] in MODIFIERS:
        mods.insert(0, words[j])
        j -= 1
    for m in reversed(mods):
        rgb = apply_modifier(rgb, m)
    label = " ".join(mods + words[start:group[-1][1]])
    return rgb, label
