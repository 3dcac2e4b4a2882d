"""Signed-distance sculpt of the embedded demo head (metres, FLAME frame: y up, face toward +z).

Every function takes points `p: ndarray  # [N, 3]` and returns signed distances `[N]` (negative
inside). Distances of ellipsoids are the usual bound approximation, good enough for meshing and
for projecting vertices back onto the surface. `ANATOMY` holds the landmarks the rig and the
labels are built from, so the sculpt and its rig cannot drift apart.
"""

from __future__ import annotations

import numpy as np
from numpy import ndarray

EYE_RADIUS = 0.0120  # eyeball radius
LID_RADIUS = 0.0142  # radius of the eyelid shell around an eyeball (lid thickness ~2 mm)

ANATOMY: dict[str, ndarray] = {
    "left_eye": np.array([0.0320, 0.0300, 0.0620]),  # subject's left eye centre (+x)
    "right_eye": np.array([-0.0320, 0.0300, 0.0620]),  # subject's right eye centre
    "mouth": np.array([0.0, -0.0480, 0.0870]),  # centre of the lip split, at the lip front
    "nose_tip": np.array([0.0, -0.0115, 0.1080]),  # tip of the nose
    "nasion": np.array([0.0, 0.0380, 0.0800]),  # top of the nose bridge
    "chin": np.array([0.0, -0.1000, 0.0700]),  # front of the chin
    "jaw_hinge": np.array([0.0, -0.0080, 0.0000]),  # midpoint of the two jaw hinges
    "neck": np.array([0.0, -0.0550, -0.0200]),  # neck joint (skull base)
    "root": np.array([0.0, -0.1650, -0.0150]),  # root joint (neck base)
    "left_ear": np.array([0.0790, 0.0100, -0.0120]),  # centre of the left ear
    "right_ear": np.array([-0.0790, 0.0100, -0.0120]),  # centre of the right ear
}
"""Named rest-pose points of the sculpt."""

MOUTH_HALF_WIDTH = 0.0250  # lip split from corner to corner / 2
SLIT_HALF_HEIGHT = 0.0018  # half the gap between the lips at rest
NECK_BOTTOM = -0.1780  # y of the flat bottom of the neck


