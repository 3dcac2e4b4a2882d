"""Adaptive density control that keeps every Gaussian bound to a triangle.

Tensor surgery is done by free functions on (params, optimizer, extras) where params maps a name to
an nn.Parameter [N, ...] that is also the only tensor of the optimizer group of that name, and
extras maps a name to a non-learned per-Gaussian tensor [N, ...] (binding, labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from engine.avatar.binding import quat_to_matrix
from engine.train.config import DensifyConfig


@dataclass
class DensifyState:
    """Statistics gathered between densification steps."""

    grad_sum: Tensor  # [N] summed view-space positional gradient norms (NDC units)
    count: Tensor  # [N] number of views each Gaussian was visible in

    @staticmethod
    def empty(n: int, device: torch.device | str = "cpu") -> "DensifyState":
        return DensifyState(torch.zeros(n, device=device), torch.zeros(n, device=device))


def accumulate(state: DensifyState, means2d_grad: Tensor, radii: Tensor, width: int, height: int) -> None:
    """Add one view's gradient norms: means2d_grad [N, 2] in pixels, radii [N] (0 = not visible)."""
    g = means2d_grad.detach().clone()
    g[:, 0] *= width / 2.0
    g[:, 1] *= height / 2.0
    visible = radii > 0
    state.grad_sum[visible] += g[visible].norm(dim=-1)
    state.count[visible] += 1


def _replace_rows(params: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                  keep: Tensor, new_rows: dict[str, Tensor]) -> None:
    """Keep rows `keep` (bool [N]) of every parameter and append new_rows; Adam moments follow."""
    for group in optimizer.param_groups:
        name = group["name"]
        if name not in params:
            continue
        old = params[name]
        fresh = torch.nn.Parameter(torch.cat([old.detach()[keep], new_rows[name].detach()]).requires_grad_(True))
        state = optimizer.state.pop(old, None)
        if state:
            for key in ("exp_avg", "exp_avg_sq"):
                moment = state[key][keep]
                state[key] = torch.cat([moment, torch.zeros_like(new_rows[name])])
            optimizer.state[fresh] = state
        group["params"] = [fresh]
        params[name] = fresh


def densify_and_prune(
    params: dict[str, torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    extras: dict[str, Tensor],
    state: DensifyState,
    world_scale: Tensor,  # [N, 3] current world-space scales
    tri_scale: Tensor,  # [N] scale k of each Gaussian's triangle
    rot: Tensor,  # [N, 3, 3] rotation R of each Gaussian's triangle
    extent: float,  # scene extent in world units
    config: DensifyConfig,
    n_faces: int,
    generator: torch.Generator,
) -> dict[str, int]:
    """Clone small, split large high-gradient Gaussians; prune transparent or huge ones.

    Children inherit their parent's binding and label; pruning never leaves a triangle without
    Gaussians. Returns counts {'cloned', 'split', 'pruned', 'total'}.
    """
    n = params["xyz"].shape[0]
    grads = state.grad_sum / state.count.clamp(min=1)
    big = world_scale.max(dim=-1).values > config.percent_dense * extent
    hot = grads >= config.grad_threshold
    room = max(0, config.max_gaussians - n)
    clone = hot & ~big
    split = hot & big
    if int(clone.sum()) + int(split.sum()) > room:  # keep the hottest within budget
        order = torch.argsort(grads * hot, descending=True)
        allowed = torch.zeros(n, dtype=torch.bool, device=grads.device)
        allowed[order[: room // 2]] = True
        clone, split = clone & allowed, split & allowed

    new_rows = {name: [] for name in params}
    new_extras = {name: [] for name in extras}
    for name in params:
        new_rows[name].append(params[name].detach()[clone])
    for name in extras:
        new_extras[name].append(extras[name][clone])

    if split.any():
        idx = torch.nonzero(split).squeeze(1).repeat(2)
        local_std = torch.exp(params["log_scale"].detach()[idx])
        samples = torch.randn(len(idx), 3, generator=generator).to(local_std) * local_std  # CPU generator
        # Offsets sampled in the Gaussian's own frame, expressed in the triangle-local frame.
        local_rot = quat_to_matrix(params["rotation"].detach()[idx])
        offset = (local_rot @ samples[:, :, None]).squeeze(-1)
        for name in params:
            value = params[name].detach()[idx]
            if name == "xyz":
                value = value + offset
            elif name == "log_scale":
                value = value - torch.log(torch.tensor(1.6))
            new_rows[name].append(value)
        for name in extras:
            new_extras[name].append(extras[name][idx])

    opacity = torch.sigmoid(params["opacity_logit"].detach())
    prune = (opacity < config.min_opacity) | (world_scale.max(dim=-1).values > config.max_world_scale * extent)
    prune |= split  # split parents are replaced by their two children
    prune &= ~_last_of_triangle(extras["binding"], prune, n_faces)
    keep = ~prune
    rows = {name: torch.cat(parts) for name, parts in new_rows.items()}
    _replace_rows(params, optimizer, keep, rows)
    for name in extras:
        extras[name] = torch.cat([extras[name][keep], *new_extras[name]])
    total = params["xyz"].shape[0]
    state.grad_sum, state.count = torch.zeros(total, device=grads.device), torch.zeros(total, device=grads.device)
    return {"cloned": int(clone.sum()), "split": int(split.sum()), "pruned": int((prune & ~split).sum()), "total": total}


def _last_of_triangle(binding: Tensor, prune: Tensor, n_faces: int) -> Tensor:
    """bool [N]: Gaussians that must survive so that no triangle loses all its Gaussians."""
    survivors = torch.bincount(binding[~prune], minlength=n_faces)
    orphaned = survivors[binding] == 0  # this Gaussian's triangle would be emptied
    rescue = torch.zeros_like(prune)
    if orphaned.any():
        candidates = torch.nonzero(orphaned & prune).squeeze(1)
        # keep the first candidate of each orphaned triangle
        first = torch.full((n_faces,), -1, dtype=torch.long, device=binding.device)
        first.scatter_reduce_(0, binding[candidates], candidates, reduce="amax", include_self=True)
        chosen = first[first >= 0]
        rescue[chosen] = True
    return rescue


def reset_opacity(params: dict[str, torch.nn.Parameter], optimizer: torch.optim.Optimizer, ceiling: float = 0.01) -> None:
    """Clamp every opacity to at most `ceiling` and clear its Adam moments (3DGS opacity reset)."""
    limit = torch.logit(torch.tensor(ceiling)).item()
    with torch.no_grad():
        params["opacity_logit"].clamp_(max=limit)
    state = optimizer.state.get(params["opacity_logit"])
    if state:
        state["exp_avg"].zero_()
        state["exp_avg_sq"].zero_()
