"""Facial components: the label set shared by the head, the avatar, masks and edit plans.

A label is an int index into COMPONENTS. Groups name sets of labels that people say as one word
("lips", "eyes", "brows").
"""

from __future__ import annotations

import numpy as np

COMPONENTS: tuple[str, ...] = (
    "skin",
    "hair",
    "left_eye",
    "right_eye",
    "left_brow",
    "right_brow",
    "nose",
    "upper_lip",
    "lower_lip",
    "mouth_interior",
    "ears",
    "neck",
    "accessory",
)
"""Component names; a label is the index of its name here."""

LABEL: dict[str, int] = {name: i for i, name in enumerate(COMPONENTS)}

GROUPS: dict[str, tuple[str, ...]] = {
    "lips": ("upper_lip", "lower_lip"),
    "eyes": ("left_eye", "right_eye"),
    "brows": ("left_brow", "right_brow"),
    "mouth": ("upper_lip", "lower_lip", "mouth_interior"),
}
"""Group words that stand for several components."""

PARTS: dict[str, tuple[str, ...]] = {
    "iris": ("left_eye", "right_eye"),
    "sclera": ("left_eye", "right_eye"),
    "teeth": ("mouth_interior",),
}
"""Named parts inside components that an edit can target ("green eyes" colours the irises, not the
whole eyeballs): part -> the components it lies in. The edit stage finds a part's Gaussians."""

COLOURS: dict[str, tuple[int, int, int]] = {
    "skin": (230, 190, 160),
    "hair": (90, 60, 30),
    "left_eye": (40, 120, 220),
    "right_eye": (20, 80, 180),
    "left_brow": (150, 90, 200),
    "right_brow": (110, 60, 170),
    "nose": (240, 150, 60),
    "upper_lip": (220, 40, 60),
    "lower_lip": (170, 20, 40),
    "mouth_interior": (90, 10, 20),
    "ears": (60, 180, 120),
    "neck": (200, 200, 90),
    "accessory": (160, 160, 160),
}
"""Display colour (sRGB 0-255) per component for overlays and swatches."""

COMPONENT_RGB: np.ndarray = np.array([COLOURS[name] for name in COMPONENTS], dtype=np.float32) / 255.0
"""[L, 3] display colours in [0, 1], row = label."""


def label_colours(labels: np.ndarray) -> np.ndarray:
    """[N, 3] float32 display colours in [0, 1] of labels [N] (values outside the label range clamp to it)."""
    return COMPONENT_RGB[np.clip(np.asarray(labels), 0, len(COMPONENTS) - 1)]


def expand(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Component names for a mix of component and group names, in COMPONENTS order.

    Raises ValueError naming any word that is neither.
    """
    wanted: set[str] = set()
    for name in names:
        if name in GROUPS:
            wanted.update(GROUPS[name])
        elif name in LABEL:
            wanted.add(name)
        else:
            known = ", ".join(list(COMPONENTS) + list(GROUPS))
            raise ValueError(f"unknown facial component {name!r}; known: {known}")
    return tuple(c for c in COMPONENTS if c in wanted)


def labels_of(names: list[str] | tuple[str, ...]) -> list[int]:
    """Label indices for component or group names."""
    return [LABEL[c] for c in expand(names)]
