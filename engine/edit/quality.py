"""Figures of an edit's result: how even a colour edit came out over the region's pixels.

`region_colour_within` is the share of the region's pixels (rendered selection mask ≥ `core`, pooled
over views) whose Oklab colour lies within ΔE (100 × Euclidean distance in Oklab) of the pixels' median
colour: 1.0 for one even colour, lower when specks of the old colour or stray hues remain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from engine.edit.colour_space import srgb_to_oklab


@dataclass(frozen=True)
class RegionColour:
    """The region's colour over several views."""

    share: float  # share of region pixels within `delta_e` of the median colour
    median: Tensor  # [3] median Oklab (L, a, b) of the region's pixels
    median_rgb: Tensor  # [3] the median colour as sRGB in [0, 1]
    pixels: int  # region pixels counted


def region_pixels(images: list[Tensor], masks: list[Tensor], core: float = 0.5) -> Tensor:
    """[P, 3] Oklab of the pixels of images [H, W, 3] where their masks [H, W] reach core."""
    labs = []
    for image, mask in zip(images, masks, strict=True):
        assert image.ndim == 3 and image.shape[2] == 3 and mask.shape == image.shape[:2], (
            f"image must be [H, W, 3] with mask [H, W], got {tuple(image.shape)}, {tuple(mask.shape)}")
        labs.append(srgb_to_oklab(image[mask >= core].float()))
    return torch.cat(labs) if labs else torch.zeros(0, 3)


def region_colour_within(images: list[Tensor], masks: list[Tensor], delta_e: float = 10.0,
                         core: float = 0.5) -> RegionColour:
    """How even the region's colour is over views (images [H, W, 3] sRGB, masks [H, W] selection masks)."""
    from engine.edit.colour_space import oklab_to_srgb

    lab = region_pixels(images, masks, core)
    if lab.shape[0] == 0:
        return RegionColour(float("nan"), torch.full((3,), float("nan")), torch.full((3,), float("nan")), 0)
    median = lab.median(0).values
    share = float(((lab - median).norm(dim=1) * 100.0 <= delta_e).float().mean())
    return RegionColour(share, median, oklab_to_srgb(median[None])[0], int(lab.shape[0]))
