"""Rig of the demo head: skinning weights, joint regressor and landmarks (labels: labels.py).

All functions work on the rest-pose mesh. Parts: `part` [V] is 0 for skin, 1 for the left
eyeball, 2 for the right eyeball.
"""

from __future__ import annotations

import numpy as np
from numpy import ndarray
from scipy.optimize import nnls

from engine.head.sculpt import sdf
from engine.head.components import LABEL
from engine.head.sculpt.labels import brow_curve

A = sdf.ANATOMY


def smoothstep(lo: float, hi: float, x: ndarray) -> ndarray:
    """0 below lo, 1 above hi, C1-smooth in between (lo > hi reverses the ramp)."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def jaw_weight(p: ndarray) -> ndarray:
    """How much each rest point [N, 3] follows the jaw joint, in [0, 1] -> [N]."""
    m, hinge = A["mouth"], A["jaw_hinge"]
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    # signed height above the line from the lip split to the hinge, in the (y, z) plane
    t = np.clip((z - hinge[2]) / (m[2] - hinge[2]), 0.0, 1.2)
    line_y = hinge[1] + t * (m[1] - hinge[1])
    mouth_zone = smoothstep(sdf.MOUTH_HALF_WIDTH + 0.012, sdf.MOUTH_HALF_WIDTH, np.abs(x)) * smoothstep(0.020, 0.035, z)
    line_y = mouth_zone * m[1] + (1.0 - mouth_zone) * line_y  # the lip split, level through the cavity
    above = y - line_y
    width = 0.0012 * mouth_zone + 0.012 * (1.0 - mouth_zone)
    below = smoothstep(width, -width, above)
    lateral = smoothstep(0.085, 0.055, np.abs(x))
    back = smoothstep(-0.030, 0.010, z)
    throat = smoothstep(-0.135, -0.095, y)
    return below * lateral * back * throat


def skinning_weights(verts: ndarray, part: ndarray) -> ndarray:
    """LBS weights [V, 5] (root, neck, jaw, left eye, right eye); rows sum to 1."""
    y = verts[:, 1]
    w = np.zeros((len(verts), 5))
    root = smoothstep(-0.115, -0.175, y - 0.15 * np.clip(verts[:, 2], None, 0.0))
    jaw = jaw_weight(verts) * (1.0 - root)
    w[:, 0], w[:, 2] = root, jaw
    w[:, 1] = 1.0 - root - jaw
    w[part == 1] = [0, 0, 0, 1, 0]
    w[part == 2] = [0, 0, 0, 0, 1]
    return w


def _convex_weights(points: ndarray, target: ndarray) -> ndarray:
    """Non-negative weights [K] summing to 1 with weights @ points ≈ target."""
    lam = 10.0
    a = np.vstack([points.T, lam * np.ones(len(points))])
    b = np.concatenate([target, [lam]])
    w, _ = nnls(a, b)
    return w / w.sum()


def joint_regressor(verts: ndarray, part: ndarray) -> ndarray:
    """J_regressor [5, V]: each joint a convex combination of nearby vertices."""
    reg = np.zeros((5, len(verts)))
    skin = np.flatnonzero(part == 0)
    for row, name, band in ((0, "root", 0.008), (1, "neck", 0.008)):
        target = A[name]
        ring = skin[np.abs(verts[skin, 1] - target[1]) < band]
        ring = ring[np.linalg.norm(verts[ring][:, [0, 2]] - target[[0, 2]], axis=1) < 0.075]
        reg[row, ring] = _convex_weights(verts[ring], target)
    hinge = A["jaw_hinge"]
    picks = []
    for side in (1.0, -1.0):
        spot = hinge + np.array([side * 0.070, 0.0, 0.0])
        d = np.linalg.norm(verts[skin] - spot, axis=1)
        picks.append(skin[np.argsort(d, kind="stable")[:12]])
    near = np.concatenate(picks)
    reg[2, near] = _convex_weights(verts[near], hinge)
    for row, p in ((3, 1), (4, 2)):
        idx = np.flatnonzero(part == p)
        reg[row, idx] = 1.0 / len(idx)
    return reg


def landmark_targets() -> ndarray:
    """The 51 iBUG points (no jaw contour) as (x, y) [51, 2] on the front of the face."""
    ey, my, hw = A["left_eye"][1], A["mouth"][1], sdf.MOUTH_HALF_WIDTH
    brow_x = [-0.050, -0.041, -0.031, -0.021, -0.012, 0.012, 0.021, 0.031, 0.041, 0.050]
    pts = [(x, float(brow_curve(np.array([abs(x)]))[0][0])) for x in brow_x]
    pts += [(0.0, 0.034), (0.0, 0.020), (0.0, 0.005), (0.0, -0.008)]
    pts += [(-0.010, -0.020), (-0.005, -0.023), (0.0, -0.024), (0.005, -0.023), (0.010, -0.020)]
    for cx, sign in ((-0.032, -1.0), (0.032, 1.0)):  # right eye first (iBUG 36-41), then left
        outer, inner = cx + sign * 0.0145, cx - sign * 0.0145
        if sign < 0:
            ring = [(outer, ey + 0.002), (cx - 0.005, ey + 0.0068), (cx + 0.005, ey + 0.0064), (inner, ey - 0.0010),
                    (cx + 0.005, ey - 0.0058), (cx - 0.005, ey - 0.0055)]
        else:
            ring = [(inner, ey - 0.0010), (cx - 0.005, ey + 0.0064), (cx + 0.005, ey + 0.0068), (outer, ey + 0.002),
                    (cx + 0.005, ey - 0.0055), (cx - 0.005, ey - 0.0058)]
        pts += ring
    pts += [(-hw, my), (-0.016, my + 0.0055), (-0.007, my + 0.0085), (0.0, my + 0.0078), (0.007, my + 0.0085),
            (0.016, my + 0.0055), (hw, my), (0.016, my - 0.0075), (0.007, my - 0.0105), (0.0, my - 0.011),
            (-0.007, my - 0.0105), (-0.016, my - 0.0075)]
    gap = 0.0004  # the lips are pressed shut at rest (labels.close_lips)
    pts += [(-hw + 0.004, my), (-0.008, my + gap), (0.0, my + gap), (0.008, my + gap), (hw - 0.004, my),
            (0.008, my - gap), (0.0, my - gap), (-0.008, my - gap)]
    return np.array(pts, dtype=np.float64)


def landmarks(verts: ndarray, faces: ndarray, labels: ndarray) -> tuple[ndarray, ndarray]:
    """Landmark faces [51] and barycentric coordinates [51, 3], by casting rays along -z."""
    allowed = ~np.isin(labels, [LABEL["left_eye"], LABEL["right_eye"], LABEL["mouth_interior"]])
    fidx = np.flatnonzero(allowed)
    tri = verts[faces[fidx]]  # [F, 3, 3]
    out_f, out_b = [], []
    for x, y in landmark_targets():
        origin = np.array([x, y, 0.5])
        direction = np.array([0.0, 0.0, -1.0])
        e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        pvec = np.cross(direction, e2)
        det = np.einsum("ij,ij->i", e1, pvec)
        ok = np.abs(det) > 1e-14
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        tvec = origin - tri[:, 0]
        u = np.einsum("ij,ij->i", tvec, pvec) * inv
        qvec = np.cross(tvec, e1)
        v = (qvec @ direction) * inv
        dist = np.einsum("ij,ij->i", e2, qvec) * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (dist > 0)
        if not hit.any():
            raise RuntimeError(f"demo head landmark at ({x:.3f}, {y:.3f}) hits no face")
        best = np.flatnonzero(hit)[np.argmin(dist[hit])]
        out_f.append(fidx[best])
        out_b.append([1.0 - u[best] - v[best], u[best], v[best]])
    return np.array(out_f, dtype=np.int64), np.array(out_b, dtype=np.float64)
