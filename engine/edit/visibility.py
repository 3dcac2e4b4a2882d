"""How much of the selected region each candidate view really shows, from cheap low-resolution renders.

A candidate is a (time, camera) view framing one spatial group of the selection (engine.edit.regions:
each eye, each ear on its own). Every candidate is rendered small through a camera cropped around its
group, with the selection weights as a feature channel (the rendered selection mask) and depth.

Visibility is judged by what a person sees: the region's rendered pixels, i.e. the pixels where the
rendered selection mask reaches `core` (the region is in front there, not covered by the lids, the
cheek of a turned head, hair), counted in pixels of the full view. A mostly hidden eyeball therefore
counts as visible when its front shows. `visibility` is that area relative to the largest area any
candidate shows of the same group (so the frontal view of each eye scores 1).

Per Gaussian, for coverage: a selected Gaussian of the group counts as seen when it projects inside the
full image and at its projected pixel the mask reaches `core` and the rendered depth is not in front
of it by more than its own thickness (it is not hidden behind another part of the selection, e.g. the
inner lip behind the outer one). The small renders are kept: pooled over all views they give the
region's colour statistics (editor calibration).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.edit.views import crop_camera, on_screen
from engine.head.params import FlameParams
from engine.render.camera import Camera
from engine.render.rasterize import render

if TYPE_CHECKING:
    from engine.edit.keyframes import View


@dataclass(frozen=True)
class VisibilityReport:
    """Visibility of the selection in every candidate view, with the small renders it came from."""

    visibility: Tensor  # [M] visible region area over the largest area any candidate shows of its group, in [0, 1]
    pixels: Tensor  # [M] visible region area in pixels of the full view (rendered mask ≥ core)
    mask_area: Tensor  # [M] rendered selection-mask mass as a share of the small crop's pixels
    images: tuple[Tensor, ...]  # M small crop renders [S, S, 3] (white background)
    masks: tuple[Tensor, ...]  # M rendered selection masks [S, S] in [0, 1]
    seen: Tensor  # [M, P] bool: which of the P selected Gaussians (weight > 0, in index order) each view shows
    weights: Tensor  # [P] selection weights of those Gaussians
    groups: Tensor  # [P] spatial group of each of those Gaussians


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


def _empty(views: list[View], size: int) -> VisibilityReport:
    m, empty = len(views), torch.zeros(size, size)
    return VisibilityReport(torch.zeros(m), torch.zeros(m), torch.zeros(m), tuple(torch.ones(size, size, 3) for _ in views),
                            tuple(empty for _ in views), torch.zeros(m, 0, dtype=torch.bool), torch.zeros(0),
                            torch.zeros(0, dtype=torch.long))


@torch.no_grad()
def measure_visibility(avatar: Avatar, views: list[View], selection: Tensor, size: int = 48,
                       backend: str = "auto", core: float = 0.5, groups: Tensor | None = None) -> VisibilityReport:
    """Visibility of the selection (weights [N] in [0, 1]) in every view, from size × size renders.

    groups: [P] spatial group of each selected Gaussian (weight > 0, index order); None: one group.
    A view frames the group its `group` field names."""
    weights = selection.float().cpu()
    n = avatar.gaussians.count
    assert weights.shape == (n,), f"selection must be [N={n}], got {tuple(weights.shape)}"
    picked = weights > 0
    if not bool(picked.any()):
        return _empty(views, size)
    w = weights[picked]
    idx = torch.nonzero(picked).squeeze(1)
    groups = torch.zeros(idx.shape[0], dtype=torch.long) if groups is None else groups.long().cpu()
    assert groups.shape == idx.shape, f"groups must be [P={idx.shape[0]}], got {tuple(groups.shape)}"
    m = len(views)
    pixels, area, images, masks = torch.zeros(m), torch.zeros(m), [], []
    seen_all = torch.zeros(m, idx.shape[0], dtype=torch.bool)
    last: FlameParams | None = None
    for i, view in enumerate(views):
        if last is None or not same_frame(last, view.params):  # views of one frame usually come together
            splats = avatar.gaussians.deform(avatar.posed_vertices(view.params).float(), avatar.head.faces)
            last = view.params
        mine = groups == view.group
        means = splats.means[idx]
        cam = view.camera
        crop = crop_camera(cam, means[mine], size, min_fraction=0.0)
        keep = on_screen(splats, crop)
        result = render(splats.subset(keep), crop, (1.0, 1.0, 1.0), features=weights[keep, None], backend=backend)
        mask = result.features[..., 0].clamp(0, 1)
        images.append(result.rgb)
        masks.append(mask)
        area[i] = mask.sum() / float(size * size)
        scale = crop.fx / cam.fx  # crop pixels per full-view pixel
        pixels[i] = float((mask >= core).sum()) / scale**2
        seen_all[i] = mine & _seen(splats.scales[idx], means, cam, crop, mask, result.depth, result.alpha, core)
    vis = torch.zeros(m)
    group_of_view = torch.tensor([v.group for v in views], dtype=torch.long)
    for g in torch.unique(group_of_view).tolist():
        at = group_of_view == g
        vis[at] = pixels[at] / pixels[at].max().clamp_min(1e-9)
    return VisibilityReport(vis, pixels, area, tuple(images), tuple(masks), seen_all, w, groups)


def _seen(scales: Tensor, means: Tensor, cam: Camera, crop: Camera, mask: Tensor, depth: Tensor, alpha: Tensor,
          core: float) -> Tensor:
    """[P] bool: which Gaussians (means [P, 3], scales [P, 3]) show in the full view `cam`, judged on the crop's
    render (mask [S, S], depth [S, S], alpha [S, S])."""
    pixels, z = cam.project_points(means)
    u, v = pixels[:, 0], pixels[:, 1]
    inside = (z > cam.near) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
    crop_pixels, qz = crop.project_points(means)
    qz = qz.clamp_min(1e-6)
    mask_at, valid = _sample(mask, crop_pixels[:, 0], crop_pixels[:, 1])
    depth_at, _ = _sample(torch.where(alpha > 0.05, depth, torch.full_like(mask, 1e9)), crop_pixels[:, 0],
                          crop_pixels[:, 1])
    tolerance = 2.0 * scales.max(1).values + 0.005 * qz
    return inside & valid & (mask_at >= core) & (depth_at >= qz - tolerance)
