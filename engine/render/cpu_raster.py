"""CPU fast path: numba-compiled compositing kernels wrapped in a torch.autograd.Function.

Imported lazily by engine/render/rasterize.py (numba is optional: the "torch" backend needs none).

All kernels work in float64 (the wrapper converts), so one compiled specialisation is cached
(cache=True) and the float64 path is exactly what gradcheck sees. They release the GIL (nogil), so a
training worker does not stall the GUI thread.

Compositing rule (3DGS / gsplat): front to back in depth order, per pixel
  sigma = 0.5·(a·dx² + c·dy²) + b·dx·dy, dx = mean_x − (u + 0.5), dy = mean_y − (v + 0.5),
  alpha = min(0.99, opacity·exp(−sigma)); skipped when sigma < 0 or alpha < 1/255;
  if T·(1 − alpha) <= 1e-4 the pixel stops (that Gaussian is not applied), else
  colour += alpha·T·c and T *= 1 − alpha.
A Gaussian only touches pixels inside the ellipse sigma <= ln(255·opacity) (outside it alpha < 1/255),
so each one is visited on exact scanline spans of that ellipse: the result is the same as looping over
all Gaussians at every pixel, with no cap on the Gaussians per tile.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit, prange
from torch import Tensor

from engine.render.constants import ALPHA_MAX, ALPHA_MIN, SPAN_MARGIN, T_MIN, TILE


@njit(parallel=True, cache=True, nogil=True)
def gaussian_extents(means2d, conics, opac, valid, width, height, rects, level):  # pragma: no cover - numba
    """Pixel boxes rects [N, 4] (x0, y0, x1, y1, end exclusive, empty if culled) and levels [N] = ln(255·o)."""
    for i in prange(means2d.shape[0]):
        rects[i, 0] = 0
        rects[i, 1] = 0
        rects[i, 2] = 0
        rects[i, 3] = 0
        level[i] = -1.0
        o = opac[i]
        if not valid[i] or o * 255.0 <= 1.0:
            continue
        a, b, c = conics[i, 0], conics[i, 1], conics[i, 2]
        det = a * c - b * b
        if det <= 0.0 or a <= 0.0:
            continue
        lev = math.log(255.0 * o)
        ex = math.sqrt(2.0 * (lev + SPAN_MARGIN) * c / det) + SPAN_MARGIN
        ey = math.sqrt(2.0 * (lev + SPAN_MARGIN) * a / det) + SPAN_MARGIN
        mx, my = means2d[i, 0], means2d[i, 1]
        x0 = max(0.0, math.ceil(mx - ex - 0.5))
        x1 = min(float(width), math.floor(mx + ex - 0.5) + 1.0)
        y0 = max(0.0, math.ceil(my - ey - 0.5))
        y1 = min(float(height), math.floor(my + ey - 0.5) + 1.0)
        if x1 <= x0 or y1 <= y0:
            continue
        rects[i, 0] = int(x0)
        rects[i, 1] = int(y0)
        rects[i, 2] = int(x1)
        rects[i, 3] = int(y1)
        level[i] = lev


@njit(cache=True, nogil=True)
def build_tiles(order, rects, n_tx, n_ty, tile):  # pragma: no cover - numba
    """Tile lists sorted by (tile, depth): offsets [tiles + 1] and flat Gaussian ids [M] (order = depth order)."""
    n_tiles = n_tx * n_ty
    counts = np.zeros(n_tiles + 1, dtype=np.int64)
    for j in range(order.shape[0]):
        g = order[j]
        if rects[g, 2] <= rects[g, 0]:
            continue
        tx0, tx1 = rects[g, 0] // tile, (rects[g, 2] - 1) // tile + 1
        ty0, ty1 = rects[g, 1] // tile, (rects[g, 3] - 1) // tile + 1
        for ty in range(ty0, ty1):
            for tx in range(tx0, tx1):
                counts[ty * n_tx + tx + 1] += 1
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    flat = np.empty(offsets[-1], dtype=np.int64)
    for j in range(order.shape[0]):
        g = order[j]
        if rects[g, 2] <= rects[g, 0]:
            continue
        tx0, tx1 = rects[g, 0] // tile, (rects[g, 2] - 1) // tile + 1
        ty0, ty1 = rects[g, 1] // tile, (rects[g, 3] - 1) // tile + 1
        for ty in range(ty0, ty1):
            for tx in range(tx0, tx1):
                t = ty * n_tx + tx
                flat[fill[t]] = g
                fill[t] += 1
    return offsets, flat


@njit(cache=True, inline="always")
def _span(mx, a, b, c, dy, lev, x0, x1):  # pragma: no cover - numba
    """Pixel columns [u0, u1) of one row (offset dy) inside the ellipse sigma <= lev, clipped to [x0, x1)."""
    lev2 = 2.0 * (lev + SPAN_MARGIN)
    disc = (b * dy) * (b * dy) - a * (c * dy * dy - lev2)
    if disc < 0.0:
        return 0, 0
    sq = math.sqrt(disc)
    lo = (-b * dy - sq) / a  # dx range; pixel centre = mx - dx
    hi = (-b * dy + sq) / a
    u0 = max(x0, math.ceil(mx - hi - 0.5 - SPAN_MARGIN))
    u1 = min(x1, math.floor(mx - lo - 0.5 + SPAN_MARGIN) + 1)
    return u0, u1


@njit(parallel=True, cache=True, nogil=True)
def forward(means2d, conics, opac, colors, rects, level, offsets, flat, width, height, tile,
            out_img, out_t, out_last):  # pragma: no cover - numba
    """Composite every tile; writes out_img [H, W, D], final transmittance out_t [H, W], last index out_last [H, W]."""
    n_tx = (width + tile - 1) // tile
    n_ty = (height + tile - 1) // tile
    d = colors.shape[1]
    for t in prange(n_tx * n_ty):
        tx0 = (t % n_tx) * tile
        ty0 = (t // n_tx) * tile
        tx1 = min(tx0 + tile, width)
        ty1 = min(ty0 + tile, height)
        tw = tx1 - tx0
        npix = tw * (ty1 - ty0)
        trans = np.ones(npix)
        done = np.zeros(npix, dtype=np.bool_)
        last = np.full(npix, -1, dtype=np.int64)
        acc = np.zeros((npix, d))
        row_done = np.zeros(ty1 - ty0, dtype=np.int64)  # stopped pixels per tile row
        n_done = 0
        for k in range(offsets[t], offsets[t + 1]):
            if n_done == npix:
                break
            g = flat[k]
            a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
            mx, my, o, lev = means2d[g, 0], means2d[g, 1], opac[g], level[g]
            gx0, gx1 = max(rects[g, 0], tx0), min(rects[g, 2], tx1)
            for py in range(max(rects[g, 1], ty0), min(rects[g, 3], ty1)):
                if row_done[py - ty0] == tw:
                    continue
                dy = my - (py + 0.5)
                u0, u1 = _span(mx, a, b, c, dy, lev, gx0, gx1)
                for px in range(u0, u1):
                    p = (py - ty0) * tw + (px - tx0)
                    if done[p]:
                        continue
                    dx = mx - (px + 0.5)
                    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                    if sigma < 0.0:
                        continue
                    alpha = min(ALPHA_MAX, o * math.exp(-sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    next_t = trans[p] * (1.0 - alpha)
                    if next_t <= T_MIN:
                        done[p] = True
                        n_done += 1
                        row_done[py - ty0] += 1
                        continue
                    w = alpha * trans[p]
                    for ch in range(d):
                        acc[p, ch] += w * colors[g, ch]
                    trans[p] = next_t
                    last[p] = k
        for p in range(npix):
            py = ty0 + p // tw
            px = tx0 + p % tw
            out_t[py, px] = trans[p]
            out_last[py, px] = last[p]
            for ch in range(d):
                out_img[py, px, ch] = acc[p, ch]


@njit(parallel=True, cache=True, nogil=True)
def backward(means2d, conics, opac, colors, rects, level, offsets, flat, width, height, tile,
             final_t, last_idx, v_img, v_alpha, buf):  # pragma: no cover - numba
    """Per-intersection gradients buf [M, 6 + D]: (mean x, mean y, conic a, b, c, opacity, colour...).

    Back to front per pixel from its last contributor, recovering T by division (gsplat's scheme);
    v_alpha is the gradient of the output alpha = 1 − final T.
    """
    n_tx = (width + tile - 1) // tile
    n_ty = (height + tile - 1) // tile
    d = colors.shape[1]
    for t in prange(n_tx * n_ty):
        tx0 = (t % n_tx) * tile
        ty0 = (t // n_tx) * tile
        tx1 = min(tx0 + tile, width)
        ty1 = min(ty0 + tile, height)
        tw = tx1 - tx0
        npix = tw * (ty1 - ty0)
        trans = np.empty(npix)
        last = np.empty(npix, dtype=np.int64)
        behind = np.zeros((npix, d))
        v_col = np.zeros(d)
        row_last = np.full(ty1 - ty0, -1, dtype=np.int64)  # largest last index per tile row
        for p in range(npix):
            trans[p] = final_t[ty0 + p // tw, tx0 + p % tw]
            last[p] = last_idx[ty0 + p // tw, tx0 + p % tw]
            row_last[p // tw] = max(row_last[p // tw], last[p])
        k_max = row_last.max() if npix > 0 else -1
        for k in range(k_max, offsets[t] - 1, -1):
            g = flat[k]
            a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
            mx, my, o, lev = means2d[g, 0], means2d[g, 1], opac[g], level[g]
            gx0, gx1 = max(rects[g, 0], tx0), min(rects[g, 2], tx1)
            g_mx = g_my = g_a = g_b = g_c = g_o = 0.0
            v_col[:] = 0.0
            for py in range(max(rects[g, 1], ty0), min(rects[g, 3], ty1)):
                if k > row_last[py - ty0]:
                    continue
                dy = my - (py + 0.5)
                u0, u1 = _span(mx, a, b, c, dy, lev, gx0, gx1)
                for px in range(u0, u1):
                    p = (py - ty0) * tw + (px - tx0)
                    if k > last[p]:
                        continue
                    dx = mx - (px + 0.5)
                    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                    if sigma < 0.0:
                        continue
                    vis = math.exp(-sigma)
                    raw = o * vis
                    alpha = min(ALPHA_MAX, raw)
                    if alpha < ALPHA_MIN:
                        continue
                    ra = 1.0 / (1.0 - alpha)
                    trans[p] *= ra
                    fac = alpha * trans[p]
                    v_al = final_t[py, px] * ra * v_alpha[py, px]
                    for ch in range(d):
                        vi = v_img[py, px, ch]
                        v_col[ch] += fac * vi
                        v_al += (colors[g, ch] * trans[p] - behind[p, ch] * ra) * vi
                        behind[p, ch] += colors[g, ch] * fac
                    if raw < ALPHA_MAX:
                        v_sigma = -raw * v_al
                        g_a += 0.5 * dx * dx * v_sigma
                        g_b += dx * dy * v_sigma
                        g_c += 0.5 * dy * dy * v_sigma
                        g_mx += v_sigma * (a * dx + b * dy)
                        g_my += v_sigma * (b * dx + c * dy)
                        g_o += vis * v_al
            buf[k, 0] = g_mx
            buf[k, 1] = g_my
            buf[k, 2] = g_a
            buf[k, 3] = g_b
            buf[k, 4] = g_c
            buf[k, 5] = g_o
            for ch in range(d):
                buf[k, 6 + ch] = v_col[ch]


@njit(cache=True, nogil=True)
def reduce_by_gaussian(flat, buf, out):  # pragma: no cover - numba
    """out[g] += buf[k] for every intersection k of Gaussian g = flat[k]."""
    for k in range(flat.shape[0]):
        g = flat[k]
        for j in range(buf.shape[1]):
            out[g, j] += buf[k, j]


def configure_threads() -> int:
    """Keep numba's thread count at most os.cpu_count(); returns the count in use."""
    import os

    import numba

    limit = max(1, min(os.cpu_count() or 1, numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() > limit:
        numba.set_num_threads(limit)
    return numba.get_num_threads()


def _np64(x: Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float64)


class _Composite(torch.autograd.Function):
    """(means2d [N,2], conics [N,3], colors [N,D], opacities [N]) -> (image [H,W,D], alpha [H,W])."""

    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, depths, valid, width, height):  # type: ignore[override]
        m2, co, op, cols = _np64(means2d), _np64(conics), _np64(opacities), _np64(colors)
        n = m2.shape[0]
        rects = np.zeros((n, 4), dtype=np.int64)
        level = np.empty(n, dtype=np.float64)
        valid_np = valid.detach().cpu().numpy().astype(np.bool_)
        gaussian_extents(m2, co, op, valid_np, width, height, rects, level)
        visible = np.nonzero(rects[:, 2] > rects[:, 0])[0]
        order = visible[np.argsort(depths.detach().cpu().numpy()[visible], kind="stable")]
        n_tx, n_ty = (width + TILE - 1) // TILE, (height + TILE - 1) // TILE
        offsets, flat = build_tiles(order, rects, n_tx, n_ty, TILE)
        img = np.empty((height, width, cols.shape[1]), dtype=np.float64)
        final_t = np.empty((height, width), dtype=np.float64)
        last = np.empty((height, width), dtype=np.int64)
        forward(m2, co, op, cols, rects, level, offsets, flat, width, height, TILE, img, final_t, last)
        ctx.state = (m2, co, op, cols, rects, level, offsets, flat, width, height, final_t, last)
        ctx.out_dtype, ctx.out_device = colors.dtype, colors.device
        like = {"dtype": colors.dtype, "device": colors.device}
        return torch.from_numpy(img).to(**like), torch.from_numpy(1.0 - final_t).to(**like)

    @staticmethod
    def backward(ctx, v_img, v_alpha):  # type: ignore[override]
        m2, co, op, cols, rects, level, offsets, flat, width, height, final_t, last = ctx.state
        d = cols.shape[1]
        buf = np.zeros((flat.shape[0], 6 + d), dtype=np.float64)
        v_img_np = _np64(v_img) if v_img is not None else np.zeros((height, width, d))
        v_alpha_np = _np64(v_alpha) if v_alpha is not None else np.zeros((height, width))
        backward(m2, co, op, cols, rects, level, offsets, flat, width, height, TILE,
                 final_t, last, v_img_np, v_alpha_np, buf)
        grads = np.zeros((m2.shape[0], 6 + d), dtype=np.float64)
        reduce_by_gaussian(flat, buf, grads)
        g = torch.from_numpy(grads)
        like = {"dtype": ctx.out_dtype, "device": ctx.out_device}
        return (g[:, 0:2].to(**like), g[:, 2:5].to(**like), g[:, 6:].to(**like), g[:, 5].to(**like),
                None, None, None, None)


def composite_cpu(
    means2d: Tensor,  # [N, 2] pixel centres of the Gaussians
    conics: Tensor,  # [N, 3] inverse 2D covariances (a, b, c)
    colors: Tensor,  # [N, D] per-Gaussian channels to composite
    opacities: Tensor,  # [N]
    depths: Tensor,  # [N] sort keys (camera z)
    valid: Tensor,  # [N] bool, False for culled Gaussians
    width: int,
    height: int,
) -> tuple[Tensor, Tensor]:
    """Exact front-to-back compositing on the CPU: image [H, W, D] (no background) and alpha [H, W]."""
    n = means2d.shape[0]
    assert means2d.shape == (n, 2) and conics.shape == (n, 3), (
        f"means2d/conics must be [N, 2]/[N, 3], got {tuple(means2d.shape)}/{tuple(conics.shape)}"
    )
    assert colors.ndim == 2 and colors.shape[0] == n, f"colors must be [N, D], got {tuple(colors.shape)}"
    assert opacities.shape == (n,) and depths.shape == (n,) and valid.shape == (n,), "opacities/depths/valid must be [N]"
    configure_threads()
    return _Composite.apply(means2d, conics, colors, opacities, depths, valid, int(width), int(height))
