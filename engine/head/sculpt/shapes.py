"""Identity modes and named expression blendshapes of the demo head (displacement fields).

Each field maps rest vertices [V, 3] to displacements [V, 3] in metres at coefficient 1.0.
Fields use compactly supported bumps, so a blendshape moves nothing outside its region.
Eyeballs (part 1 / 2) only ever move rigidly.
"""

from __future__ import annotations

import numpy as np
from numpy import ndarray

from engine.head.sculpt import sdf
from engine.head.sculpt.rig import jaw_weight, smoothstep

A = sdf.ANATOMY
EXPRESSION_NAMES: tuple[str, ...] = (
    "smile", "frown", "brow_raise", "brow_furrow", "blink_left", "blink_right", "pucker", "cheek_puff",
    "lip_stretch", "nose_wrinkle", "mouth_left", "mouth_right", "squint", "jaw_forward",
)
"""Named expression blendshapes, in shapedirs column order from 300."""


def bump(p: ndarray, centre: ndarray | list[float], radii: ndarray | list[float] | float) -> ndarray:
    """(1 - t²)³ for t = |(p - centre) / radii| < 1, else 0 -> [N]."""
    t2 = np.sum(((p - np.asarray(centre)) / np.asarray(radii)) ** 2, axis=1)
    return np.clip(1.0 - t2, 0.0, None) ** 3


def _vec(w: ndarray, d: list[float] | ndarray) -> ndarray:
    return w[:, None] * np.asarray(d, dtype=np.float64)


def _lid_rotation(p: ndarray, centre: ndarray, angle: float, upper: bool) -> ndarray:
    """Rotate one eyelid about the eye's horizontal axis (positive angle = down, over the eye)."""
    q = p - centre
    side = np.sign(centre[0])
    along = q[:, 1] - 0.0025 * (q[:, 0] * side / 0.014)  # height above the tilted lid split
    r = np.linalg.norm(q, axis=1)
    w = smoothstep(0.026, 0.0165, r) * smoothstep(0.021, 0.0135, np.abs(q[:, 0])) * smoothstep(-0.006, 0.0, q[:, 2])
    w *= smoothstep(-0.0004, 0.0012, along) if upper else smoothstep(0.0004, -0.0012, along)
    a = angle * w
    y = q[:, 1] * np.cos(a) - q[:, 2] * np.sin(a)
    z = q[:, 1] * np.sin(a) + q[:, 2] * np.cos(a)
    out = np.zeros_like(p)
    out[:, 1], out[:, 2] = y - q[:, 1], z - q[:, 2]
    return out


def _corners(p: ndarray, move: list[float], radius: float = 0.019) -> ndarray:
    """Both mouth corners moved by `move` (x mirrored for the right side)."""
    m = A["mouth"]
    out = np.zeros_like(p)
    for s in (1.0, -1.0):
        w = bump(p, [s * sdf.MOUTH_HALF_WIDTH, m[1], m[2] - 0.006], [radius, radius, 0.03])
        out += _vec(w, [s * move[0], move[1], move[2]])
    return out


def _lips_zone(p: ndarray) -> ndarray:
    m = A["mouth"]
    return bump(p, [0.0, m[1], m[2] - 0.004], [0.038, 0.022, 0.03])


