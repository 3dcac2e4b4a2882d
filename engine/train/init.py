"""Initial Gaussians for training: a few per triangle, grey, flat on the surface."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from engine.avatar.binding import sample_on_triangles, triangle_areas, triangle_frames, world_to_local
from engine.avatar.gaussians import BoundGaussians
from engine.head.model import HeadModel


def initial_gaussians(head: HeadModel, verts: Tensor, per_triangle: int, generator: torch.Generator) -> BoundGaussians:
    """`per_triangle` Gaussians on every triangle of the posed mesh verts [V, 3], at random barycentric points."""
    faces = head.faces
    rot, centroid, tri_scale = triangle_frames(verts, faces)
    binding = torch.arange(len(faces)).repeat_interleave(per_triangle)
    n = len(binding)
    if per_triangle == 1:
        points = verts[faces].mean(dim=1)
    else:
        points, _, _ = sample_on_triangles(verts, faces, binding, generator)
    xyz = world_to_local(binding, points, rot, centroid, tri_scale)
    area = triangle_areas(verts, faces)[binding]
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
