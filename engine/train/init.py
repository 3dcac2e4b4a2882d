"""Initial Gaussians for training: a few per triangle, grey, flat on the surface."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from engine.avatar.binding import triangle_frames, world_to_local
from engine.avatar.gaussians import BoundGaussians
from engine.head.model import HeadModel


def initial_gaussians(head: HeadModel, verts: Tensor, per_triangle: int, generator: torch.Generator) -> BoundGaussians:
    """`per_triangle` Gaussians on every triangle of the posed mesh verts [V, 3], at random barycentric points."""
    faces = head.faces
    rot, centroid, tri_scale = triangle_frames(verts, faces)
    binding = torch.arange(len(faces)).repeat_interleave(per_triangle)
    n = len(binding)
    u, v = torch.rand(n, generator=generator), torch.rand(n, generator=generator)
    flip = (u + v) > 1
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    if per_triangle == 1:
        u, v = torch.full((n,), 1 / 3), torch.full((n,), 1 / 3)
    tri = verts[faces][binding]
    points = tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0])
    xyz = world_to_local(binding, points, rot, centroid, tri_scale)
    area = 0.5 * torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1).norm(dim=-1)
    sigma = 0.8 * torch.sqrt(area / per_triangle) / tri_scale[binding]
    log_scale = torch.log(torch.stack([sigma, 0.3 * sigma, sigma], dim=1).clamp(min=1e-4))
    rotation = torch.zeros(n, 4)
    rotation[:, 0] = 1
    return BoundGaussians(
        binding=binding,
        xyz=xyz,
        rotation=rotation,
        log_scale=log_scale,
        opacity_logit=torch.full((n,), math.log(0.95 / 0.05)),  # opaque: a surface, not a point cloud
        sh=torch.zeros(n, 16, 3),
        labels=head.face_labels[binding],
    )
