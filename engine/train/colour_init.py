"""Initial Gaussian colours from the training images (instead of grey), as 3DGS takes point colours."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.data.frames import LoadedFrame



def colours_from_views(points: Tensor, normals: Tensor, frames: list[LoadedFrame]) -> Tensor:
    """[N, 3] colour for surface points [N, 3] with unit normals [N, 3]: the pixel of the view that
    faces each point most directly (grey 0.5 where no view sees the point's front)."""
    best = torch.full((points.shape[0],), 0.05)
    colour = torch.full((points.shape[0], 3), 0.5)
    for frame in frames:
        cam = frame.camera
        pixels, depth = cam.project_points(points)
        u, v = pixels[:, 0], pixels[:, 1]
        to_cam = F.normalize(cam.position.to(points.dtype) - points, dim=-1)
        facing = (normals * to_cam).sum(-1)
        inside = (depth > cam.near) & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
        better = inside & (facing > best)
        if not better.any():
            continue
        grid = torch.stack([u / cam.width * 2 - 1, v / cam.height * 2 - 1], dim=-1)[None, None]  # [1, 1, N, 2]
        image = frame.image.permute(2, 0, 1)[None]
        sampled = F.grid_sample(image, grid.to(image.dtype), align_corners=False, mode="bilinear")[0, :, 0].T
        colour[better] = sampled[better]
        best[better] = facing[better]
    return colour
