"""Casting camera rays onto a triangle mesh: which triangle a pixel sees, and where on it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from engine.render.camera import Camera


@dataclass(frozen=True)
class RayHits:
    """First hits of R rays."""

    face: Tensor  # [R] long triangle index, -1 where the ray misses
    bary: Tensor  # [R, 3] barycentric weights of the hit on its triangle (zeros on a miss)
    depth: Tensor  # [R] distance along the (unit) ray, inf on a miss


def pixel_rays(camera: Camera, pixels: Tensor) -> tuple[Tensor, Tensor]:
    """World origins [R, 3] and unit directions [R, 3] of rays through pixel positions [R, 2] (u, v)."""
    assert pixels.ndim == 2 and pixels.shape[1] == 2, f"pixels must be [R, 2], got {tuple(pixels.shape)}"
    c2w = camera.cam_to_world.double()
    x = (pixels[:, 0].double() - camera.cx) / camera.fx
    y = (pixels[:, 1].double() - camera.cy) / camera.fy
    d_cam = torch.stack([x, y, torch.ones_like(x)], dim=1)
    d = torch.nn.functional.normalize(d_cam @ c2w[:3, :3].T, dim=1)
    return c2w[:3, 3].expand_as(d).clone(), d


def cast_rays(origins: Tensor, directions: Tensor, verts: Tensor, faces: Tensor, chunk: int = 64) -> RayHits:
    """First intersection (Möller–Trumbore, both faces count) of rays origins [R, 3] + s·directions [R, 3]
    with the triangles faces [F, 3] of verts [V, 3]; float64 inside."""
    assert origins.shape == directions.shape and origins.shape[-1] == 3, "origins and directions must be [R, 3]"
    tri = verts.double()[faces]  # [F, 3, 3]
    v0, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    faces_out, bary_out, depth_out = [], [], []
    for start in range(0, origins.shape[0], chunk):
        o = origins[start : start + chunk].double()[:, None]  # [r, 1, 3]
        d = directions[start : start + chunk].double()[:, None]
        p = torch.linalg.cross(d.expand(-1, len(e2), -1), e2[None].expand(len(o), -1, -1), dim=-1)  # [r, F, 3]
        det = (e1[None] * p).sum(-1)
        ok = det.abs() > 1e-12
        inv = 1.0 / torch.where(ok, det, torch.ones_like(det))
        s = o - v0[None]
        u = (s * p).sum(-1) * inv
        q = torch.linalg.cross(s, e1[None].expand_as(s), dim=-1)
        v = (d * q).sum(-1) * inv
        t = (e2[None] * q).sum(-1) * inv
        hit = ok & (u >= -1e-9) & (v >= -1e-9) & (u + v <= 1 + 1e-9) & (t > 1e-9)
        t = torch.where(hit, t, torch.full_like(t, float("inf")))
        depth, face = t.min(dim=1)
        rows = torch.arange(len(o))
        uu, vv = u[rows, face], v[rows, face]
        missed = ~torch.isfinite(depth)
        bary = torch.stack([1 - uu - vv, uu, vv], dim=1).clamp(min=0.0)
        bary = bary / bary.sum(1, keepdim=True)
        faces_out.append(torch.where(missed, torch.full_like(face, -1), face))
        bary_out.append(torch.where(missed[:, None], torch.zeros_like(bary), bary))
        depth_out.append(depth)
    return RayHits(torch.cat(faces_out), torch.cat(bary_out), torch.cat(depth_out))


def surface_points(verts: Tensor, faces: Tensor, face: Tensor, bary: Tensor) -> Tensor:
    """[..., 3] points at barycentric bary [..., 3] on triangles face [...] of verts [..., V, 3] (batched over
    leading axes of verts)."""
    corners = verts[..., faces[face], :]  # [..., P, 3, 3]
    return (corners * bary[..., None].to(verts.dtype)).sum(-2)
