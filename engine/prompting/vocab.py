"""Word tables of the rules refiner: components and their synonyms, parts, accessories, edit-kind words,
removal and negation cues, comparatives and intensity words. Plain data plus two small scanners.
Expression patterns live in expressions.py, colour names in colours.py."""

from __future__ import annotations

import re

from engine.prompting.colours import MODIFIERS, NAMED_COLOURS, RGB, apply_modifier, mix

COMPONENT_WORDS: dict[str, tuple[str, ...]] = {
    "hair": ("hair",), "hairs": ("hair",), "hairstyle": ("hair",), "haircut": ("hair",), "fringe": ("hair",),
    "bangs": ("hair",), "locks": ("hair",), "curls": ("hair",), "ponytail": ("hair",), "braids": ("hair",),
    "mane": ("hair",), "scalp": ("hair",), "hairdo": ("hair",), "hairline": ("hair",), "sideburns": ("hair",),
    "bald": ("hair",), "hairless": ("hair",),
    "lips": ("lips",), "lip": ("lips",), "mouth": ("lips",), "lipstick": ("lips",), "lip gloss": ("lips",),
    "upper lip": ("upper_lip",), "top lip": ("upper_lip",), "lower lip": ("lower_lip",),
    "bottom lip": ("lower_lip",), "teeth": ("mouth_interior",), "tooth": ("mouth_interior",),
    "fangs": ("mouth_interior",), "tongue": ("mouth_interior",), "gums": ("mouth_interior",),
    "inside of the mouth": ("mouth_interior",), "mouth interior": ("mouth_interior",),
    "eyes": ("eyes",), "eye": ("eyes",), "iris": ("eyes",), "irises": ("eyes",), "pupils": ("eyes",),
    "sclera": ("eyes",), "eyeballs": ("eyes",), "eyelids": ("eyes",), "lashes": ("eyes",), "eyelashes": ("eyes",),
    "eyeshadow": ("eyes",), "eye shadow": ("eyes",), "eyeliner": ("eyes",), "mascara": ("eyes",),
    "left eye": ("left_eye",), "right eye": ("right_eye",), "left iris": ("left_eye",), "right iris": ("right_eye",),
    "brows": ("brows",), "brow": ("brows",), "eyebrows": ("brows",), "eyebrow": ("brows",),
    "left brow": ("left_brow",), "left eyebrow": ("left_brow",), "right brow": ("right_brow",),
    "right eyebrow": ("right_brow",),
    "nose": ("nose",), "nostrils": ("nose",), "nostril": ("nose",), "nose bridge": ("nose",),
    "skin": ("skin",), "face": ("skin",), "complexion": ("skin",), "cheeks": ("skin",), "cheek": ("skin",),
    "forehead": ("skin",), "chin": ("skin",), "jawline": ("skin",), "temples": ("skin",),
    "freckles": ("skin",), "beard": ("skin",), "moustache": ("skin",), "mustache": ("skin",),
    "stubble": ("skin",), "goatee": ("skin",), "blush": ("skin",), "tan": ("skin",), "sunburn": ("skin",),
    "clean shaven": ("skin",),
    "ears": ("ears",), "ear": ("ears",), "earlobes": ("ears",), "lobes": ("ears",),
    "neck": ("neck",), "throat": ("neck",), "nape": ("neck",),
}
"""Words and phrases naming components or groups (engine.head.components names)."""

FEATURE_WORDS: frozenset[str] = frozenset({
    "lipstick", "lip gloss", "eyeshadow", "eye shadow", "eyeliner", "mascara", "freckles", "beard", "moustache",
    "mustache", "stubble", "goatee", "blush", "tan", "sunburn", "clean shaven", "bald", "hairless",
})
"""Component words that name something on a component (makeup, facial hair) rather than its shape: a
size word next to them is not a shape edit ("a thick beard")."""

