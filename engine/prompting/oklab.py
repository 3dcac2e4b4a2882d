"""Colours in Oklab without torch: sRGB <-> Oklab for one colour, lightness shifts ("darker"), and the
colour family a colour belongs to ("green", "blonde"...), judged by perceptual distance.

Oklab (Björn Ottosson, 2020): L is perceived lightness (0 black .. 1 white), a is green–red, b is
blue–yellow. engine/edit/colour_space.py holds the same transform for tensors.
"""

from __future__ import annotations

import math

RGB = tuple[int, int, int]
Lab = tuple[float, float, float]

_LMS_FROM_LINEAR = ((0.4122214708, 0.5363325363, 0.0514459929), (0.2119034982, 0.6806995451, 0.1073969566),
                    (0.0883024619, 0.2817188376, 0.6299787005))
_OKLAB_FROM_LMS = ((0.2104542553, 0.7936177850, -0.0040720468), (1.9779984951, -2.4285922050, 0.4505937099),
                   (0.0259040371, 0.7827717662, -0.8086757660))
_LMS_FROM_OKLAB = ((1.0, 0.3963377774, 0.2158037573), (1.0, -0.1055613458, -0.0638541728),
                   (1.0, -0.0894841775, -1.2914855480))
_LINEAR_FROM_LMS = ((4.0767416621, -3.3077115913, 0.2309699292), (-1.2684380046, 2.6097574011, -0.3413193965),
                    (-0.0041960863, -0.7034186147, 1.7076147010))


def _apply(m: tuple[tuple[float, ...], ...], v: tuple[float, ...]) -> tuple[float, float, float]:
    return tuple(sum(m[r][c] * v[c] for c in range(3)) for r in range(3))  # type: ignore[return-value]


def _to_linear(c: float) -> float:
    c = min(1.0, max(0.0, c))
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _to_srgb(c: float) -> float:
    c = min(1.0, max(0.0, c))
    return c * 12.92 if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055


def to_oklab(rgb: RGB) -> Lab:
    """Oklab (L, a, b) of an sRGB 0-255 colour."""
    lms = _apply(_LMS_FROM_LINEAR, tuple(_to_linear(c / 255.0) for c in rgb))
    return _apply(_OKLAB_FROM_LMS, tuple(math.copysign(abs(x) ** (1 / 3), x) for x in lms))


def from_oklab(lab: Lab) -> RGB:
    """sRGB 0-255 of an Oklab colour (clipped into the gamut)."""
    lms = tuple(x ** 3 for x in _apply(_LMS_FROM_OKLAB, lab))
    linear = _apply(_LINEAR_FROM_LMS, lms)
    return tuple(int(round(255 * _to_srgb(c))) for c in linear)  # type: ignore[return-value]


def shift_lightness(rgb: RGB, delta: float) -> RGB:
    """The colour with its Oklab lightness moved by delta (negative: darker), hue kept."""
    lab = to_oklab(rgb)
    return from_oklab((min(1.0, max(0.0, lab[0] + delta)), lab[1], lab[2]))


def delta_e(a: RGB, b: RGB) -> float:
    """Euclidean distance in Oklab (x100 reads like ΔE: ~2 is a just-noticeable difference)."""
    la, lb = to_oklab(a), to_oklab(b)
    return 100.0 * math.dist(la, lb)


FAMILIES: dict[str, tuple[RGB, ...]] = {
    "red": ((200, 30, 35), (140, 20, 35), (235, 50, 40), (85, 10, 25)),
    "pink": ((245, 160, 190), (230, 80, 150), (250, 200, 215)),
    "orange": ((240, 130, 30), (250, 120, 90), (200, 90, 30), (250, 185, 145)),
    "yellow": ((245, 220, 40), (250, 240, 120)),
    "gold": ((210, 170, 60), (180, 140, 40)),
    "green": ((40, 160, 60), (120, 200, 60), (30, 100, 50), (160, 225, 180), (120, 130, 50),
              (150, 175, 130)),
    "teal": ((0, 128, 128), (60, 200, 200), (0, 190, 210)),
    "blue": ((35, 80, 210), (20, 30, 110), (120, 180, 240), (60, 120, 230), (170, 210, 240)),
    "purple": ((125, 40, 165), (185, 160, 225), (80, 25, 130), (200, 40, 190), (130, 60, 110)),
    "brown": ((110, 65, 30), (70, 40, 20), (150, 95, 55), (140, 60, 35)),
    "blonde": ((235, 205, 130), (225, 195, 150), (200, 160, 90)),
    "beige": ((210, 165, 125), (225, 205, 170), (215, 160, 140)),
    "black": ((20, 20, 22), (35, 30, 30)),
    "grey": ((130, 130, 130), (60, 60, 64), (190, 190, 196)),
    "white": ((245, 245, 245), (240, 235, 220)),
}
"""Colour families and a few sRGB prototypes each (dark, mid and light members where they differ)."""

FAMILY_LIGHTNESS_WEIGHT = 0.5
"""Weight of the lightness difference against the hue/chroma plane when finding a colour's family (pale
and deep shades of one hue stay in its family)."""


def family_of(rgb: RGB) -> str:
    """The family of FAMILIES whose nearest prototype is closest to the colour in Oklab (lightness
    weighted by FAMILY_LIGHTNESS_WEIGHT)."""
    lab = to_oklab(rgb)
    w = FAMILY_LIGHTNESS_WEIGHT
    best, best_d = "", math.inf
    for name, protos in FAMILIES.items():
        for proto in protos:
            p = to_oklab(proto)
            d = math.hypot(w * (lab[0] - p[0]), lab[1] - p[1], lab[2] - p[2])
            if d < best_d:
                best, best_d = name, d
    return best
