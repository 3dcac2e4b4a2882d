"""Tracking losses: robust landmark reprojection, temporal smoothness, priors, offset smoothness, silhouette."""

from __future__ import annotations

import torch
from torch import Tensor


def robust_landmark_loss(projected: Tensor, observed: Tensor, weights: Tensor, scale: Tensor) -> Tensor:
    """Mean Cauchy loss log(1 + (|r| / s)²) of reprojection residuals, per point weighted.

    projected, observed: [T, P, 2] pixels (observed NaN where a frame has no landmarks);
    weights: [P] per-point weights; scale: [T] residual scale s in pixels per frame.
    """
    assert projected.shape == observed.shape and projected.shape[-1] == 2, (
        f"projected and observed must be [T, P, 2], got {tuple(projected.shape)} and {tuple(observed.shape)}"
    )
    seen = torch.isfinite(observed[..., 0])  # [T, P]
    r = torch.where(seen[..., None], projected - torch.nan_to_num(observed), torch.zeros_like(projected))
    rho = torch.log1p((r**2).sum(-1) / scale[:, None] ** 2)  # [T, P]
    w = weights[None] * seen
    return (w * rho).sum() / w.sum().clamp(min=1e-9)


def temporal_smoothness(values: Tensor, before: Tensor | None = None) -> Tensor:
    """Sum over frames of squared differences between consecutive rows of values [T, D] (the row before
    them, [D], joins the chain when given), divided by the number of rows."""
    chain = values if before is None else torch.cat([before[None], values])
    if chain.shape[0] < 2:
        return values.new_zeros(())
    return (chain[1:] - chain[:-1]).pow(2).sum() / values.shape[0]


def uniform_laplacian(offsets: Tensor, edges: Tensor, degree: Tensor) -> Tensor:
    """[V, 3] umbrella Laplacian (mean of neighbours − vertex) of offsets [V, 3]; edges [E, 2] (both ways)."""
    summed = torch.zeros_like(offsets).index_add_(0, edges[:, 0], offsets[edges[:, 1]])
    return summed / degree[:, None] - offsets


def mesh_edges(faces: Tensor, n_verts: int) -> tuple[Tensor, Tensor]:
    """(directed edges [E, 2] of the triangles, both ways and unique; degree [V] float)."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).long()
    e = torch.unique(torch.cat([e, e.flip(1)]), dim=0)
    degree = torch.zeros(n_verts).index_add_(0, e[:, 0], torch.ones(len(e))).clamp(min=1)
    return e, degree


def silhouette_loss(alpha: Tensor, foreground: Tensor) -> Tensor:
    """Mean rendered coverage outside the foreground: alpha [H, W] × (1 − foreground [H, W]).

    One-sided on purpose: a person's foreground also holds hair, shoulders and clothes the head
    model does not have, so only mesh drawn where there is no person is wrong.
    """
    assert alpha.shape == foreground.shape, f"alpha {tuple(alpha.shape)} and foreground {tuple(foreground.shape)} differ"
    return (alpha * (1.0 - foreground)).mean()
