"""gsplat CUDA backend: only imported and called when CUDA is available and the splats are on CUDA.

Uses gsplat's low-level ops (fully_fused_projection, isect_tiles, isect_offset_encode,
rasterize_to_pixels) rather than gsplat.rasterization, so that the [N, 2] means2d tensor we return is
the one the rasterizer consumes (its .grad is filled by backward, for densification). Colours come from
our own SH evaluation (engine/render/projection.py) so rgb, camera z and extra features are composited
in one call as plain channels; background and depth normalisation happen in engine/render/rasterize.py
exactly as for the other backends. gsplat's kernel clamps alpha at 0.999 (ours 0.99) and bounds
Gaussians by its own radii. Untested here: this machine has no GPU.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from engine.render.camera import Camera
from engine.render.constants import LOWPASS_EPS, TILE
from engine.render.projection import sh_to_rgb
from engine.render.splats import Splats


def render_gsplat(
    splats: Splats, camera: Camera, features: Tensor | None  # features: [N, C]
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Image [H, W, 3 + 1 + C] (rgb, z, features; no background), alpha [H, W], means2d [N, 2], radii [N]."""
    if not (torch.cuda.is_available() and splats.means.is_cuda):
        raise RuntimeError("render_gsplat needs CUDA and splats on a CUDA device")
    from gsplat.cuda._wrapper import fully_fused_projection, isect_offset_encode, isect_tiles, rasterize_to_pixels

    dev, dt = splats.means.device, splats.means.dtype
    w, h = camera.width, camera.height
    w2c = camera.world_to_cam.to(device=dev, dtype=dt)
    ks = camera.K.to(device=dev, dtype=dt)
    radii, means2d_c, depths, conics, _ = fully_fused_projection(
        splats.means, None, splats.quats, splats.scales, w2c[None], ks[None], w, h,
        eps2d=LOWPASS_EPS, near_plane=camera.near, far_plane=camera.far, packed=False,
        opacities=splats.opacities,
    )  # radii [1, N, 2], means2d [1, N, 2], depths [1, N], conics [1, N, 3]
    means2d = means2d_c[0]  # [N, 2]
    if means2d.requires_grad:
        means2d.retain_grad()
    rgb = sh_to_rgb(splats.sh, splats.means, torch.linalg.inv(w2c)[:3, 3])
    channels = [rgb, depths[0][:, None]] + ([features.to(dt)] if features is not None else [])
    colors = torch.cat(channels, dim=-1)  # [N, 4 + C]
    tw, th = math.ceil(w / TILE), math.ceil(h / TILE)
    _, isect_ids, flatten_ids = isect_tiles(means2d[None], radii, depths, TILE, tw, th)
    offsets = isect_offset_encode(isect_ids, 1, tw, th).reshape(1, th, tw)
    img, alpha = rasterize_to_pixels(
        means2d[None], conics, colors[None], splats.opacities[None], w, h, TILE, offsets, flatten_ids
    )  # [1, H, W, D], [1, H, W, 1]
    radii_n = radii[0].max(dim=-1).values if radii.ndim == 3 else radii[0]
    return img[0], alpha[0, ..., 0], means2d, radii_n.to(torch.int32)
