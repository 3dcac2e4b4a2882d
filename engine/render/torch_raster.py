"""Pure-PyTorch tile-based compositing: the reference the numba fast path is tested against.

Exact (no cap on Gaussians per tile): every tile's depth-sorted list is walked in chunks of
`chunk` Gaussians, all active tiles at once, carrying transmittance and a per-pixel "stopped"
flag between chunks, until every pixel of every tile has stopped or the lists are exhausted.
Same rule as the CPU kernel (engine/render/cpu_raster.py): alpha = min(0.99, o·exp(−sigma)),
alphas < 1/255 skipped, a pixel stops before the Gaussian that would take T to <= 1e-4.
Differentiable through autograd; slow and memory-hungry on big scenes (it is a reference).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from engine.render.constants import ALPHA_MAX, ALPHA_MIN, SPAN_MARGIN, T_MIN


def gaussian_rects(
    means2d: Tensor, conics: Tensor, opacities: Tensor, valid: Tensor, width: int, height: int
) -> Tensor:
    """[N, 4] int64 pixel boxes (x0, y0, x1, y1), end exclusive, of the region where alpha >= 1/255.

    The half extent along x is sqrt(2·ln(255·o)·Σxx) (Σ = inverse conic), the tight box of that ellipse.
    """
    with torch.no_grad():
        m = means2d.detach().double()
        a, b, c = conics.detach().double().unbind(-1)
        o = opacities.detach().double()
        det = a * c - b * b
        ok = valid & (o * 255.0 > 1.0) & (det > 0) & (a > 0)
        lev = torch.log((255.0 * o).clamp_min(1.0)) + SPAN_MARGIN
        det_safe = torch.where(ok, det, torch.ones_like(det))
        ex = torch.sqrt((2.0 * lev * c / det_safe).clamp_min(0)) + SPAN_MARGIN
        ey = torch.sqrt((2.0 * lev * a / det_safe).clamp_min(0)) + SPAN_MARGIN
        x0 = torch.ceil(m[:, 0] - ex - 0.5).clamp(0, width)
        x1 = (torch.floor(m[:, 0] + ex - 0.5) + 1).clamp(0, width)
        y0 = torch.ceil(m[:, 1] - ey - 0.5).clamp(0, height)
        y1 = (torch.floor(m[:, 1] + ey - 0.5) + 1).clamp(0, height)
        ok = ok & (x1 > x0) & (y1 > y0)
        rects = torch.stack([x0, y0, x1, y1], dim=-1).nan_to_num(0).long()
        return torch.where(ok[:, None], rects, torch.zeros_like(rects))


def tile_lists(rects: Tensor, depths: Tensor, n_tx: int, n_ty: int, tile: int) -> tuple[Tensor, Tensor]:
    """Per-tile depth-sorted lists: offsets [tiles + 1] and flat Gaussian ids [M] from rects [N, 4], depths [N]."""
    with torch.no_grad():
        nonempty = rects[:, 2] > rects[:, 0]
        tx0, ty0 = rects[:, 0] // tile, rects[:, 1] // tile
        tx1 = torch.where(nonempty, (rects[:, 2] - 1) // tile + 1, tx0)
        ty1 = torch.where(nonempty, (rects[:, 3] - 1) // tile + 1, ty0)
        nx, ny = tx1 - tx0, ty1 - ty0
        per_g = nx * ny
        gid = torch.repeat_interleave(torch.arange(rects.shape[0], device=rects.device), per_g)
        start = torch.cumsum(per_g, 0) - per_g
        local = torch.arange(gid.shape[0], device=rects.device) - start[gid]
        tiles = (ty0[gid] + local // nx[gid]) * n_tx + tx0[gid] + local % nx[gid]
        rank = torch.empty_like(depths, dtype=torch.long)
        rank[torch.argsort(depths.detach(), stable=True)] = torch.arange(depths.shape[0], device=depths.device)
        key = tiles * depths.shape[0] + rank[gid]
        flat = gid[torch.argsort(key)]
        counts = torch.bincount(tiles, minlength=n_tx * n_ty)
        offsets = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        return offsets, flat


def _tile_pixels(n_tx: int, n_ty: int, tile: int, width: int, height: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel centres [tiles, tile², 2] and in-image mask [tiles, tile²] for every tile."""
    t = torch.arange(n_tx * n_ty, device=like.device)
    p = torch.arange(tile * tile, device=like.device)
    px = (t % n_tx)[:, None] * tile + (p % tile)[None, :]
    py = (t // n_tx)[:, None] * tile + (p // tile)[None, :]
    inside = (px < width) & (py < height)
    centres = torch.stack([px, py], dim=-1).to(like.dtype) + 0.5
    return centres, inside


def composite_torch(
    means2d: Tensor,  # [N, 2] pixel centres of the Gaussians
    conics: Tensor,  # [N, 3] inverse 2D covariances (a, b, c)
    colors: Tensor,  # [N, D] per-Gaussian channels to composite
    opacities: Tensor,  # [N]
    depths: Tensor,  # [N] sort keys (camera z)
    valid: Tensor,  # [N] bool, False for culled Gaussians
    width: int,
    height: int,
    tile: int = 16,
    chunk: int = 32,
) -> tuple[Tensor, Tensor]:
    """Exact front-to-back compositing in PyTorch: image [H, W, D] (no background) and alpha [H, W]."""
    n, d = colors.shape
    assert means2d.shape == (n, 2) and conics.shape == (n, 3), (
        f"means2d/conics must be [N, 2]/[N, 3], got {tuple(means2d.shape)}/{tuple(conics.shape)}"
    )
    n_tx, n_ty = math.ceil(width / tile), math.ceil(height / tile)
    rects = gaussian_rects(means2d, conics, opacities, valid, width, height)
    offsets, flat = tile_lists(rects, depths, n_tx, n_ty, tile)
    counts = offsets[1:] - offsets[:-1]
    centres, inside = _tile_pixels(n_tx, n_ty, tile, width, height, means2d)
    n_tiles, n_pix = inside.shape
    trans = torch.ones(n_tiles, n_pix, dtype=colors.dtype, device=colors.device)
    stopped = ~inside
    acc = colors.new_zeros(n_tiles, n_pix, d)
    ar = torch.arange(chunk, device=colors.device)
    for s in range(0, int(counts.max().item()) if n_tiles else 0, chunk):
        act = torch.nonzero((counts > s) & ~stopped.all(dim=1)).squeeze(1)
        if act.numel() == 0:
            break
        pos = offsets[act, None] + s + ar[None, :]  # [A, K]
        in_list = pos < offsets[act + 1, None]
        g = flat[pos.clamp(max=max(flat.shape[0] - 1, 0))]
        delta = means2d[g][:, None, :, :] - centres[act][:, :, None, :]  # [A, P, K, 2]
        cg = conics[g][:, None, :, :]  # [A, 1, K, 3]
        dx, dy = delta[..., 0], delta[..., 1]
        sigma = 0.5 * (cg[..., 0] * dx * dx + cg[..., 2] * dy * dy) + cg[..., 1] * dx * dy
        alpha = torch.clamp_max(opacities[g][:, None, :] * torch.exp(-sigma), ALPHA_MAX)
        keep = (sigma >= 0) & (alpha >= ALPHA_MIN) & in_list[:, None, :] & ~stopped[act][:, :, None]
        alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
        t0 = trans[act]
        with torch.no_grad():
            stop = t0[:, :, None] * torch.cumprod(1.0 - alpha, dim=-1) <= T_MIN
        alpha = torch.where(stop, torch.zeros_like(alpha), alpha)
        one_minus = 1.0 - alpha
        t_incl = t0[:, :, None] * torch.cumprod(one_minus, dim=-1)
        t_before = torch.cat([t0[:, :, None], t_incl[..., :-1]], dim=-1)
        weights = alpha * t_before  # [A, P, K]
        contrib = torch.einsum("apk,akd->apd", weights, colors[g])
        acc = acc.index_put((act,), acc[act] + contrib)
        trans = trans.index_put((act,), t_incl[..., -1])
        stopped = stopped.index_put((act,), stopped[act] | stop.any(dim=-1))
    img = _untile(acc, n_tx, n_ty, tile, width, height)
    alpha_img = 1.0 - _untile(trans[..., None], n_tx, n_ty, tile, width, height)[..., 0]
    return img, alpha_img


def _untile(x: Tensor, n_tx: int, n_ty: int, tile: int, width: int, height: int) -> Tensor:
    """[tiles, tile², C] -> [H, W, C] (crop of the padded tile grid)."""
    c = x.shape[-1]
    grid = x.reshape(n_ty, n_tx, tile, tile, c).permute(0, 2, 1, 3, 4).reshape(n_ty * tile, n_tx * tile, c)
    return grid[:height, :width]