def expression_fields(verts: ndarray) -> ndarray:
    """Displacements [V, 3, E] of the named expressions (EXPRESSION_NAMES order), skin only."""
    p = verts
    m, ey = A["mouth"], A["left_eye"][1]
    x, y = p[:, 0], p[:, 1]
    front = smoothstep(0.02, 0.05, p[:, 2])
    fields: dict[str, ndarray] = {}
    cheeks = sum(_vec(bump(p, [s * 0.040, -0.012, 0.055], 0.028), [s * 0.0022, 0.0060, 0.0025]) for s in (1, -1))
    widen = np.stack([0.10 * x, np.zeros(len(p)), np.zeros(len(p))], axis=1) * _lips_zone(p)[:, None]
    fields["smile"] = _corners(p, [0.0060, 0.0095, -0.0045], radius=0.021) + cheeks + widen
    chin = _vec(bump(p, A["chin"] + [0, 0.01, 0], 0.028), [0.0, 0.0028, 0.0020])
    fields["frown"] = _corners(p, [-0.0015, -0.0085, -0.0010], radius=0.021) + chin
    brow_w = sum(bump(p, [s * 0.030, ey + 0.022, 0.075], [0.040, 0.028, 0.06]) for s in (1, -1))
    fields["brow_raise"] = _vec(np.clip(brow_w, 0, 1) * front, [0.0, 0.0095, 0.0008])
    fields["brow_furrow"] = sum(
        _vec(bump(p, [s * 0.015, ey + 0.018, 0.080], [0.022, 0.016, 0.04]) * front, [-s * 0.0050, -0.0045, 0.0012])
        for s in (1, -1)
    )
    for name, eye in (("blink_left", A["left_eye"]), ("blink_right", A["right_eye"])):
        fields[name] = _lid_rotation(p, eye, 0.62, upper=True) + _lid_rotation(p, eye, -0.14, upper=False)
    lips = _lips_zone(p)
    fields["pucker"] = np.stack([-0.45 * x * lips, -0.15 * (y - m[1]) * lips, 0.0100 * lips], axis=1)
    fields["cheek_puff"] = sum(
        _vec(bump(p, [s * 0.042, -0.032, 0.045], [0.032, 0.030, 0.04]) * front, [s * 0.0065, 0.0, 0.0045])
        for s in (1, -1)
    ) + _vec(lips, [0.0, 0.0, 0.002])
    thin = np.where(y > m[1], -1.0, 1.0) * 0.0008 * bump(p, [0.0, m[1], m[2]], [0.02, 0.015, 0.03])
    fields["lip_stretch"] = np.stack([0.25 * x * lips, thin, -0.0015 * lips], axis=1)
    upper_only = smoothstep(m[1] - 0.0005, m[1] + 0.0015, y)
    fields["nose_wrinkle"] = (
        sum(_vec(bump(p, [s * 0.012, 0.004, 0.085], 0.018), [0.0, 0.0040, -0.0005]) for s in (1, -1))
        + _vec(bump(p, [0.0, -0.036, 0.09], [0.025, 0.014, 0.03]) * upper_only, [0.0, 0.0018, 0.0])
        + sum(_vec(bump(p, [s * 0.014, ey + 0.017, 0.08], 0.016) * front, [0.0, -0.0020, 0.0]) for s in (1, -1))
    )
    wide = bump(p, [0.0, m[1] - 0.002, m[2] - 0.006], [0.045, 0.028, 0.035])
    fields["mouth_left"] = _vec(wide, [0.0080, 0.0, -0.0005])
    fields["mouth_right"] = _vec(wide, [-0.0080, 0.0, -0.0005])
    squint = sum(_lid_rotation(p, A[e], -0.22, upper=False) for e in ("left_eye", "right_eye"))
    fields["squint"] = squint + sum(
        _vec(bump(p, [s * 0.036, 0.008, 0.06], 0.022), [0.0, 0.0025, 0.0005]) for s in (1, -1)
    )
    fields["jaw_forward"] = _vec(jaw_weight(p), [0.0, 0.0, 0.0060])
    return np.stack([fields[n] for n in EXPRESSION_NAMES], axis=2)


def identity_fields(verts: ndarray, part: ndarray) -> ndarray:
    """Displacements [V, 3, 10] of ten smooth identity modes; eyeballs move rigidly."""
    eye_centre = np.where((part == 1)[:, None], A["left_eye"], np.where((part == 2)[:, None], A["right_eye"], verts))
    p = eye_centre  # eyeball vertices evaluate every field at their eye centre
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    zero = np.zeros(len(p))
    front = smoothstep(-0.04, 0.02, z)
    lower = np.clip((0.03 - y) / 0.13, 0.0, 1.0) * smoothstep(-0.16, -0.10, y)
    modes = [
        np.stack([0.065 * x, zero, zero], axis=1),  # 0 head width
        np.stack([zero, -0.0070 * lower * front, 0.0010 * lower * front], axis=1),  # 1 face length
        np.stack([0.12 * x * bump(p, [0.0, -0.070, 0.010], [0.10, 0.050, 0.10]), zero, zero], axis=1),  # 2 jaw width
        _vec(bump(p, A["nose_tip"], 0.028), [0.0, -0.0025, 0.0045]),  # 3 nose length
        np.stack([zero, 0.0090 * np.clip((y - 0.03) / 0.10, 0.0, 1.0), zero], axis=1),  # 4 head height
        _vec(bump(p, A["chin"], 0.030), [0.0, -0.0020, 0.0050]),  # 5 chin prominence
        sum(_vec(bump(p, [s * 0.045, -0.020, 0.045], 0.035), [s * 0.0040, 0.0, 0.0020]) for s in (1, -1)),  # 6 cheeks
        sum(_vec(bump(p, A[e], 0.026), [np.sign(A[e][0]) * 0.0025, 0.0, 0.0]) for e in ("left_eye", "right_eye")),
        sum(_vec(bump(p, [s * 0.030, 0.050, 0.070], 0.026), [0.0, 0.0, 0.0030]) for s in (1, -1)),  # 8 brow ridge
        sum(0.22 * (p - [s * 0.068, 0.010, -0.012]) * bump(p, [s * 0.080, 0.010, -0.012], 0.040)[:, None]
            * smoothstep(0.062, 0.070, s * x)[:, None] for s in (1, -1)),  # 9 ear size
    ]
    out = np.stack(modes, axis=2)
    return out