_OWNER = r"(?:her |his |their |the |its |your |my )?"
PHRASE_PATTERNS: tuple[tuple[str, str | None, str | None], ...] = (
    (r"\bwhites? of " + _OWNER + r"(?:eyes?|eyeballs?)\b|\beye whites\b|\bscleras?\b|\bsclerae\b|\bbloodshot\b",
     "sclera", "sclera"),
    (r"\b(?:iris|irises|irides|pupils?)\b", None, "iris"),
    (r"\b(?:teeth|tooth|fangs)\b", None, "teeth"),
    (r"\binside (?:of )?" + _OWNER + r"mouth\b", "mouth interior", None),
)
"""Regex -> (component phrase that replaces the match or None to keep it, engine.head.components PARTS
name or None). Read before component words: "the whites of her eyes" is the sclera of the eyes."""

WHOLE_HEAD_WORDS: frozenset[str] = frozenset({
    "whole head", "entire head", "whole face", "entire face", "everything", "statue", "zombie", "robot",
    "alien", "cartoon", "anime", "painting", "sketch", "cyborg", "vampire",
})
"""Words that make an edit apply to every component (styles, whole-head phrases)."""

_EYES_NOSE = ("eyes", "nose")
ACCESSORIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "glasses": ("glasses", _EYES_NOSE), "spectacles": ("glasses", _EYES_NOSE), "eyeglasses": ("glasses", _EYES_NOSE),
    "sunglasses": ("sunglasses", _EYES_NOSE), "shades": ("sunglasses", _EYES_NOSE), "goggles": ("goggles", _EYES_NOSE),
    "monocle": ("monocle", ("right_eye",)), "eyepatch": ("eyepatch", ("left_eye",)),
    "eye patch": ("eyepatch", ("left_eye",)),
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

DESCRIPTIVE_WORDS: frozenset[str] = frozenset({
    "round", "square", "oval", "rimmed", "rimless", "wire", "aviator", "pearl", "diamond", "hoop", "stud", "pair",
    "frame", "frames", "lens", "lenses", "tips", "tip", "ends", "roots", "strands", "streaks", "corner", "corners",
})
"""Words that describe a thing without asking for an edit ("round glasses", "the tips of her hair"): known,
so never read by meaning as something else."""

TEXTURE_WORDS: frozenset[str] = frozenset({
    "metallic", "metal", "glossy", "gloss", "shiny", "matte", "wooden", "wood", "marble", "stone", "porcelain",
    "crystal", "chrome", "velvet", "fur", "furry", "scales", "scaly", "freckles", "freckled", "tattoo", "tattoos",
    "scar", "scars", "wrinkles", "wrinkled", "aged", "older", "younger", "makeup", "glitter", "sparkly", "sparkles",
    "sparkling", "textured", "texture", "material", "plastic", "rubber", "leather", "icy", "frozen", "gold leaf",
    "statue", "zombie", "robot", "cartoon", "anime", "painting", "painted", "watercolor", "watercolour", "sketch",
    "sunburn", "sunburnt", "pimples", "acne", "beard", "moustache", "mustache", "stubble", "goatee", "curly", "wavy",
    "straight", "braided", "spiky", "messy", "dreadlocks", "cyborg", "vampire", "tanned", "pores", "smooth",
    "snakeskin", "clay", "bronze statue", "weathered", "dirty", "wet", "lip gloss", "marble statue", "powdered",
    "glowing", "translucent", "glass", "sparkle",
})
"""Texture, material and style words."""

TEXTURE_ALIASES: dict[str, str] = {
    "glossier": "glossy", "shinier": "shiny", "smoother": "smooth", "curlier": "curly", "wavier": "wavy",
    "messier": "messy", "spikier": "spiky", "furrier": "furry", "wetter": "wet", "sparklier": "sparkly",
}
"""Comparatives of texture words, read as the word itself ("glossier lips": a glossy look)."""

IMPLIED_COMPONENT: dict[str, str] = {
    "older": "skin", "younger": "skin", "aged": "skin", "wrinkles": "skin", "wrinkled": "skin", "acne": "skin",
    "pimples": "skin", "pores": "skin", "tanned": "skin", "sunburnt": "skin", "freckled": "skin", "scar": "skin",
    "scars": "skin", "tattoo": "skin", "tattoos": "skin", "makeup": "skin",
    "curly": "hair", "wavy": "hair", "braided": "hair", "spiky": "hair", "messy": "hair", "dreadlocks": "hair",
}
"""The component a texture word is about when the clause names none ("make her look older": the skin)."""

