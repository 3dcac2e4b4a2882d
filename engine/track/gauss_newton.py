"""Per-frame Levenberg–Marquardt for landmark fitting: converges in a few iterations where Adam needs hundreds.

Each frame's unknowns x_t (rotation, translation in cm, neck, jaw, eyes, expression) only move that
frame's landmarks, so the Jacobian of all frames' residuals is block diagonal: one batched
evaluation at x and at x + h·e_k for every unknown k (set in every frame at once; float64 forward
differences) gives every block [T, R, D]. The robust
Cauchy loss is handled by iteratively reweighted least squares (weight 1 / (1 + |r|²/s²) per point);
priors add to the normal matrix. Temporal smoothness couples neighbouring frames, so with it the
normal equations are block tridiagonal and are solved for the whole chain at once (block Thomas
algorithm): a block-Jacobi sweep, which ties each frame to its neighbours' current values, barely
moves what the frames share, and left the start's error in every frame (synthetic clip, landmarks
exactly the head's, true focal: pitch off by −1.2°, head 1.44° instead of 0.15°). Steps that raise
the cost are refused and the damping grows (per frame without smoothness, for the chain with it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from engine.track.state import PER_FRAME

WIDTHS = {"rotation": 3, "translation": 3, "neck_pose": 3, "jaw_pose": 3, "eyes_pose": 6}
TRANSLATION_UNIT = 0.01  # translation unknowns are centimetres


def pack(values: dict[str, Tensor]) -> Tensor:
    """[T, D] unknowns from per-frame values (translation in metres → cm)."""
    parts = [values[k] / (TRANSLATION_UNIT if k == "translation" else 1.0) for k in PER_FRAME]
    return torch.cat(parts, dim=1)


def unpack(x: Tensor, n_expr: int) -> dict[str, Tensor]:
    """Per-frame values from unknowns x [T, D] (translation back to metres)."""
    out, at = {}, 0
    for k in PER_FRAME:
        width = WIDTHS.get(k, n_expr)
        out[k] = x[:, at : at + width] * (TRANSLATION_UNIT if k == "translation" else 1.0)
        at += width
    return out


STEP = 1e-5  # forward-difference step (unknowns are radians, centimetres and coefficients)


def solve_frames(
    residuals: Callable[[Tensor], Tensor],  # x [N, T, D] float64 -> r [N, T, R]
    x: Tensor,  # [T, D] start
    s2: Tensor,  # [T, R] squared scale of each residual's Cauchy loss s² log(1 + r²/s²)
    prior: Tensor,  # [D] weight of each unknown's squared value
    smooth: float,  # weight of squared differences to the neighbouring frames
    before: Tensor | None,  # [D] the (fixed) frame before the first, or None
    iters: int,
    cancel: Callable[[], bool] | None = None,
) -> Tensor:
    """Levenberg–Marquardt over every frame of x at once; returns the refined [T, D]."""
    t, d = x.shape
    x, s2, prior = x.detach().double(), s2.double(), prior.double()
    eye = torch.eye(d, dtype=x.dtype)
    chained = smooth > 0 and (t > 1 or before is not None)
    damping = torch.full((1 if chained else t,), 1e-3, dtype=x.dtype)
    before = None if before is None else before.double()
    for _ in range(iters):
        if cancel is not None and cancel():
            from engine.track.sources import IngestCancelled

            raise IngestCancelled("tracking cancelled")
        probes = x[None].repeat(d + 1, 1, 1)
        probes[torch.arange(1, d + 1), :, torch.arange(d)] += STEP
        out = residuals(probes)  # [D + 1, T, R]
        r = out[0]
        jac = ((out[1:] - r) / STEP).permute(1, 2, 0)  # [T, R, D]
        w = 1.0 / (1.0 + r.pow(2) / s2)  # IRLS weights of the Cauchy loss log(1 + r²/s²)
        jw = jac * w[..., None]
        h = jw.transpose(1, 2) @ jac + torch.diag_embed(prior.expand(t, d))  # [T, D, D]
        g = (jw * r[..., None]).sum(1) + prior * x  # [T, D]
        scale = torch.diagonal(h, dim1=1, dim2=2).mean(1).clamp(min=1e-9)
        h = h + (damping * scale)[:, None, None] * eye
        if chained:
            nb, count = _neighbours(x, before)
            step = chain_solve(h + smooth * count[:, None, None] * eye, -(g + smooth * (count[:, None] * x - nb)), smooth)
        else:
            step = torch.linalg.solve(h, -g[..., None])[..., 0]
        trial = x + step
        r_new = residuals(trial[None])[0]
        old, new = _cost(r, s2, x, prior), _cost(r_new, s2, trial, prior)
        if chained:
            old, new = (old.sum() + _chain_cost(x, before, smooth))[None], (new.sum() + _chain_cost(trial, before, smooth))[None]
        better = new <= old
        x = torch.where(better[:, None], trial, x)
        damping = torch.where(better, damping / 3.0, damping * 10.0).clamp(1e-7, 1e7)
    return x.float()


def chain_solve(a: Tensor, b: Tensor, smooth: float) -> Tensor:
    """[T, D] solution of the block-tridiagonal system whose diagonal blocks are a [T, D, D] and whose
    off-diagonal blocks are −smooth·I, right-hand side b [T, D] (block Thomas algorithm)."""
    t = a.shape[0]
    c, y = [], []
    for i in range(t):
        m = a[i] if i == 0 else a[i] + smooth * c[-1]
        rhs = b[i] if i == 0 else b[i] + smooth * y[-1]
        inv = torch.linalg.inv(m)
        c.append(-smooth * inv)
        y.append(inv @ rhs)
    out = [y[-1]]
    for i in range(t - 2, -1, -1):
        out.append(y[i] - c[i] @ out[-1])
    return torch.stack(out[::-1])


def _chain_cost(x: Tensor, before: Tensor | None, smooth: float) -> Tensor:
    """The smoothness term's cost ½·smooth·Σ |x_t − x_{t−1}|² along the chain (from `before` when given)."""
    chain = x if before is None else torch.cat([before[None], x])
    return 0.5 * smooth * (chain[1:] - chain[:-1]).pow(2).sum()


def _neighbours(x: Tensor, before: Tensor | None) -> tuple[Tensor, Tensor]:
    """(sum of each frame's neighbours [T, D], their count [T])."""
    nb = torch.zeros_like(x)
    count = torch.zeros(x.shape[0], dtype=x.dtype)
    nb[1:] += x[:-1]
    count[1:] += 1
    nb[:-1] += x[1:]
    count[:-1] += 1
    if before is not None:
        nb[0] += before
        count[0] += 1
    return nb, count


def _cost(r: Tensor, s2: Tensor, x: Tensor, prior: Tensor) -> Tensor:
    """[T] each frame's robust landmark cost and priors."""
    return 0.5 * (s2 * torch.log1p(r.pow(2) / s2)).sum(1) + 0.5 * (prior * x.pow(2)).sum(1)
