"""Colour words -> sRGB: named colours, modifiers ("bright", "dark", "pastel"...) and hex codes."""

from __future__ import annotations

import colorsys
import re

RGB = tuple[int, int, int]

NAMED_COLOURS: dict[str, RGB] = {
    # reds and pinks
    "red": (210, 25, 35), "crimson": (190, 20, 50), "scarlet": (235, 35, 20), "cherry": (200, 20, 45),
    "ruby": (175, 15, 55), "burgundy": (120, 20, 40), "maroon": (128, 0, 20), "wine": (115, 25, 45),
    "oxblood": (100, 20, 20), "vermilion": (225, 60, 35), "brick": (170, 60, 45), "cerise": (220, 30, 100),
    "pink": (245, 150, 185), "hot pink": (255, 60, 160), "rose": (230, 90, 130), "magenta": (220, 20, 180),
    "fuchsia": (235, 40, 190), "coral": (250, 120, 95), "salmon": (245, 135, 115), "peach": (250, 190, 150),
    "baby pink": (250, 190, 210), "blush pink": (240, 170, 180),
    # oranges, yellows, golds
    "orange": (245, 130, 20), "tangerine": (250, 140, 30), "apricot": (250, 180, 130), "amber": (255, 180, 20),
    "rust": (170, 70, 30), "terracotta": (200, 100, 70), "yellow": (245, 220, 40), "lemon": (250, 240, 80),
    "mustard": (205, 165, 40), "ochre": (200, 140, 40), "gold": (212, 175, 55), "golden": (218, 165, 40),
    # greens and teals
    "green": (40, 160, 60), "lime": (150, 220, 40), "emerald": (20, 150, 90), "olive": (120, 125, 40),
    "forest green": (35, 90, 45), "sage": (150, 175, 130), "jade": (0, 160, 110), "mint": (150, 230, 190),
    "seafoam": (140, 220, 190), "khaki": (170, 165, 100), "teal": (0, 128, 128), "turquoise": (50, 210, 200),
    "cyan": (0, 200, 220), "aqua": (40, 220, 210),
    # blues
    "blue": (35, 80, 210), "navy": (20, 30, 110), "sky blue": (120, 190, 240), "cobalt": (0, 70, 170),
    "azure": (40, 130, 240), "sapphire": (20, 60, 160), "cerulean": (40, 120, 190), "royal blue": (40, 70, 200),
    "baby blue": (160, 200, 240), "ice blue": (165, 215, 240), "electric blue": (40, 110, 255),
    "midnight blue": (25, 25, 80), "denim": (60, 95, 150), "ultramarine": (40, 40, 190),
    "periwinkle": (150, 160, 230), "steel blue": (70, 130, 180),
    # purples
    "indigo": (75, 20, 140), "violet": (140, 70, 200), "purple": (125, 40, 165), "lavender": (185, 160, 225),
    "lilac": (200, 165, 220), "plum": (130, 50, 110), "mauve": (180, 130, 160), "orchid": (200, 110, 200),
    "amethyst": (150, 100, 200), "aubergine": (80, 30, 70), "eggplant": (80, 30, 70),
    # browns, hair and skin tones
    "brown": (120, 70, 35), "chocolate": (95, 50, 25), "chestnut": (130, 60, 35), "auburn": (145, 55, 30),
    "mahogany": (100, 35, 25), "copper": (185, 100, 50), "bronze": (170, 115, 50), "hazel": (140, 110, 50),
    "coffee": (110, 75, 50), "espresso": (60, 40, 30), "cocoa": (110, 70, 50), "tan": (205, 160, 115),
    "beige": (225, 205, 170), "sand": (210, 190, 150), "taupe": (140, 120, 105), "caramel": (190, 125, 60),
    "honey": (215, 160, 70), "ginger": (195, 90, 35), "blonde": (235, 205, 130), "blond": (235, 205, 130),
    "strawberry blonde": (220, 150, 100), "ash blonde": (200, 190, 160), "platinum": (230, 228, 215),
    "brunette": (90, 55, 30), "nude": (215, 160, 140),
    # neutrals
    "black": (20, 20, 22), "jet black": (10, 10, 12), "raven": (15, 15, 25), "ebony": (30, 25, 25),
    "onyx": (20, 20, 25), "charcoal": (55, 55, 60), "graphite": (65, 65, 70), "slate": (100, 110, 125),
    "grey": (130, 130, 130), "gray": (130, 130, 130), "ash grey": (170, 170, 165), "silver": (192, 192, 200),
    "white": (245, 245, 245), "snow white": (250, 250, 250), "ivory": (250, 245, 225), "cream": (245, 235, 200),
    "rainbow": (200, 100, 200),
}
"""Colour names (one or two words) and their sRGB values."""

MODIFIERS: dict[str, tuple[float, float, float]] = {
    # word: (saturation factor, value factor, mix with white 0..1)
    "bright": (1.15, 1.15, 0.0),
    "vivid": (1.25, 1.1, 0.0),
    "neon": (1.4, 1.25, 0.0),
    "hot": (1.2, 1.1, 0.0),
    "dark": (1.0, 0.6, 0.0),
    "deep": (1.15, 0.7, 0.0),
    "light": (0.8, 1.1, 0.35),
    "pale": (0.7, 1.05, 0.35),
    "pastel": (0.7, 1.05, 0.35),
    "soft": (0.8, 1.05, 0.2),
    "muted": (0.55, 0.9, 0.0),
    "dusty": (0.5, 0.9, 0.1),
    "rich": (1.1, 0.85, 0.0),
    "darker": (1.0, 0.6, 0.0),
    "deeper": (1.15, 0.7, 0.0),
    "lighter": (0.8, 1.1, 0.35),
    "brighter": (1.15, 1.15, 0.0),
    "paler": (0.7, 1.05, 0.35),
}
"""Colour modifiers as HSV adjustments."""

_HEX = re.compile(r"#?([0-9a-fA-F]{6})\b")


def hex_to_rgb(text: str) -> RGB | None:
    """"#ff8800" or "ff8800" -> (255, 136, 0); None if the text is not a hex colour."""
    m = _HEX.fullmatch(text.strip())
    if m is None:
        return None
    h = m.group(1)
    return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))


def apply_modifier(rgb: RGB, modifier: str) -> RGB:
    """Adjust a colour by a modifier word from MODIFIERS (unknown words raise KeyError)."""
    sat_f, val_f, white = MODIFIERS[modifier]
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    r, g, b = colorsys.hsv_to_rgb(h, min(1.0, s * sat_f), min(1.0, v * val_f))
    out = [(1.0 - white) * c + white for c in (r, g, b)]
    return tuple(int(round(255 * min(1.0, max(0.0, c)))) for c in out)  # type: ignore[return-value]


def mix(colours: list[RGB]) -> RGB:
    """Average of several colours ("blue-green")."""
    n = len(colours)
    return tuple(int(round(sum(c[i] for c in colours) / n)) for i in range(3))  # type: ignore[return-value]


def colour_from_text(text: str) -> RGB | None:
    """A colour from free text: hex code, "bright red", "blue-green", "reddish"; None if none."""
    from engine.prompting.vocab import find_colour  # the word scanner lives with the vocabulary

    hex_rgb = hex_to_rgb(text)
    if hex_rgb is not None:
        return hex_rgb
    found = find_colour(text.lower().replace("-", " ").split())
    return None if found is None else found[0]