SHAPE_WORDS: frozenset[str] = frozenset({
    "bigger", "larger", "smaller", "tinier", "thinner", "thicker", "fuller", "plumper", "plump", "longer",
    "shorter", "wider", "narrower", "pointy", "pointed", "pointier", "sharper", "rounder", "enlarge",
    "enlarged", "shrink", "shrunk", "slimmer", "elongate", "elongated", "elf", "elven", "hooked", "upturned",
    "bulkier", "broader", "reshape", "size", "shape", "button nose", "enormous", "taller", "bushier", "bushy",
    "straighter", "flatter", "widen", "narrow down", "fangs", "vampire fangs",
})
"""Shape and size words."""

SIZE_ADJECTIVES: frozenset[str] = frozenset({
    "big", "large", "small", "tiny", "thick", "thin", "long", "short", "wide", "narrow", "huge",
})
"""Plain size words: a shape edit only right next to a component word ("a big nose", "ears small")."""

OPPOSITE_SHAPES: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    (frozenset({"bigger", "larger", "enlarge", "enlarged", "enormous", "big", "large", "huge"}),
     frozenset({"smaller", "tinier", "shrink", "shrunk", "small", "tiny"})),
    (frozenset({"thicker", "fuller", "plumper", "bushier", "thick", "bushy"}),
     frozenset({"thinner", "slimmer", "thin"})),
    (frozenset({"longer", "elongate", "elongated", "taller", "long"}), frozenset({"shorter", "short"})),
    (frozenset({"wider", "broader", "wide"}), frozenset({"narrower", "narrow"})),
)
"""Shape words that contradict each other on one component."""

COLOUR_KIND_WORDS: frozenset[str] = frozenset({
    "dye", "dyed", "colour", "color", "recolour", "recolor", "tint", "tinted", "lipstick", "blush",
    "eyeshadow", "eye shadow", "eyeliner", "mascara", "highlights", "paint", "colored", "coloured",
})
"""Words that make an edit a colour edit even before a colour is named."""

MAKEUP_WORDS: frozenset[str] = frozenset({"lipstick", "blush", "eyeshadow", "eye shadow", "eyeliner", "mascara",
                                          "lip gloss", "makeup", "highlights", "dye"})
"""Things put on a component that a removal can take off ("no more lipstick")."""

DEFAULT_COLOURS: dict[str, str] = {
    "lipstick": "red", "blush": "pink", "eyeliner": "black", "mascara": "black", "tan": "tan",
}
"""Colour assumed when a makeup word comes without one."""

COLOUR_VERBS: dict[str, str] = {
    "whiten": "white", "whitened": "white", "whitening": "white", "redden": "red", "reddened": "red",
    "blacken": "black", "blackened": "black", "bleach": "platinum", "bleached": "platinum", "yellowed": "yellow",
    "gild": "gold", "gilded": "gold", "whiter": "white", "redder": "red", "pinker": "pink", "bluer": "blue",
    "greener": "green", "yellower": "yellow", "blacker": "black", "rosy": "rose", "ruddy": "red",
}
"""Verbs and comparatives that name a colour ("whiten her teeth", "whiter teeth")."""

LIGHTNESS_WORDS: dict[str, float] = {
    "darker": -1.0, "darken": -1.0, "darkened": -1.0, "dark": -1.0, "deeper": -1.0,
    "lighter": 1.0, "lighten": 1.0, "lightened": 1.0, "light": 1.0, "brighter": 1.0, "brighten": 1.0,
    "paler": 1.0, "pale": 1.0,
}
"""Comparatives that shift the region's own lightness when no colour is named (sign: +1 lighter)."""

LIGHTNESS_STEP = 0.25
"""Oklab lightness shift of a comparative at intensity 1 (default intensity 0.6: 0.15)."""

