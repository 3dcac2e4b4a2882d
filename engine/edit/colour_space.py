"""Colour helpers for direct adjustments: SH DC <-> display colour, sRGB <-> linear, Oklab, luma.

Display colour is what the rasterizer composites for the view-independent part of a Gaussian:
rgb = 0.5 + SH_C0 · DC (sRGB-encoded values, as images are written straight to PNG).
Oklab (Björn Ottosson, 2020) is used where a perceptual split into lightness L and the opponent
axes a (green–red) and b (blue–yellow) helps: tint, saturation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from engine.render.splats import SH_C0, dc_to_rgb, rgb_to_dc  # noqa: F401  (the SH DC convention, re-exported)

LUMA = (0.2126, 0.7152, 0.0722)
"""Rec. 709 luma weights."""

_LMS_FROM_LINEAR = (
    (0.4122214708, 0.5363325363, 0.0514459929),
    (0.2119034982, 0.6806995451, 0.1073969566),
    (0.0883024619, 0.2817188376, 0.6299787005),
)
_OKLAB_FROM_LMS = (
    (0.2104542553, 0.7936177850, -0.0040720468),
    (1.9779984951, -2.4285922050, 0.4505937099),
    (0.0259040371, 0.7827717662, -0.8086757660),
)
_LMS_FROM_OKLAB = (
    (1.0, 0.3963377774, 0.2158037573),
    (1.0, -0.1055613458, -0.0638541728),
    (1.0, -0.0894841775, -1.2914855480),
)
_LINEAR_FROM_LMS = (
    (4.0767416621, -3.3077115913, 0.2309699292),
    (-1.2684380046, 2.6097574011, -0.3413193965),
    (-0.0041960863, -0.7034186147, 1.7076147010),
)


def _mat(rows: tuple[tuple[float, ...], ...], like: Tensor) -> Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def srgb_to_linear(c: Tensor) -> Tensor:
    """Linear light [..., 3] of sRGB-encoded values [..., 3] (clamped to [0, 1] first)."""
    c = c.clamp(0.0, 1.0)
    return torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: Tensor) -> Tensor:
    """sRGB-encoded values [..., 3] of linear light [..., 3] (clamped to [0, 1] first)."""
    c = c.clamp(0.0, 1.0)
    return torch.where(c <= 0.0031308, c * 12.92, 1.055 * c.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def linear_to_oklab(c: Tensor) -> Tensor:
    """Oklab (L, a, b) [..., 3] of linear sRGB [..., 3]."""
    lms = c @ _mat(_LMS_FROM_LINEAR, c).T
    return torch.sign(lms) * lms.abs() ** (1 / 3) @ _mat(_OKLAB_FROM_LMS, c).T


def oklab_to_linear(lab: Tensor) -> Tensor:
    """Linear sRGB [..., 3] of Oklab (L, a, b) [..., 3] (may leave [0, 1] for out-of-gamut colours)."""
    lms = (lab @ _mat(_LMS_FROM_OKLAB, lab).T) ** 3
    return lms @ _mat(_LINEAR_FROM_LMS, lab).T


def srgb_to_oklab(c: Tensor) -> Tensor:
    """Oklab [..., 3] of sRGB-encoded colours [..., 3] (clamped to [0, 1])."""
    return linear_to_oklab(srgb_to_linear(c))


def oklab_to_srgb(lab: Tensor) -> Tensor:
    """sRGB-encoded colours [..., 3] in [0, 1] of Oklab [..., 3] (clipped into the gamut)."""
    return linear_to_srgb(oklab_to_linear(lab))


def image_delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[...] ΔE (100 × Euclidean distance in Oklab) between two uint8 sRGB images [..., 3]."""
    assert a.shape == b.shape and a.shape[-1] == 3, f"images must be [..., 3] of one shape, got {a.shape}, {b.shape}"
    lab = lambda x: srgb_to_oklab(torch.from_numpy(x.astype(np.float32) / 255.0))
    return (100 * torch.linalg.norm(lab(a) - lab(b), dim=-1)).numpy()


def luma(c: Tensor) -> Tensor:
    """Rec. 709 luma [...] of colours [..., 3]."""
    return c @ torch.tensor(LUMA, dtype=c.dtype, device=c.device)


# --- grading operations on display colours rgb [M, 3]; each is the identity at its neutral value ---


def weighted_mean(values: Tensor, weights: Tensor) -> Tensor:
    """Mean [...] over rows of values [M, ...] weighted by weights [M] (0 when the weights sum to 0)."""
    total = weights.sum().clamp_min(1e-12)
    return (values * weights.reshape(-1, *([1] * (values.ndim - 1)))).sum(0) / total


def levels(rgb: Tensor, black: float, white: float) -> Tensor:
    """Input levels: black -> 0, white -> 1, linear between, clipped to [0, 1]. rgb [M, 3]."""
    if white <= black:
        raise ValueError(f"white point ({white}) must be above black point ({black})")
    return ((rgb - black) / (white - black)).clamp(0.0, 1.0)


def brightness(rgb: Tensor, amount: float) -> Tensor:
    """Exposure: linear-light gain 2^(2·amount) (amount in [-1, 1] is ±2 stops). rgb [M, 3]."""
    return linear_to_srgb(srgb_to_linear(rgb) * 2.0 ** (2.0 * amount))


def contrast(rgb: Tensor, amount: float, pivot: Tensor | float) -> Tensor:
    """Scale distances from pivot (a luma) by 1 + amount (amount in [-1, 1]), clipped to [0, 1]. rgb [M, 3]."""
    return ((rgb - pivot) * (1.0 + amount) + pivot).clamp(0.0, 1.0)


def saturation(rgb: Tensor, amount: float) -> Tensor:
    """Scale Oklab chroma by 1 + amount (−1 gives grey of the same lightness). rgb [M, 3]."""
    lab = srgb_to_oklab(rgb)
    lab = torch.cat([lab[:, :1], lab[:, 1:] * (1.0 + amount)], dim=1)
    return oklab_to_srgb(lab)


def temperature(rgb: Tensor, amount: float) -> Tensor:
    """White balance: linear-light gains (1 + 0.3a, 1, 1 − 0.3a), normalised to keep the luma of white.

    amount in [-1, 1]: positive is warmer (redder), negative cooler (bluer). rgb [M, 3].
    """
    gains = torch.tensor([1.0 + 0.3 * amount, 1.0, 1.0 - 0.3 * amount], dtype=rgb.dtype, device=rgb.device)
    gains = gains / luma(gains)
    return linear_to_srgb(srgb_to_linear(rgb) * gains)


def tint(rgb: Tensor, target: Tensor, strength: float, weights: Tensor) -> Tensor:
    """Move colours toward target (sRGB [3]) by strength in [0, 1], keeping their texture.

    The tinted colour takes the target's Oklab hue and chroma (a, b) and the target's lightness
    shifted by each colour's difference from the selection's mean lightness (weights [M]), so
    strands, pores and shading survive a tint. rgb [M, 3].
    """
    lab = srgb_to_oklab(rgb)
    goal = srgb_to_oklab(target.to(rgb)[None])[0]
    mean_l = weighted_mean(lab[:, 0], weights)
    tinted = torch.stack([lab[:, 0] - mean_l + goal[0], goal[1].expand_as(lab[:, 0]), goal[2].expand_as(lab[:, 0])], 1)
    return torch.lerp(rgb, oklab_to_srgb(tinted), strength)
