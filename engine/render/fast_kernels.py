"""numba kernels of the inference-only CPU splat renderer (engine/render/fast_view.py).

Same maths and compositing rule as engine/render/projection.py + engine/render/cpu_raster.py (3DGS / gsplat
EWA projection with the 0.3 px² dilation and the 1.3× clamped Jacobian; front-to-back alpha blending with
alpha = min(0.99, o·exp(−σ)), alphas < 1/255 skipped, a pixel stops before the Gaussian that would take its
transmittance to <= 1e-4), but: no autograd bookkeeping, float32 images, and along each pixel row of a
Gaussian's ellipse exp(−σ) is advanced by two multiplications per pixel instead of an exp (σ is quadratic
in the column, so exp(−σ(u+1)) = exp(−σ(u))·r(u), r(u+1) = r(u)·exp(−a)).

Per-Gaussian record (float32 row of `params`, in depth order after sorting):
  0 mean x, 1 mean y, 2 conic a, 3 conic b, 4 conic c, 5 opacity, 6 level ln(255·o), 7..9 rgb, 10 depth.
Pixel rectangles (x0, y0, x1, y1, end exclusive; x1 <= x0 when culled) live in an int32 [N, 4] array.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

ALPHA_MIN = np.float32(1.0 / 255.0)  # alphas below this are skipped
ALPHA_MAX = np.float32(0.99)  # alphas are clamped to this
T_MIN = np.float32(1e-4)  # a pixel stops when its transmittance would fall to this or below
LOWPASS_EPS = 0.3  # px², as engine/render/projection.py
RADIUS_SIGMAS = 3.33  # as engine/render/projection.py (its on-screen test)
MARGIN = 1e-6  # as engine/render/cpu_raster.py (ellipse spans widened a hair)
P_STRIDE = 11  # floats per Gaussian record
EXP2_TABLE = 2.0 ** np.arange(-1075.0, 1024.0)  # 2^n for n in [-1075, 1023] (the lowest entries are 0)
EXP2_POLY = (1.000000002586889, 0.6931469286930284, 0.240230502044998, 0.055480426325777654,
             0.009684580452328635, 0.0012387821478967425, 0.00021877504770090065)  # 2^f on [0, 1], rel. err 2.6e-9
SH_C = (0.28209479177387814, 0.4886025119029199, 1.0925484305920792, 0.31539156525252005,
        0.5462742152960396, 0.5900435899266435, 2.890611442640554, 0.4570457994644658,
        0.3731763325901154, 1.445305721320277)


@njit(cache=True, inline="always")
def _sh_colour(sh, i, n_coef, dx, dy, dz, out, j):  # pragma: no cover - numba
    """out[j, 7:10] = max(0, 0.5 + Σ_k Y_k(dir)·sh[i, k]) for the view direction (dx, dy, dz) (unnormalised)."""
    norm = math.sqrt(dx * dx + dy * dy + dz * dz)
    norm = max(norm, 1e-12)
    x, y, z = dx / norm, dy / norm, dz / norm
    xx, yy, zz = x * x, y * y, z * z
    for ch in range(3):
        v = SH_C[0] * sh[i, 0, ch]
        if n_coef > 1:
            v += SH_C[1] * (-y * sh[i, 1, ch] + z * sh[i, 2, ch] - x * sh[i, 3, ch])
        if n_coef > 4:
            v += (SH_C[2] * x * y * sh[i, 4, ch] - SH_C[2] * y * z * sh[i, 5, ch]
                  + SH_C[3] * (2 * zz - xx - yy) * sh[i, 6, ch] - SH_C[2] * x * z * sh[i, 7, ch]
                  + SH_C[4] * (xx - yy) * sh[i, 8, ch])
        if n_coef > 9:
            v += (-SH_C[5] * y * (3 * xx - yy) * sh[i, 9, ch] + SH_C[6] * x * y * z * sh[i, 10, ch]
                  - SH_C[7] * y * (4 * zz - xx - yy) * sh[i, 11, ch]
                  + SH_C[8] * z * (2 * zz - 3 * xx - 3 * yy) * sh[i, 12, ch]
                  - SH_C[7] * x * (4 * zz - xx - yy) * sh[i, 13, ch] + SH_C[9] * z * (xx - yy) * sh[i, 14, ch]
                  - SH_C[5] * x * (xx - 3 * yy) * sh[i, 15, ch])
        out[j, 7 + ch] = max(0.0, v + 0.5)


@njit(cache=True, inline="always")
def _project_one(j, x, y, z, cov, opacity, cam, params, rects):  # pragma: no cover - numba
    """Project one Gaussian into params[j, 0:7], params[j, 10] and rects[j]; returns False when culled.

    (x, y, z): camera-space mean; cov: camera-space covariance (xx, xy, xz, yy, yz, zz);
    cam: (fx, fy, cx, cy, width, height, near, far).
    """
    fx, fy, cx, cy, w, h, near, far = cam[0], cam[1], cam[2], cam[3], cam[4], cam[5], cam[6], cam[7]
    rects[j, 0] = 0
    rects[j, 1] = 0
    rects[j, 2] = 0
    rects[j, 3] = 0
    params[j, 10] = z
    if not (z > near and z < far) or opacity * 255.0 <= 1.0:
        return False
    tan_x, tan_y = 0.5 * w / fx, 0.5 * h / fy
    jx = z * min(max(x / z, -(cx / fx + 0.3 * tan_x)), (w - cx) / fx + 0.3 * tan_x)
    jy = z * min(max(y / z, -(cy / fy + 0.3 * tan_y)), (h - cy) / fy + 0.3 * tan_y)
    j00, j02 = fx / z, -fx * jx / (z * z)
    j11, j12 = fy / z, -fy * jy / (z * z)
    sxx, sxy, sxz, syy, syz, szz = cov
    # J Σ Jᵀ with J = [[j00, 0, j02], [0, j11, j12]]
    r0x, r0y, r0z = j00 * sxx + j02 * sxz, j00 * sxy + j02 * syz, j00 * sxz + j02 * szz
    r1y, r1z = j11 * syy + j12 * syz, j11 * syz + j12 * szz
    ca = r0x * j00 + r0z * j02 + LOWPASS_EPS
    cb = r0y * j11 + r0z * j12
    cc = r1y * j11 + r1z * j12 + LOWPASS_EPS
    det = ca * cc - cb * cb
    if not det > 0.0:
        return False
    mx, my = fx * x / z + cx, fy * y / z + cy
    rx, ry = math.ceil(RADIUS_SIGMAS * math.sqrt(max(ca, 0.0))), math.ceil(RADIUS_SIGMAS * math.sqrt(max(cc, 0.0)))
    if not (mx + rx > 0 and mx - rx < w and my + ry > 0 and my - ry < h):
        return False
    a, b, c = cc / det, -cb / det, ca / det
    cdet = a * c - b * b
    if cdet <= 0.0 or a <= 0.0:
        return False
    lev = math.log(255.0 * opacity)
    ex = math.sqrt(2.0 * (lev + MARGIN) * c / cdet) + MARGIN
    ey = math.sqrt(2.0 * (lev + MARGIN) * a / cdet) + MARGIN
    x0, x1 = max(0.0, math.ceil(mx - ex - 0.5)), min(w, math.floor(mx + ex - 0.5) + 1.0)
    y0, y1 = max(0.0, math.ceil(my - ey - 0.5)), min(h, math.floor(my + ey - 0.5) + 1.0)
    if x1 <= x0 or y1 <= y0:
        return False
    rects[j, 0], rects[j, 1], rects[j, 2], rects[j, 3] = int(x0), int(y0), int(x1), int(y1)
    params[j, 0], params[j, 1] = mx, my
    params[j, 2], params[j, 3], params[j, 4] = a, b, c
    params[j, 5], params[j, 6] = opacity, lev
    return True


@njit(cache=True, inline="always")
def _rotate_cov(m00, m01, m02, m10, m11, m12, m20, m21, m22, s):  # pragma: no cover - numba
    """M S Mᵀ as (xx, xy, xz, yy, yz, zz) for M (row-major scalars) and symmetric S = s (xx, xy, xz, yy, yz, zz)."""
    sxx, sxy, sxz, syy, syz, szz = s[0], s[1], s[2], s[3], s[4], s[5]
    a0, a1, a2 = m00 * sxx + m01 * sxy + m02 * sxz, m00 * sxy + m01 * syy + m02 * syz, m00 * sxz + m01 * syz + m02 * szz
    b0, b1, b2 = m10 * sxx + m11 * sxy + m12 * sxz, m10 * sxy + m11 * syy + m12 * syz, m10 * sxz + m11 * syz + m12 * szz
    c0, c1, c2 = m20 * sxx + m21 * sxy + m22 * sxz, m20 * sxy + m21 * syy + m22 * syz, m20 * sxz + m21 * syz + m22 * szz
    return (a0 * m00 + a1 * m01 + a2 * m02, a0 * m10 + a1 * m11 + a2 * m12, a0 * m20 + a1 * m21 + a2 * m22,
            b0 * m10 + b1 * m11 + b2 * m12, b0 * m20 + b1 * m21 + b2 * m22, c0 * m20 + c1 * m21 + c2 * m22)


@njit(parallel=True, cache=True)
def local_covariances(quats, scales, out):  # pragma: no cover - numba
    """out [N, 6] = R diag(s²) Rᵀ (xx, xy, xz, yy, yz, zz) of quats [N, 4] (w, x, y, z) and scales [N, 3]."""
    for i in prange(quats.shape[0]):
        qw, qx, qy, qz = quats[i, 0], quats[i, 1], quats[i, 2], quats[i, 3]
        n = max(math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz), 1e-12)
        w, x, y, z = qw / n, qx / n, qy / n, qz / n
        s = (scales[i, 0] ** 2, 0.0, 0.0, scales[i, 1] ** 2, 0.0, scales[i, 2] ** 2)
        cov = _rotate_cov(1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                          2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                          2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y), s)
        for q in range(6):
            out[i, q] = cov[q]


@njit(cache=True, inline="always")
def _finish(i, x, y, z, cov, opacity, cam, wx, wy, wz, cam_pos, sh, n_coef, colors, own, params, rects):  # pragma: no cover
    """Project Gaussian i and give it its colour (colors[i] when own, else SH seen from cam_pos)."""
    if _project_one(i, x, y, z, cov, opacity, cam, params, rects):
        if own:
            for ch in range(3):
                params[i, 7 + ch] = max(0.0, colors[i, ch])
        else:
            _sh_colour(sh, i, n_coef, wx - cam_pos[0], wy - cam_pos[1], wz - cam_pos[2], params, i)


@njit(parallel=True, cache=True)
def project_world(means, cov_world, opac, sh, n_coef, colors, w2c, cam_pos, cam, params, rects):  # pragma: no cover
    """World Gaussians -> params [N, 11] and rects [N, 4]; colours from SH, or colors [N, 3] when it has N rows.

    means [N, 3], cov_world [N, 6] (xx, xy, xz, yy, yz, zz), opac [N], sh [N, K, 3] (first n_coef used),
    w2c [4, 4], cam_pos [3], cam (fx, fy, cx, cy, width, height, near, far).
    """
    own = colors.shape[0] == means.shape[0]
    for i in prange(means.shape[0]):
        wx, wy, wz = means[i, 0], means[i, 1], means[i, 2]
        x = w2c[0, 0] * wx + w2c[0, 1] * wy + w2c[0, 2] * wz + w2c[0, 3]
        y = w2c[1, 0] * wx + w2c[1, 1] * wy + w2c[1, 2] * wz + w2c[1, 3]
        z = w2c[2, 0] * wx + w2c[2, 1] * wy + w2c[2, 2] * wz + w2c[2, 3]
        cov = _rotate_cov(w2c[0, 0], w2c[0, 1], w2c[0, 2], w2c[1, 0], w2c[1, 1], w2c[1, 2],
                          w2c[2, 0], w2c[2, 1], w2c[2, 2], cov_world[i])
        _finish(i, x, y, z, cov, opac[i], cam, wx, wy, wz, cam_pos, sh, n_coef, colors, own, params, rects)


@njit(parallel=True, cache=True)
def face_frames(verts, faces, w2c, frames):  # pragma: no cover - numba
    """frames [F, 22]: R (row-major), W·R (row-major), centroid, scale k of every triangle.

    R = [a0 a1 a2] of the GaussianAvatars binding (engine/avatar/binding.py); W = w2c[:3, :3].
    """
    for f in prange(faces.shape[0]):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        e1x, e1y, e1z = verts[i1, 0] - verts[i0, 0], verts[i1, 1] - verts[i0, 1], verts[i1, 2] - verts[i0, 2]
        e2x, e2y, e2z = verts[i2, 0] - verts[i0, 0], verts[i2, 1] - verts[i0, 1], verts[i2, 2] - verts[i0, 2]
        l1 = math.sqrt(e1x * e1x + e1y * e1y + e1z * e1z)
        n1 = max(l1, 1e-12)
        a0x, a0y, a0z = e1x / n1, e1y / n1, e1z / n1
        cx, cy, cz = a0y * e2z - a0z * e2y, a0z * e2x - a0x * e2z, a0x * e2y - a0y * e2x
        nc = max(math.sqrt(cx * cx + cy * cy + cz * cz), 1e-12)
        a1x, a1y, a1z = cx / nc, cy / nc, cz / nc
        dx, dy, dz = a1y * a0z - a1z * a0y, a1z * a0x - a1x * a0z, a1x * a0y - a1y * a0x
        nd = max(math.sqrt(dx * dx + dy * dy + dz * dz), 1e-12)
        a2x, a2y, a2z = -dx / nd, -dy / nd, -dz / nd
        rx, ry, rz = (a0x, a1x, a2x), (a0y, a1y, a2y), (a0z, a1z, a2z)  # rows of R
        for col in range(3):
            frames[f, col], frames[f, 3 + col], frames[f, 6 + col] = rx[col], ry[col], rz[col]
        for r in range(3):
            for col in range(3):
                frames[f, 9 + 3 * r + col] = w2c[r, 0] * rx[col] + w2c[r, 1] * ry[col] + w2c[r, 2] * rz[col]
            frames[f, 18 + r] = (verts[i0, r] + verts[i1, r] + verts[i2, r]) / 3.0
        frames[f, 21] = 0.5 * (l1 + abs(a2x * e2x + a2y * e2y + a2z * e2z))


@njit(parallel=True, cache=True)
def project_bound(binding, xyz, cov_local, opac, sh, n_coef, colors, frames, w2c, cam_pos, cam,
                  params, rects):  # pragma: no cover - numba
    """Bound Gaussians on posed triangles (frames from face_frames) -> params [N, 11], rects [N, 4].

    World mean μ = k·R·xyz + T and camera-space covariance k²·(W R) Σ' (W R)ᵀ (Σ' = cov_local [N, 6]);
    colours as project_world.
    """
    own = colors.shape[0] == binding.shape[0]
    for i in prange(binding.shape[0]):
        f = binding[i]
        k = frames[f, 21]
        lx, ly, lz = k * xyz[i, 0], k * xyz[i, 1], k * xyz[i, 2]
        wx = frames[f, 0] * lx + frames[f, 1] * ly + frames[f, 2] * lz + frames[f, 18]
        wy = frames[f, 3] * lx + frames[f, 4] * ly + frames[f, 5] * lz + frames[f, 19]
        wz = frames[f, 6] * lx + frames[f, 7] * ly + frames[f, 8] * lz + frames[f, 20]
        x = w2c[0, 0] * wx + w2c[0, 1] * wy + w2c[0, 2] * wz + w2c[0, 3]
        y = w2c[1, 0] * wx + w2c[1, 1] * wy + w2c[1, 2] * wz + w2c[1, 3]
        z = w2c[2, 0] * wx + w2c[2, 1] * wy + w2c[2, 2] * wz + w2c[2, 3]
        c = _rotate_cov(frames[f, 9], frames[f, 10], frames[f, 11], frames[f, 12], frames[f, 13], frames[f, 14],
                        frames[f, 15], frames[f, 16], frames[f, 17], cov_local[i])
        k2 = k * k
        cov = (k2 * c[0], k2 * c[1], k2 * c[2], k2 * c[3], k2 * c[4], k2 * c[5])
        _finish(i, x, y, z, cov, opac[i], cam, wx, wy, wz, cam_pos, sh, n_coef, colors, own, params, rects)


@njit(parallel=True, cache=True)
def gather_sorted(order, params, rects, out_params, out_rects):  # pragma: no cover - numba
    """out_params[j] = params[order[j]], out_rects[j] = rects[order[j]] (records in depth order)."""
    for j in prange(order.shape[0]):
        g = order[j]
        for q in range(P_STRIDE):
            out_params[j, q] = params[g, q]
        for q in range(4):
            out_rects[j, q] = rects[g, q]


@njit(cache=True)
def bin_tiles(rects, tile, n_tx, n_ty):  # pragma: no cover - numba
    """(offsets [tiles + 1] int64, flat [M] int32): the records (rows of rects, in depth order) touching each tile."""
    counts = np.zeros(n_tx * n_ty + 1, dtype=np.int64)
    for j in range(rects.shape[0]):
        for ty in range(rects[j, 1] // tile, (rects[j, 3] - 1) // tile + 1):
            for tx in range(rects[j, 0] // tile, (rects[j, 2] - 1) // tile + 1):
                counts[ty * n_tx + tx + 1] += 1
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    flat = np.empty(offsets[-1], dtype=np.int32)
    for j in range(rects.shape[0]):
        for ty in range(rects[j, 1] // tile, (rects[j, 3] - 1) // tile + 1):
            for tx in range(rects[j, 0] // tile, (rects[j, 2] - 1) // tile + 1):
                t = ty * n_tx + tx
                flat[fill[t]] = j
                fill[t] += 1
    return offsets, flat


@njit(cache=True, inline="always")
def _exp(y):  # pragma: no cover - numba
    """exp(y) to 3e-9 relative (0 below e^-745): 2^n from a table times a degree-6 polynomial of 2^f.

    libm's exp costs ~20 ns a call here; this one a few, and the compositing loop calls it twice per row span.
    """
    t = min(y * 1.4426950408889634, 1023.0)
    if t < -1074.0:
        return 0.0
    n = math.floor(t)
    f = t - n
    c = EXP2_POLY
    p = c[0] + f * (c[1] + f * (c[2] + f * (c[3] + f * (c[4] + f * (c[5] + f * c[6])))))
    return EXP2_TABLE[int(n) + 1075] * p


@njit(cache=True, inline="always")
def _span(mx, a, b, c, dy, lev, x0, x1):  # pragma: no cover - numba
    """Pixel columns [u0, u1) of one row (offset dy) inside the ellipse sigma <= lev, clipped to [x0, x1)."""
    lev2 = 2.0 * (lev + MARGIN)
    disc = (b * dy) * (b * dy) - a * (c * dy * dy - lev2)
    if disc < 0.0:
        return 0, 0
    sq = math.sqrt(disc)
    u0 = max(x0, int(math.ceil(mx - (-b * dy + sq) / a - 0.5 - MARGIN)))
    u1 = min(x1, int(math.floor(mx - (-b * dy - sq) / a - 0.5 + MARGIN)) + 1)
    return u0, u1


@njit(parallel=True, cache=True, fastmath=True)  # ~20% faster here; no NaN/inf reach this kernel
def composite(params, rects, offsets, flat, width, height, tile, bg, out_rgb, out_alpha, out_u8):  # pragma: no cover
    """Front-to-back compositing of every tile over background bg [3].

    Writes out_rgb [H, W, 3] float32 (composited), out_alpha [H, W] float32 and out_u8 [H, W, 3] uint8
    (clamped to [0, 1], ·255, rounded half up). params / rects: records in depth order; offsets, flat: bin_tiles.
    """
    n_tx = (width + tile - 1) // tile
    n_ty = (height + tile - 1) // tile
    for t in prange(n_tx * n_ty):
        tx0, ty0 = (t % n_tx) * tile, (t // n_tx) * tile
        tx1, ty1 = min(tx0 + tile, width), min(ty0 + tile, height)
        tw = tx1 - tx0
        npix = tw * (ty1 - ty0)
        trans = np.ones(npix, dtype=np.float32)
        acc = np.zeros((npix, 3), dtype=np.float32)
        done = np.zeros(npix, dtype=np.bool_)
        row_done = np.zeros(ty1 - ty0, dtype=np.int32)  # stopped pixels per tile row
        n_done = 0
        for k in range(offsets[t], offsets[t + 1]):
            if n_done == npix:
                break
            j = flat[k]
            mx, my, a, b, c = params[j, 0], params[j, 1], params[j, 2], params[j, 3], params[j, 4]
            o, lev, cr, cg, cb = params[j, 5], params[j, 6], params[j, 7], params[j, 8], params[j, 9]
            gx0, gx1 = max(rects[j, 0], tx0), min(rects[j, 2], tx1)
            q = math.exp(-float(a))
            for py in range(max(rects[j, 1], ty0), min(rects[j, 3], ty1)):
                if row_done[py - ty0] == tw:
                    continue
                dy = float(my) - (py + 0.5)
                u0, u1 = _span(float(mx), float(a), float(b), float(c), dy, float(lev), gx0, gx1)
                if u1 <= u0:
                    continue
                dx = float(mx) - (u0 + 0.5)
                e = _exp(-(0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy))  # exp(-sigma) at u0
                r = _exp(-(a * (0.5 - dx) - b * dy))  # exp(sigma(u) - sigma(u + 1)) at u0
                base = (py - ty0) * tw - tx0
                for px in range(u0, u1):
                    p = base + px
                    alpha = min(ALPHA_MAX, o * e)
                    e *= r
                    r *= q
                    if done[p] or alpha < ALPHA_MIN:
                        continue
                    next_t = trans[p] * (np.float32(1.0) - np.float32(alpha))
                    if next_t <= T_MIN:
                        done[p] = True
                        n_done += 1
                        row_done[py - ty0] += 1
                        continue
                    w = np.float32(alpha) * trans[p]
                    acc[p, 0] += w * cr
                    acc[p, 1] += w * cg
                    acc[p, 2] += w * cb
                    trans[p] = next_t
        for p in range(npix):
            py, px = ty0 + p // tw, tx0 + p % tw
            out_alpha[py, px] = 1.0 - trans[p]
            for ch in range(3):
                v = acc[p, ch] + trans[p] * bg[ch]
                out_rgb[py, px, ch] = v
                out_u8[py, px, ch] = np.uint8(int(min(max(v, 0.0), 1.0) * 255.0 + 0.5))
