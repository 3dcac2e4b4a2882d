"""Weights for Gaussians no view saw, from their nearest seen neighbours (of the same component).

Used by mask lifting (engine.semantics.lift: the back of the hair takes the weight of its visible part)
and by the edit optimisation (engine.edit.optimise: a Gaussian no keyframe reached takes the change of
its nearest reached neighbour).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

FILL_REACH = 0.01  # metres: an unseen Gaussian trusts the nearest seen one of its component this far (fill_unseen)


def fill_unseen(
    weights: Tensor,  # [N] or [N, S] lifted weights
    seen: Tensor,  # [N] bool (or [N, S]: seen by the view each column was lifted from)
    points: Tensor,  # [N, 3] Gaussian positions in one pose (the rest pose: parts stay apart)
    max_distance: float = float("inf"),  # farther than this from any seen Gaussian: weight stays 0
    labels: Tensor | None = None,  # [N] component labels: fill within each component (see below)
    reach: float = FILL_REACH,  # with labels: how far the nearest seen Gaussian of the component is trusted
) -> Tensor:
    """Weights where every unseen Gaussian takes the weight of the nearest seen one (same shape as weights).

    With labels, the source is the nearest seen Gaussian of the same component (the back of the hair
    takes the weight of the visible hair, not of the neck beside it) when it lies within `reach`;
    farther away, the mean weight of the component's seen Gaussians (the hidden part of a component
    follows the share of its visible part that was painted, instead of one stray Gaussian at the
    edge of the view). A label no seen Gaussian carries falls back to the nearest seen Gaussian.
    """
    n = points.shape[0]
    assert points.shape == (n, 3) and weights.shape[0] == n, (
        f"points must be [N, 3] and weights [N] or [N, S] with N={n}, got {tuple(points.shape)}, {tuple(weights.shape)}"
    )
    assert labels is None or labels.shape == (n,), f"labels must be [N={n}], got {tuple(labels.shape)}"
    seen_np = (seen if seen.ndim == 1 else seen.all(dim=1)).detach().cpu().numpy()
    if seen_np.all() or not seen_np.any():
        return weights
    pts = points.detach().cpu().double().numpy()
    w = weights.detach().cpu().double().numpy().reshape(n, -1)
    out = w.copy()
    todo = ~seen_np
    if labels is not None:
        lab = labels.detach().cpu().numpy()
        for value in np.unique(lab[todo]):
            group = lab == value
            if not (group & seen_np).any():
                continue
            targets, d, src = _nearest_seen(pts, seen_np & group, todo & group)
            out[targets] = np.where((d <= reach)[:, None], w[src], w[group & seen_np].mean(axis=0))
            todo &= ~group
    if todo.any():
        targets, d, src = _nearest_seen(pts, seen_np, todo)
        out[targets] = np.where((d <= max_distance)[:, None], w[src], 0.0)
    return torch.from_numpy(out.reshape(weights.shape)).to(weights)


def _nearest_seen(points: np.ndarray, sources: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target indices, distances, nearest source indices) for bool masks sources, targets [N]."""
    from scipy.spatial import cKDTree

    src, dst = np.nonzero(sources)[0], np.nonzero(targets)[0]
    d, j = cKDTree(points[src]).query(points[dst], k=1)
    return dst, d, src[j]