def ellipsoid(p: ndarray, centre: ndarray | list[float], radii: ndarray | list[float]) -> ndarray:
    """Approximate signed distance to an axis-aligned ellipsoid."""
    r = np.asarray(radii, dtype=np.float64)
    q = p - np.asarray(centre, dtype=np.float64)
    k0 = np.linalg.norm(q / r, axis=1)
    k1 = np.linalg.norm(q / (r * r), axis=1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def sphere(p: ndarray, centre: ndarray | list[float], radius: float) -> ndarray:
    """Signed distance to a sphere."""
    return np.linalg.norm(p - np.asarray(centre, dtype=np.float64), axis=1) - radius


def capsule(p: ndarray, a: list[float], b: list[float], ra: float, rb: float) -> ndarray:
    """Approximate signed distance to a round cone from a (radius ra) to b (radius rb)."""
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ab = b_ - a_
    t = np.clip(((p - a_) @ ab) / float(ab @ ab), 0.0, 1.0)
    closest = a_ + t[:, None] * ab
    return np.linalg.norm(p - closest, axis=1) - (ra + (rb - ra) * t)


def smin(a: ndarray, b: ndarray, k: float) -> ndarray:
    """Smooth union (polynomial smooth minimum) with blend radius k."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def smax(a: ndarray, b: ndarray, k: float) -> ndarray:
    """Smooth intersection (smooth maximum) with blend radius k."""
    return -smin(-a, -b, k)


def _mirror_x(p: ndarray) -> ndarray:
    """Points folded onto the +x half, for left/right symmetric parts."""
    q = p.copy()
    q[:, 0] = np.abs(q[:, 0])
    return q


def skull(p: ndarray) -> ndarray:
    """Cranium, forehead, brow ridge, cheekbones, cheeks, jaw and chin (no features)."""
    m = _mirror_x(p)
    d = ellipsoid(p, [0.0, 0.0330, -0.0120], [0.0760, 0.0960, 0.0990])
    d = smin(d, ellipsoid(p, [0.0, 0.0600, 0.0300], [0.0640, 0.0560, 0.0570]), 0.02)  # forehead
    d = smin(d, ellipsoid(m, [0.0300, 0.0470, 0.0660], [0.0230, 0.0080, 0.0150]), 0.010)  # brow ridge
    d = smin(d, ellipsoid(p, [0.0, -0.0200, 0.0200], [0.0580, 0.0600, 0.0620]), 0.02)  # mid face
    d = smin(d, ellipsoid(m, [0.0470, 0.0100, 0.0430], [0.0230, 0.0170, 0.0220]), 0.015)  # cheekbone
    d = smin(d, ellipsoid(m, [0.0360, -0.0120, 0.0520], [0.0220, 0.0220, 0.0220]), 0.015)  # cheek
    d = smin(d, ellipsoid(p, [0.0, -0.0450, 0.0620], [0.0280, 0.0240, 0.0220]), 0.015)  # muzzle
    jaw = capsule(m, [0.0560, -0.0250, -0.0150], [0.0200, -0.0880, 0.0520], 0.0100, 0.0120)
    d = smin(d, jaw, 0.020)
    d = smin(d, ellipsoid(p, [0.0, -0.0920, 0.0600], [0.0210, 0.0150, 0.0160]), 0.012)  # chin
    return d


def neck(p: ndarray) -> ndarray:
    """Neck: a tilted, downward-widening round cylinder flaring into a base, cut flat at NECK_BOTTOM."""
    d = capsule(p, [0.0, -0.0400, -0.0300], [0.0, NECK_BOTTOM - 0.05, -0.0080], 0.0500, 0.0570)
    d = smin(d, ellipsoid(p, [0.0, NECK_BOTTOM - 0.006, -0.0150], [0.0760, 0.0240, 0.0560]), 0.022)  # base
    return np.maximum(d, NECK_BOTTOM - p[:, 1])


def nose(p: ndarray) -> ndarray:
    """Nose: bridge, tip and the two alae."""
    m = _mirror_x(p)
    tip = ANATOMY["nose_tip"]
    d = capsule(p, [0.0, 0.0330, 0.0770], [0.0, -0.0050, 0.0985], 0.0055, 0.0080)  # bridge
    d = smin(d, ellipsoid(p, tip - [0.0, 0.0, 0.0082], [0.0088, 0.0085, 0.0078]), 0.006)  # tip
    d = smin(d, ellipsoid(m, [0.0112, -0.0165, 0.0865], [0.0062, 0.0054, 0.0068]), 0.006)  # ala
    d = smin(d, ellipsoid(p, [0.0, -0.0160, 0.0750], [0.0135, 0.0085, 0.0140]), 0.006)  # base
    return d


def nostrils(p: ndarray) -> ndarray:
    """The two shallow nostril holes (carved)."""
    m = _mirror_x(p)
    return ellipsoid(m, [0.0055, -0.0200, 0.0930], [0.0027, 0.0016, 0.0040])


def lips(p: ndarray) -> tuple[ndarray, ndarray]:
    """Upper and lower lip volumes."""
    c = ANATOMY["mouth"]
    m = _mirror_x(p)
    upper = capsule(m, [0.0, c[1] + 0.0040, c[2] - 0.0030], [MOUTH_HALF_WIDTH - 0.006, c[1] + 0.0020, c[2] - 0.0130],
                    0.0075, 0.0040)
    lower = capsule(m, [0.0, c[1] - 0.0055, c[2] - 0.0050], [MOUTH_HALF_WIDTH - 0.007, c[1] - 0.0030, c[2] - 0.0150],
                    0.0080, 0.0040)
    return upper, lower


def mouth_cut(p: ndarray) -> ndarray:
    """Mouth split plus the cavity behind it (carved out of the head)."""
    c = ANATOMY["mouth"]
    slit = ellipsoid(p, [0.0, c[1], c[2] - 0.012], [MOUTH_HALF_WIDTH, SLIT_HALF_HEIGHT, 0.030])
    cavity = ellipsoid(p, [0.0, c[1] - 0.002, c[2] - 0.038], [0.0230, 0.0120, 0.0240])
    return smin(slit, cavity, 0.006)


def eye_window(p: ndarray, centre: ndarray) -> ndarray:
    """Almond-shaped opening of one eye, extruded forward from the eyeball centre."""
    q = p - centre
    side = np.sign(centre[0])
    x = q[:, 0] * side  # + toward the temple
    y = q[:, 1] - 0.0025 * (x / 0.014)  # outer corner a little higher
    half_h = 0.0062 * np.clip(1.0 - (x / 0.0155) ** 2, 0.0, None) ** 0.6
    d2 = np.maximum(np.abs(y) - half_h, np.abs(x) - 0.0155)
    return np.maximum(d2, -(q[:, 2] + 0.0020))


def hair(p: ndarray) -> ndarray:
    """Hair cap: an inflated cranium above a slanted hairline."""
    d = ellipsoid(p, [0.0, 0.0360, -0.0150], [0.0800, 0.1000, 0.1040])
    d = smin(d, ellipsoid(p, [0.0, 0.0640, 0.0280], [0.0670, 0.0580, 0.0580]), 0.02)
    n = np.array([0.0, 0.80, -0.60])  # hairline plane normal (up and back)
    plane = -((p - np.array([0.0, 0.0850, 0.0800])) @ (n / np.linalg.norm(n)))
    side = -(p[:, 1] - 0.0320) - 0.4 * np.clip(-p[:, 2] - 0.02, 0.0, None)  # above the ears
    return smax(smax(d, plane, 0.012), side, 0.01)


def ears(p: ndarray) -> ndarray:
    """Both ears: a tilted flattened ellipsoid with a carved concha, joined at the front."""
    m = _mirror_x(p)
    c = ANATOMY["left_ear"]
    q = m - c
    tilt = 0.25  # the ear leans back
    y = q[:, 1] * np.cos(tilt) + q[:, 2] * np.sin(tilt)
    z = -q[:, 1] * np.sin(tilt) + q[:, 2] * np.cos(tilt)
    local = np.stack([q[:, 0], y, z], axis=1)
    d = ellipsoid(local, [0.0, 0.0, 0.0], [0.0090, 0.0300, 0.0180])
    d = smin(d, ellipsoid(local, [-0.0090, -0.0020, 0.0050], [0.0100, 0.0180, 0.0100]), 0.006)  # root
    bowl = ellipsoid(local, [0.0085, -0.0040, 0.0020], [0.0060, 0.0140, 0.0090])
    return smax(d, -bowl, 0.003)


def head(p: ndarray) -> ndarray:
    """The whole skin surface (head, neck, features) as one signed distance."""
    d = smin(skull(p), neck(p), 0.030)
    d = smin(d, hair(p), 0.006)
    d = smin(d, nose(p), 0.010)
    d = smax(d, -nostrils(p), 0.002)
    upper, lower = lips(p)
    d = smin(d, upper, 0.006)
    d = smin(d, lower, 0.006)
    d = smin(d, ears(p), 0.006)
    for side in ("left_eye", "right_eye"):
        c = ANATOMY[side]
        d = smin(d, sphere(p, c, LID_RADIUS), 0.006)  # eyelid bulge over the eyeball
        d = smax(d, -np.maximum(eye_window(p, c), sphere(p, c, LID_RADIUS + 0.006)), 0.0012)
    d = smax(d, -mouth_cut(p), 0.0015)
    return d


def gradient(f: "callable", p: ndarray, eps: float = 1e-4) -> ndarray:
    """Central-difference gradient of a signed distance `f` at points p [N, 3] -> [N, 3]."""
    g = np.empty_like(p)
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = eps
        g[:, axis] = (f(p + step) - f(p - step)) / (2.0 * eps)
    return g
