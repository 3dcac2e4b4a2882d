"""Per-frame Levenberg–Marquardt for landmark fitting: converges in a few iterations where Adam needs hundreds.

Each frame's unknowns x_t (rotation, translation in cm, neck, jaw, eyes, expression) only move that
frame's landmarks, so the Jacobian of all frames' residuals is block diagonal: one batched
evaluation at x and at x + h·e_k for every unknown k (set in every frame at once; float64 forward
differences) gives every block [T, R, D]. The robust
Cauchy loss is handled by iteratively reweighted least squares (weight 1 / (1 + |r|²/s²) per point);
priors add to the normal matrix; temporal smoothness ties each frame to its neighbours' current
values (a block-Jacobi sweep). Steps that raise a frame's cost are refused and its damping grows.
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
    damping = torch.full((t,), 1e-3, dtype=x.dtype)
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
        if smooth:
            nb, count = _neighbours(x, before)
            h = h + smooth * count[:, None, None] * eye
            g = g + smooth * (count[:, None] * x - nb)
        scale = torch.diagonal(h, dim1=1, dim2=2).mean(1).clamp(min=1e-9)
        step = torch.linalg.solve(h + (damping * scale)[:, None, None] * eye, -g[..., None])[..., 0]
        nb, count = _neighbours(x, before)
        old = _cost(r, s2, x, prior, smooth, nb, count)
        trial = x + step
        r_new = residuals(trial[None])[0]
        new = _cost(r_new, s2, trial, prior, smooth, nb, count)
        better = new <= old
        x = torch.where(better[:, None], trial, x)
        damping = torch.where(better, damping / 3.0, damping * 10.0).clamp(1e-7, 1e7)
    return x.float()


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


def _cost(r: Tensor, s2: Tensor, x: Tensor, prior: Tensor, smooth: float, nb: Tensor, count: Tensor) -> Tensor:
    """[T] each frame's robust cost, its neighbours held where they were (sum nb [T, D], count [T])."""
    cost = 0.5 * (s2 * torch.log1p(r.pow(2) / s2)).sum(1) + 0.5 * (prior * x.pow(2)).sum(1)
    if smooth:
        cost = cost + 0.5 * smooth * (count * x.pow(2).sum(1) - 2 * (x * nb).sum(1))
    return cost
