"""numba kernels of the inference-only CPU splat renderer (engine/render/fast_view.py).

Same maths and compositing rule as engine/render/projection.py + engine/render/cpu_raster.py (3DGS / gsplat
EWA projection with the 0.3 px² dilation and the 1.3× clamped Jacobian; front-to-back alpha blending with
alpha = min(0.99, o·exp(−σ)), alphas < 1/255 skipped, a pixel stops before the Gaussian that would take its
transmittance to <= 1e-4; engine/render/constants.py), but: no autograd bookkeeping, float32 images, and a
compositing loop the compiler turns into SIMD code (see `composite`). Every kernel releases the GIL, so the
GUI thread keeps running while the render thread draws.

Per-Gaussian record (float32 row of `params`, in depth order after sorting):
  0 mean x, 1 mean y, 2 conic a, 3 conic b, 4 conic c, 5 opacity, 6 level ln(255·o), 7..9 rgb, 10 depth.
Pixel rectangles (x0, y0, x1, y1, end exclusive; x1 <= x0 when culled) live in an int32 [N, 4] array.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from engine.render.constants import ALPHA_MAX, ALPHA_MIN, LOWPASS_EPS, RADIUS_SIGMAS, SPAN_MARGIN, T_MIN

P_STRIDE = 11  # floats per Gaussian record
SH_C = (0.28209479177387814, 0.4886025119029199, 1.0925484305920792, 0.31539156525252005,
        0.5462742152960396, 0.5900435899266435, 2.890611442640554, 0.4570457994644658,
        0.3731763325901154, 1.445305721320277)
# float32 copies for the compositing loop (numba freezes module globals as constants)
_A_MIN, _A_MAX, _T_MIN = np.float32(ALPHA_MIN), np.float32(ALPHA_MAX), np.float32(T_MIN)
_ZERO, _ONE, _HALF = np.float32(0.0), np.float32(1.0), np.float32(0.5)
SIGMA_CAP = np.float32(6.0)  # σ is clamped here before exp: beyond ln(255) ≈ 5.54 every alpha is < 1/255
# exp(−x) on [0, 0.75] by a degree-5 polynomial (Chebyshev fit, relative error 1.7e-7); exp(−σ) = exp(−σ/8)^8
# then has relative error below 1.4e-6 for σ in [0, SIGMA_CAP]. Pure arithmetic, so it vectorises.
EXP_POLY = tuple(np.float32(c) for c in (0.9999999143418512, -0.9999916954105842, 0.49986901666612527,
                                         -0.1659058256110347, 0.039640974893313585, -0.005761054099022163))


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
    ex = math.sqrt(2.0 * (lev + SPAN_MARGIN) * c / cdet) + SPAN_MARGIN
    ey = math.sqrt(2.0 * (lev + SPAN_MARGIN) * a / cdet) + SPAN_MARGIN
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


@njit(parallel=True, cache=True, nogil=True)
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


@njit(parallel=True, cache=True, nogil=True)
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


@njit(parallel=True, cache=True, nogil=True)
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


@njit(parallel=True, cache=True, nogil=True)
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


@njit(parallel=True, cache=True, nogil=True)
def gather_sorted(order, params, rects, out_params, out_rects):  # pragma: no cover - numba
    """out_params[j] = params[order[j]], out_rects[j] = rects[order[j]] (records in depth order)."""
    for j in prange(order.shape[0]):
        g = order[j]
        for q in range(P_STRIDE):
            out_params[j, q] = params[g, q]
        for q in range(4):
            out_rects[j, q] = rects[g, q]


@njit(cache=True, nogil=True)
def depth_order(keys, index):  # pragma: no cover - numba
    """index [M] sorted by keys[index] (uint32: the bits of positive float32 depths sort as the depths do).

    A stable LSD radix sort, four passes of 8 bits: ~5x faster than np.argsort on the ~40k visible records.
    """
    n = index.shape[0]
    a = index.copy()
    b = np.empty_like(a)
    counts = np.empty(257, dtype=np.int64)
    for shift in range(0, 32, 8):
        counts[:] = 0
        for i in range(n):
            counts[((keys[a[i]] >> shift) & 255) + 1] += 1
        for d in range(256):
            counts[d + 1] += counts[d]
        for i in range(n):
            d = (keys[a[i]] >> shift) & 255
            b[counts[d]] = a[i]
            counts[d] += 1
        a, b = b, a
    return a


@njit(cache=True, nogil=True)
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


@njit(cache=True, fastmath=True, inline="always")
def _blend_row(st, row, lanes, lo, hi, x0, mx, a, b, cdy, bdy, o, cr, cg, cb):  # pragma: no cover - numba
    """Blend one Gaussian into pixel row `row` of a tile's state st (see composite): lanes 0..lanes-1 are the
    row's pixels, those in [lo, hi) lie in the Gaussian's rectangle; x0 = the tile's first pixel centre.

    No branches and no index that could be negative (unsigned), so LLVM vectorises the loop over the lanes.
    """
    plane = np.uint64(lanes * lanes)  # offsets of the r, g, b planes; unsigned (2 * plane would be a float)
    plane2 = plane + plane
    plane3 = plane2 + plane
    c0, c1, c2, c3, c4, c5 = EXP_POLY
    for lane in range(lanes):
        i = np.uint64(row) + np.uint64(lane)
        x = np.float32(lane)
        dx = mx - (x0 + x)
        sigma = _HALF * a * dx * dx + cdy + bdy * dx
        s = min(max(sigma, _ZERO), SIGMA_CAP) * np.float32(0.125)
        e = c0 + s * (c1 + s * (c2 + s * (c3 + s * (c4 + s * c5))))
        e = e * e
        e = e * e
        e = e * e
        alpha = min(_A_MAX, o * e)
        t = st[i]
        next_t = t * (_ONE - alpha)
        hit = (x >= lo) & (x < hi) & (sigma >= _ZERO) & (alpha >= _A_MIN) & (t > _ZERO)
        go = hit & (next_t > _T_MIN)
        w = alpha * t if go else _ZERO
        st[i + plane] += w * cr
        st[i + plane2] += w * cg
        st[i + plane3] += w * cb
        st[i] = next_t if go else (-t if hit else t)  # a stopping pixel keeps −T: spent, T still weighs bg


@njit(cache=True, inline="always")
def _spent(st, npix):  # pragma: no cover - numba
    """True when every pixel of a tile's state has stopped."""
    for p in range(npix):
        if st[p] > 0.0:
            return False
    return True


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def composite(params, rects, offsets, flat, width, height, tile, first, last, bg, out_rgb, out_alpha,
              out_u8):  # pragma: no cover - numba
    """Front-to-back compositing of tiles first..last-1 over background bg [3].

    Writes out_rgb [H, W, 3] float32 (composited), out_alpha [H, W] float32 and out_u8 [H, W, 3] uint8
    (clamped to [0, 1], ·255, rounded half up) for those tiles. params / rects: records in depth order;
    offsets, flat: bin_tiles. A tile's state is one float32 array (transmittance T, then r, g, b sums: one
    array, so the compiler sees that the planes do not overlap); every Gaussian is blended into whole tile
    rows (_blend_row), exp(−σ) per pixel by polynomial, and a tile stops once all its pixels have.
    """
    n_tx = (width + tile - 1) // tile
    npix = tile * tile
    for t in prange(first, last):
        tx0, ty0 = (t % n_tx) * tile, (t // n_tx) * tile
        st = np.zeros(4 * npix, dtype=np.float32)
        st[:npix] = 1.0
        x0 = np.float32(tx0) + _HALF
        start = offsets[t]
        for k in range(start, offsets[t + 1]):
            if (k - start) % 32 == 31 and _spent(st, npix):
                break
            j = flat[k]
            mx, my, a, b, c = params[j, 0], params[j, 1], params[j, 2], params[j, 3], params[j, 4]
            lo = np.float32(max(rects[j, 0], tx0) - tx0)
            hi = np.float32(min(rects[j, 2], tx0 + tile) - tx0)
            for py in range(max(rects[j, 1], ty0), min(rects[j, 3], ty0 + tile)):
                dy = my - (np.float32(py) + _HALF)
                _blend_row(st, (py - ty0) * tile, tile, lo, hi, x0, mx, a, b, _HALF * c * dy * dy, b * dy,
                           params[j, 5], params[j, 7], params[j, 8], params[j, 9])
        for p in range(npix):
            py, px = ty0 + p // tile, tx0 + p % tile
            if py >= height or px >= width:
                continue
            trans = abs(st[p])
            out_alpha[py, px] = 1.0 - trans
            for ch in range(3):
                v = st[(ch + 1) * npix + p] + trans * bg[ch]
                out_rgb[py, px, ch] = v
                out_u8[py, px, ch] = np.uint8(int(min(max(v, 0.0), 1.0) * 255.0 + 0.5))
