"""Component labels of the demo head, from smooth fields, plus the rest-pose lip closure.

The lips and brows are outlined by smooth analytic fields (`lip_fields`, `brow_field`) that the
demo avatar also uses for its colours, so labels and colours agree. Face labels are then
majority-filtered over the triangle adjacency so no boundary is a sawtooth of single triangles.
`close_lips` moves the two lips together so the mouth is closed at rest: the carved split stays
in the mesh (the jaw still opens it), only its two walls are pressed onto one seam.
All inputs are rest points `p: ndarray  # [N, 3]` in the sculpt frame (metres).
"""

from __future__ import annotations

import numpy as np
from numpy import ndarray

from engine.head.sculpt import sdf
from engine.head.components import LABEL
from engine.head.triangles import face_normals

A = sdf.ANATOMY
LIP_CLOSE = 0.0024  # half-height of the band around the lip split that is pressed onto the seam
UPPER_LIP_HEIGHT = 0.0068  # vermilion height of the upper lip at the centre
LOWER_LIP_HEIGHT = 0.0088  # vermilion height of the lower lip at the centre


def smoothstep(lo: float | ndarray, hi: float | ndarray, x: ndarray) -> ndarray:
    """0 below lo, 1 above hi, C1-smooth in between (lo > hi reverses the ramp)."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def close_lips(p: ndarray) -> ndarray:
    """Displacements [N, 3] that press the lip split shut (apply to the rest skin only).

    Heights h above the split inside ±LIP_CLOSE shrink to 8 % (kept ordered, never degenerate);
    farther out the shift fades, so the lips keep their shape and meet on one seam.
    """
    m = A["mouth"]
    h = p[:, 1] - m[1]
    a = np.abs(h)
    fade = smoothstep(0.011, 0.004, a)
    band = LIP_CLOSE * (1.0 + 0.5 * np.clip(np.abs(p[:, 0]) / sdf.MOUTH_HALF_WIDTH, 0.0, 1.0) ** 4)  # wider at corners
    shift = 0.92 * band * np.minimum(a / band, 1.0) * fade
    zone = smoothstep(sdf.MOUTH_HALF_WIDTH + 0.007, sdf.MOUTH_HALF_WIDTH + 0.001, np.abs(p[:, 0]))
    zone *= smoothstep(m[2] - 0.026, m[2] - 0.018, p[:, 2])
    out = np.zeros_like(p)
    out[:, 1] = -np.sign(h) * shift * zone
    return out


def lip_fields(p: ndarray, soft: float = 0.0006) -> tuple[ndarray, ndarray]:
    """Soft membership [N] in the upper and lower lip (closed rest frame), each in [0, 1].

    The vermilion outline: a cupid's bow above the seam, a rounder arc below, both narrowing to
    the mouth corners; only the front of the lips (not the mouth cavity) belongs.
    """
    m, hw = A["mouth"], sdf.MOUTH_HALF_WIDTH
    x, h = np.abs(p[:, 0]), p[:, 1] - m[1]
    s = np.clip(x / hw, 0.0, 1.0)
    bow = 0.0011 * np.exp(-((x - 0.0048) / 0.0030) ** 2) - 0.0009 * np.exp(-(x / 0.0022) ** 2)
    top = UPPER_LIP_HEIGHT * np.clip(1.0 - s**2, 0.0, None) ** 0.55 + bow
    bottom = LOWER_LIP_HEIGHT * np.clip(1.0 - s**2, 0.0, None) ** 0.65
    front = smoothstep(m[2] - 0.0075 - 0.010 * s**2, m[2] - 0.0045 - 0.010 * s**2, p[:, 2])
    side = smoothstep(hw + 0.0020, hw - 0.0010, x)
    upper = smoothstep(top + soft, top - soft, h) * smoothstep(-soft, soft, h)
    lower = smoothstep(bottom + soft, bottom - soft, -h) * smoothstep(soft, -soft, h)
    return upper * front * side, lower * front * side


def brow_curve(ax: ndarray) -> tuple[ndarray, ndarray]:
    """Centre height [N] and half thickness [N] of a brow at distance ax [N] from the midline."""
    t = np.clip((ax - 0.010) / 0.044, 0.0, 1.0)  # 0 at the head of the brow, 1 at its tail
    centre = A["left_eye"][1] + 0.0150 + 0.0068 * np.sin(np.pi * np.clip(t / 1.25, 0.0, 1.0)) - 0.0010 * t
    half = 0.0036 * (1.0 - 0.55 * t) * smoothstep(0.0, 0.10, t) ** 0.5 * smoothstep(1.0, 0.90, t) ** 0.5
    return centre, half


def brow_field(p: ndarray, soft: float = 0.0007, grow: float = 0.0) -> ndarray:
    """Soft membership [N] in either brow (front of the forehead only); `grow` widens the band."""
    ax = np.abs(p[:, 0])
    centre, half = brow_curve(ax)
    half = half + grow * (half > 0)
    inside = smoothstep(half + soft, half - soft, np.abs(p[:, 1] - centre))
    return inside * smoothstep(0.040, 0.050, p[:, 2]) * smoothstep(0.0095, 0.0115, ax) * smoothstep(0.056, 0.053, ax)


def face_adjacency(faces: ndarray) -> ndarray:
    """Indices [F, 3] of the face across each edge of each face (-1 where none)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = np.sort(edges, axis=1)
    owner = np.tile(np.arange(len(faces)), 3)
    slot = np.repeat(np.arange(3), len(faces))
    order = np.lexsort((key[:, 1], key[:, 0]))
    k, o, s = key[order], owner[order], slot[order]
    same = np.all(k[1:] == k[:-1], axis=1)
    adj = np.full((len(faces), 3), -1, dtype=np.int64)
    i = np.flatnonzero(same)
    adj[o[i], s[i]] = o[i + 1]
    adj[o[i + 1], s[i + 1]] = o[i]
    return adj


