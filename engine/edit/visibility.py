"""How much of the selected region each candidate view really shows, from cheap low-resolution renders.

Every candidate (time, camera) is rendered small through a camera cropped around the selection, with
the selection weights as a feature channel (the rendered selection mask) and depth. A selected
Gaussian counts as seen when it projects inside the full image and at its projected pixel the
rendered mask reaches 0.5 (it is not covered by unselected Gaussians: the cheek of a turned head,
hair, a hand) and the rendered depth is not in front of it by more than its own thickness (it is not
hidden behind another part of the selection, e.g. the inner lip behind the outer one). No normal test:
occlusion decides, so the back wall of an open mouth counts when the opening shows it, and the far
side of the head never does. Visibility is the selection-weighted share of seen Gaussians. The small renders are kept:
pooled over all views they give the region's colour statistics (editor calibration).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.edit.views import crop_camera
from engine.head.params import FlameParams
from engine.render.rasterize import render

if TYPE_CHECKING:
    from engine.edit.keyframes import View


@dataclass(frozen=True)
class VisibilityReport:
    """Visibility of the selection in every candidate view, with the small renders it came from."""

    visibility: Tensor  # [M] selection-weighted share of selected Gaussians seen, in [0, 1]
    mask_area: Tensor  # [M] rendered selection-mask mass as a share of the small crop's pixels
    images: tuple[Tensor, ...]  # M small crop renders [S, S, 3] (white background)
    masks: tuple[Tensor, ...]  # M rendered selection masks [S, S] in [0, 1]
    seen: Tensor  # [M, P] bool: which of the P selected Gaussians (weight > 0, in index order) each view shows
    weights: Tensor  # [P] selection weights of those Gaussians


def same_frame(a: FlameParams, b: FlameParams) -> bool:
    """Whether two parameter sets hold identical values (so they pose the head identically)."""
    if a is b:
        return True
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, Tensor) or isinstance(y, Tensor):
            if not (isinstance(x, Tensor) and isinstance(y, Tensor) and x.shape == y.shape and torch.equal(x, y)):
                return False
        elif x != y:
            return False
    return True


def _sample(image: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """(values [P], valid [P]) of image [H, W] at pixel coordinates u, v [P] (nearest pixel)."""
    h, w = image.shape
    iu, iv = torch.floor(u).long(), torch.floor(v).long()
    valid = (iu >= 0) & (iu < w) & (iv >= 0) & (iv < h)
    return image[iv.clamp(0, h - 1), iu.clamp(0, w - 1)], valid


@torch.no_grad()
def measure_visibility(avatar: Avatar, views: list[View], selection: Tensor, size: int = 48,
                       backend: str = "auto", core: float = 0.5) -> VisibilityReport:
    """Visibility of the selection (weights [N] in [0, 1]) in every view, from size × size renders."""
    weights = selection.float().cpu()
    n = avatar.gaussians.count
    assert weights.shape == (n,), f"selection must be [N={n}], got {tuple(weights.shape)}"
    picked = weights > 0
    m = len(views)
    if not bool(picked.any()):
        empty = torch.zeros(size, size)
        return VisibilityReport(torch.zeros(m), torch.zeros(m), tuple(torch.ones(size, size, 3) for _ in views),
                                tuple(empty for _ in views), torch.zeros(m, 0, dtype=torch.bool), torch.zeros(0))
    w = weights[picked]
    idx = torch.nonzero(picked).squeeze(1)
    vis, area, images, masks = torch.zeros(m), torch.zeros(m), [], []
    seen_all = torch.zeros(m, idx.shape[0], dtype=torch.bool)
    last: FlameParams | None = None
    for i, view in enumerate(views):
        if last is None or not same_frame(last, view.params):  # views of one frame usually come together
            verts = avatar.posed_vertices(view.params).float()
            splats = avatar.gaussians.deform(verts, avatar.head.faces)
            last = view.params
        means = splats.means[idx]
        cam = view.camera
        crop = crop_camera(cam, means, size, min_fraction=0.0)
        result = render(splats, crop, (1.0, 1.0, 1.0), features=weights[:, None], backend=backend)
        mask = result.features[..., 0].clamp(0, 1)
        images.append(result.rgb)
        masks.append(mask)
        area[i] = mask.sum() / float(size * size)
        pixels, z = cam.project_points(means)
        u, v = pixels[:, 0], pixels[:, 1]
        inside = (z > cam.near) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
        crop_pixels, qz = crop.project_points(means)
        cu, cv, qz = crop_pixels[:, 0], crop_pixels[:, 1], qz.clamp_min(1e-6)
        mask_at, valid = _sample(mask, cu, cv)
        depth_at, _ = _sample(torch.where(result.alpha > 0.05, result.depth, torch.full_like(mask, 1e9)), cu, cv)
        tolerance = 2.0 * splats.scales[idx].max(1).values + 0.005 * qz
        uncovered = valid & (mask_at >= core) & (depth_at >= qz - tolerance)
        seen = inside & uncovered
        seen_all[i] = seen
        vis[i] = (w * seen.float()).sum() / w.sum()
    return VisibilityReport(vis, area, tuple(images), tuple(masks), seen_all, w)
