"""Per-view rendering helpers of the edit stage: crop cameras around the selection, original renders,
selection masks (features channel) and their dilation, and the cheap cull that keeps a crop's render
to the Gaussians it can show (a crop sees a small part of the head; projecting all of it is the cost)."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.render.camera import Camera
from engine.render.rasterize import render
from engine.render.splats import Splats


def dilate(mask: Tensor, radius: int) -> Tensor:
    """[H, W] max-filtered by a (2·radius + 1)² square."""
    if radius <= 0:
        return mask
    return F.max_pool2d(mask[None, None].float(), 2 * radius + 1, 1, radius)[0, 0]


def crop_camera(camera: Camera, points: Tensor, size: int, margin: float = 0.35, min_fraction: float = 0.3) -> Camera:
    """A size × size camera looking at the square around points [P, 3] (projected through camera),
    enlarged by margin on each side and at least min_fraction of the image's shorter side."""
    pixels, depth = camera.project_points(points.float())
    pixels = pixels[depth > camera.near]
    if pixels.shape[0] == 0:
        return camera.resized(size, size)
    u, v = pixels[:, 0], pixels[:, 1]
    u0, u1 = float(u.quantile(0.01)), float(u.quantile(0.99))
    v0, v1 = float(v.quantile(0.01)), float(v.quantile(0.99))
    side = max(u1 - u0, v1 - v0) * (1 + 2 * margin)
    side = max(side, min_fraction * min(camera.width, camera.height))
    cu, cv = (u0 + u1) / 2, (v0 + v1) / 2
    s = size / side
    return replace(camera, fx=camera.fx * s, fy=camera.fy * s, cx=(camera.cx - (cu - side / 2)) * s,
                   cy=(camera.cy - (cv - side / 2)) * s, width=size, height=size)


def crop_photo(photo: Tensor, full: Camera, crop: Camera) -> Tensor:
    """The part of photo [H, W, 3] (taken by `full`) that `crop` sees, at crop's size (white outside)."""
    s = crop.fx / full.fx
    u0, v0 = full.cx - crop.cx / s, full.cy - crop.cy / s
    side_u, side_v = crop.width / s, crop.height / s
    ys = (v0 + (torch.arange(crop.height) + 0.5) * side_v / crop.height) / photo.shape[0] * 2 - 1
    xs = (u0 + (torch.arange(crop.width) + 0.5) * side_u / crop.width) / photo.shape[1] * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx, gy], -1)[None].float()
    out = F.grid_sample(photo.permute(2, 0, 1)[None].float() - 1.0, grid, align_corners=False, padding_mode="zeros")
    return (out[0].permute(1, 2, 0) + 1.0).clamp(0, 1)


def on_screen(splats: Splats, camera: Camera, reach: float = 3.5, pad: float = 2.0) -> Tensor:
    """[N] bool: Gaussians that may touch camera's image (centre in front of it and within `reach` of its
    largest standard deviation, plus pad pixels, of the image). A superset of what the rasterizer draws,
    so rendering only these gives the same image."""
    pixels, z = camera.project_points(splats.means.detach())
    zs = z.clamp_min(camera.near)
    r = reach * splats.scales.detach().max(1).values * max(camera.fx, camera.fy) / zs + pad
    u, v = pixels[:, 0], pixels[:, 1]
    return (z > camera.near) & (z < camera.far) & (u > -r) & (u < camera.width + r) & (v > -r) & (v < camera.height + r)


@torch.no_grad()
def render_view(avatar: Avatar, verts: Tensor, camera: Camera, weights: Tensor,
                background: tuple[float, float, float] = (1.0, 1.0, 1.0), backend: str = "auto") -> tuple[Tensor, Tensor]:
    """(rgb [H, W, 3], selection mask [H, W] in [0, 1]) of the avatar on posed verts [V, 3]."""
    splats = avatar.gaussians.deform(verts, avatar.head.faces)
    keep = on_screen(splats, camera)
    result = render(splats.subset(keep), camera, background, features=weights.float()[keep, None], backend=backend)
    return result.rgb, result.features[..., 0].clamp(0, 1)