def majority_filter(faces: ndarray, labels: ndarray, frozen: ndarray, iterations: int = 3) -> ndarray:
    """Labels [F] where a face whose edge neighbours mostly agree on another label takes it.

    A face changes when at least two of its three neighbours share a label different from its
    own; `frozen` [F] bool faces neither change nor spread. Runs `iterations` Jacobi passes.
    """
    adj = face_adjacency(faces)
    out = labels.copy()
    for _ in range(iterations):
        nb = np.where(adj >= 0, out[np.maximum(adj, 0)], -1)
        nb = np.where((adj >= 0) & ~frozen[np.maximum(adj, 0)], nb, -1)
        pick = np.where(nb[:, 1] == nb[:, 2], nb[:, 1], np.where(nb[:, 0] == nb[:, 2], nb[:, 0], nb[:, 0]))
        agree = ((nb[:, 0] == nb[:, 1]) | (nb[:, 0] == nb[:, 2]) | (nb[:, 1] == nb[:, 2])) & (pick >= 0)
        change = agree & (pick != out) & ~frozen
        out = np.where(change, pick, out)
    return out


def face_labels(open_verts: ndarray, closed_verts: ndarray, faces: ndarray, part: ndarray,
                jaw_weight: ndarray) -> ndarray:
    """Component label [F] of every face.

    open_verts [V, 3] are the meshed rest vertices (mouth split open), closed_verts [V, 3] the
    shipped rest vertices (lips closed), jaw_weight [V] the jaw skinning weight.
    """
    c = open_verts[faces].mean(axis=1)
    cc = closed_verts[faces].mean(axis=1)
    x, y, z = c[:, 0], c[:, 1], c[:, 2]
    ax = np.abs(x)
    labels = np.full(len(faces), LABEL["skin"], dtype=np.int64)
    labels[y < -0.090 - 0.30 * z] = LABEL["neck"]
    labels[(sdf.hair(c) < 0.0008) & (y > -0.075)] = LABEL["hair"]
    labels[(sdf.ears(c) < 0.0015) & (ax > 0.060)] = LABEL["ears"]
    labels[(sdf.nose(c) < 0.0012) & (ax < 0.022) & (y > -0.025) & (y < 0.040)] = LABEL["nose"]
    brow = brow_field(cc, soft=0.0010, grow=0.0014) > 0.4
    labels[brow & (x > 0)] = LABEL["left_brow"]
    labels[brow & (x < 0)] = LABEL["right_brow"]
    upper, lower = lip_fields(cc)
    labels[upper > 0.5] = LABEL["upper_lip"]
    labels[lower > 0.5] = LABEL["lower_lip"]
    m = A["mouth"]
    interior = (sdf.mouth_cut(c) < 0.0015) & (z < m[2] - 0.0010) & (ax < sdf.MOUTH_HALF_WIDTH + 0.004)
    torn = (np.ptp(jaw_weight[faces], axis=1) > 0.5) & (ax < sdf.MOUTH_HALF_WIDTH + 0.004) & (z < m[2] + 0.002)
    labels[(interior | torn) & (upper < 0.5) & (lower < 0.5)] = LABEL["mouth_interior"]
    face_part = part[faces[:, 0]]
    labels[face_part == 1] = LABEL["left_eye"]
    labels[face_part == 2] = LABEL["right_eye"]
    frozen = (face_part != 0) | (labels == LABEL["mouth_interior"])
    labels = majority_filter(faces, labels, frozen)
    jw = jaw_weight[faces]  # a lip follows the head (upper) or the jaw (lower); torn faces are inside
    lip = np.isin(labels, [LABEL["upper_lip"], LABEL["lower_lip"]])
    labels[lip] = np.where(jw[lip].mean(axis=1) < 0.5, LABEL["upper_lip"], LABEL["lower_lip"])
    labels[lip & (np.ptp(jw, axis=1) > 0.5)] = LABEL["mouth_interior"]
    n = face_normals(closed_verts[faces])
    n_z = n[:, 2] / np.maximum(np.linalg.norm(n, axis=1), 1e-20)
    hidden = lip & (n_z < 0.15) & (np.abs(cc[:, 1] - m[1]) < 0.0012)  # inner lip walls, pressed shut at rest
    labels[hidden] = LABEL["mouth_interior"]
    return labels
