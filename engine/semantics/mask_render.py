"""Rendering a Gaussian selection as a 2D mask at any (time, camera pose).

The selection weights ride along as feature channels, composited with the same alpha weights as
colour, so every mask is occluded by whatever surface is in front of it. A pixel's value is
Σ_i T_i·α_i·w_i: the share of that pixel covered by selected Gaussians (no background term).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from engine.render.camera import Camera
from engine.render.rasterize import render
from engine.render.splats import Splats

MASK_LEVEL = 0.5  # a pixel belongs to a binary mask when at least half of it is covered by the selection


def render_weights(
    splats: Splats,
    camera: Camera,
    weights: Tensor,  # [N] or [N, C] per-Gaussian selection weights in [0, 1]
    backend: str = "auto",
) -> Tensor:
    """[H, W, C] (C = 1 for [N] weights) coverage of each selection per pixel, in [0, 1]."""
    w = weights[:, None] if weights.ndim == 1 else weights
    assert w.ndim == 2 and w.shape[0] == splats.count, f"weights must be [N] or [N, C] with N={splats.count}, got {tuple(weights.shape)}"
    light = replace(splats, sh=splats.sh[:, :1])  # colour unused: degree 0 is cheapest
    with torch.no_grad():
        result = render(light, camera, (0.0, 0.0, 0.0), features=w.to(splats.means), backend=backend)
    assert result.features is not None
    return result.features.clamp(0.0, 1.0)


def render_mask(
    splats: Splats,
    camera: Camera,
    weights: Tensor,  # [N] selection weights
    level: float = MASK_LEVEL,
    backend: str = "auto",
) -> Tensor:
    """[H, W] bool: pixels at least `level` covered by the selection."""
    assert weights.ndim == 1, f"weights must be [N], got {tuple(weights.shape)}"
    return render_weights(splats, camera, weights, backend)[..., 0] >= level


def render_label_map(
    splats: Splats,
    camera: Camera,
    labels: Tensor,  # [N] long component label per Gaussian
    n_labels: int,
    level: float = MASK_LEVEL,
    backend: str = "auto",
) -> Tensor:
    """[H, W] long: the label covering most of each pixel, -1 where less than `level` is covered."""
    assert labels.shape == (splats.count,), f"labels must be [N={splats.count}], got {tuple(labels.shape)}"
    onehot = torch.nn.functional.one_hot(labels.clamp(min=0), n_labels).to(splats.means.dtype)
    return label_map(render_weights(splats, camera, onehot, backend), level)


def label_map(cover: Tensor, level: float = MASK_LEVEL) -> Tensor:
    """[H, W] long: of per-label coverage cover [H, W, C], the label covering most of each pixel, -1 where less
    than `level` is covered in all."""
    index = cover.argmax(dim=-1)
    return torch.where(cover.sum(-1) >= level, index, torch.full_like(index, -1))


def iou(a: Tensor, b: Tensor) -> float:
    """Intersection over union of two bool masks of the same shape (1.0 when both are empty)."""
    assert a.shape == b.shape, f"masks differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}"
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union