INTENSITY_WORDS: dict[str, float] = {
    "a tiny bit": 0.2, "tiny bit": 0.2, "a little bit": 0.3, "little bit": 0.3, "a little": 0.3, "a bit": 0.3,
    "a tad": 0.3, "slightly": 0.3, "slight": 0.3, "subtle": 0.3,
    "subtly": 0.3, "faint": 0.3, "faintly": 0.3, "hint of": 0.3, "touch of": 0.3, "gentle": 0.3,
    "gently": 0.3, "barely": 0.2, "mild": 0.35, "mildly": 0.35, "small": 0.35, "little": 0.3,
    "somewhat": 0.45, "moderately": 0.5, "moderate": 0.5, "halfway": 0.5, "half": 0.5, "much": 0.85,
    "very": 0.9, "really": 0.85, "big": 0.9, "huge": 0.95, "wide": 1.0, "broad": 0.9, "strongly": 0.9,
    "strong": 0.9, "a lot": 0.9, "heavily": 0.9, "heavy": 0.9, "intense": 0.9, "intensely": 0.9,
    "dramatic": 0.9, "dramatically": 0.9, "bold": 0.85, "lots": 0.9, "extremely": 1.0, "maximum": 1.0,
    "fully": 1.0, "completely": 1.0, "totally": 1.0, "massive": 1.0, "all the way": 1.0,
}
"""Intensity words -> intensity 0..1 (default DEFAULT_INTENSITY)."""

EXPRESSION_SIZE_WORDS: dict[str, float] = {
    "bigger": 0.85, "wider": 0.9, "widen": 0.9, "widely": 0.9, "broader": 0.9, "broadly": 0.9, "smaller": 0.3,
    "larger": 0.85,
}
"""Size words that say how big an expression is when the clause has one and names no component ("widen
her smile", "smile widely"); elsewhere they are shape words."""

DEFAULT_INTENSITY = 0.6
"""Intensity when no intensity word is given."""

REMOVAL_PATTERN = re.compile(
    r"\b(?:remove\w*|delete\w*|erase\w*|get(?:ting)? rid of|got rid of|take (?:off|away|out)|taking (?:off|away)"
    r"|took (?:off|away)|strip\w* (?:off|away)|shave\w*(?: off)?|wipe\w*(?: off| away)?|lose|ditch|no more|no longer"
    r"|without|no|stop wearing|not wearing|(?:not|never) (?:want|need|have|wear)\w*|anymore|free of|bald|hairless"
    r"|clean shaven|less|fewer|reduce\w*|tone (?:it |them )?down)\b")
"""Cues that take something away: a removal for appearance ("less makeup"), a negative delta for expressions
("smile less")."""

NEGATION_PATTERN = re.compile(r"\b(?:not|never|stop\w*|quit|keep|leave|preserve)\b")
"""Cues that negate: a negative delta for an expression ("don't frown"); an appearance clause with one says what
not to change ("keep her eyebrows brown") and is left out."""

STOPWORDS: frozenset[str] = frozenset("""
a an the her his their its him them she he they it this that these those my your our me us you i we
give make add put change turn let have has had get set keep apply paint colour color into in on of to with
and or but then while also plus as at by for from up down out over some more less look looks looking like
be is are was were being been am do does did so too please can could would should will just now very
person woman man girl boy lady guy someone people avatar character model head expression expressions
same new old little bit lot much one two both each all any other own ever slightly somewhat rather quite
left right side beautiful pretty lovely gorgeous nice cute handsome quickly weird natural realistic
photorealistic style looking want wants wear wears wearing wore need needs should shouldn not don t s
instead again already still even way kind sort thing things something bit lot more most less least
appear appears appearance seem seems become becomes turning making giving adding putting changing wish
okay ok hey hi yes also there here what which who how when where why well maybe perhaps probably
let's lets try go going got take takes taking use using see show shows showing done doing
""".split())
"""Function words and generic verbs that are never looked up by meaning."""


def scan_phrases(words: list[str], table: dict[str, object] | frozenset[str]) -> list[tuple[int, int, str]]:
    """Longest-first phrase matches (start, end, phrase) of up to 4 words, non-overlapping."""
    found: list[tuple[int, int, str]] = []
    i = 0
    while i < len(words):
        for n in (4, 3, 2, 1):
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
    label = " ".join(mods + [" ".join(words[s:e]) for s, e, _ in group])
    return rgb, label
