"""Spatial groups of a selection: the separate pieces a person sees as one region each (two eyes, two
ears, two brows), so every keyframe crop frames one piece and a small part gets enough pixels.

The selected Gaussians' rest positions are dropped into a voxel grid (cells 2.5% of the avatar's size);
26-connected occupied cells form a piece. Pieces holding less than `min_share` of the selection are
merged into the nearest larger piece, and at most `max_groups` pieces are kept (the rest join their
nearest kept piece), so stray Gaussians never make a candidate of their own.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor


def spatial_groups(points: Tensor, extent: float, cell_share: float = 0.025, min_share: float = 0.05,
                   max_groups: int = 4) -> Tensor:
    """[P] group index (0 = the largest piece) of points [P, 3]; extent: the avatar's size (same units)."""
    assert points.ndim == 2 and points.shape[1] == 3, f"points must be [P, 3], got {tuple(points.shape)}"
    p = points.shape[0]
    if p == 0:
        return torch.zeros(0, dtype=torch.long)
    cell = max(extent * cell_share, 1e-9)
    ijk = torch.floor((points - points.min(0).values) / cell).long().numpy()
    shape = tuple(int(x) + 1 for x in ijk.max(0))
    if np.prod(shape) > 50_000_000:  # a selection spread over a huge box: one group
        return torch.zeros(p, dtype=torch.long)
    grid = np.zeros(shape, dtype=bool)
    grid[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = True
    labelled, count = ndimage.label(grid, structure=np.ones((3, 3, 3), dtype=bool))
    piece = torch.from_numpy(labelled[ijk[:, 0], ijk[:, 1], ijk[:, 2]].astype(np.int64) - 1)
    if count <= 1:
        return torch.zeros(p, dtype=torch.long)
    sizes = torch.bincount(piece, minlength=count)
    order = torch.argsort(sizes, descending=True)
    keep = [int(i) for i in order[:max_groups] if int(sizes[i]) >= min_share * p] or [int(order[0])]
    centres = torch.stack([points[piece == k].mean(0) for k in keep])  # [G, 3]
    group = torch.full((p,), -1, dtype=torch.long)
    for g, k in enumerate(keep):
        group[piece == k] = g
    rest = group < 0
    if bool(rest.any()):
        group[rest] = torch.cdist(points[rest], centres).argmin(1)
    return group
