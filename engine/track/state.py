"""What tracking estimates: per-clip identity and camera, per-frame FLAME parameters; and the camera model.

The camera is fixed and looks along world −z from (0, 0, distance) with world +y up (as
`orbit_camera(0, 0, distance)`), so a head at zero rotation faces it; the head's rotation and
translation carry all motion. Only the focal length is unknown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.render.camera import Camera

PER_FRAME: tuple[str, ...] = ("rotation", "translation", "neck_pose", "jaw_pose", "eyes_pose", "expr")


def tracking_camera(width: int, height: int, focal: float, distance: float) -> Camera:
    """The fixed camera of a clip: at (0, 0, distance), looking along −z, +y up, principal point centred."""
    w2c = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, distance], [0.0, 0.0, 0.0, 1.0]])
    return Camera(w2c, fx=focal, fy=focal, cx=width / 2, cy=height / 2, width=width, height=height)


def project(points: Tensor, focal: Tensor, distance: float, cx: float, cy: float) -> Tensor:
    """Pixel positions [..., 2] of world points [..., 3] in `tracking_camera` (focal: a 0-d tensor)."""
    z = (distance - points[..., 2]).clamp(min=1e-3)
    return torch.stack([focal * points[..., 0] / z + cx, -focal * points[..., 1] / z + cy], dim=-1)


def default_focal(width: int, height: int, fov_deg: float) -> float:
    """Focal length in pixels for a field of view across the longer image side."""
    return 0.5 * max(width, height) / math.tan(math.radians(fov_deg) / 2)


@dataclass
class TrackState:
    """The fitted values (plain tensors; fitting stages make Parameters of the slices they optimise)."""

    shape: Tensor  # [S] identity coefficients (the head's used ones)
    static_offset: Tensor  # [V, 3] per-vertex offsets of the template, metres
    log_focal: Tensor  # [] log of the focal length in pixels
    distance: float  # camera distance from the world origin, metres
    rotation: Tensor  # [T, 3] head rotation, axis-angle
    translation: Tensor  # [T, 3] metres
    neck_pose: Tensor  # [T, 3]
    jaw_pose: Tensor  # [T, 3]
    eyes_pose: Tensor  # [T, 6]
    expr: Tensor  # [T, E_fit] the first E_fit expression coefficients
    fitted: Tensor  # [T] bool: the frame's parameters have been fitted (else they are a guess)

    @staticmethod
    def initial(head: HeadModel, frames: int, expr_count: int, focal: float, distance: float) -> TrackState:
        z = lambda *s: torch.zeros(*s)
        n_expr = min(expr_count, int(head.exprdirs.shape[2])) if head.exprdirs.shape[2] else 0
        return TrackState(z(int(head.shapedirs.shape[2])), z(head.n_verts, 3), torch.tensor(math.log(focal)), distance,
                          z(frames, 3), z(frames, 3), z(frames, 3), z(frames, 3), z(frames, 6), z(frames, n_expr),
                          torch.zeros(frames, dtype=torch.bool))

    @property
    def frames(self) -> int:
        return int(self.rotation.shape[0])

    @property
    def focal(self) -> float:
        return float(self.log_focal.exp())

    def params(self, head: HeadModel, rows: slice | Tensor | None = None) -> FlameParams:
        """FlameParams (the head's full widths) of some frames (all by default)."""
        index = slice(None) if rows is None else rows
        return params_of(head, self.shape, self.static_offset, {k: getattr(self, k)[index] for k in PER_FRAME})

    def camera(self, width: int, height: int) -> Camera:
        return tracking_camera(width, height, self.focal, self.distance)


def params_of(head: HeadModel, shape: Tensor, static_offset: Tensor | None, frame: dict[str, Tensor]) -> FlameParams:
    """FlameParams at the head's widths from fitted values (expression and shape zero-padded; differentiable)."""
    expr = frame["expr"]
    expr = torch.nn.functional.pad(expr, (0, head.n_expr - expr.shape[1]))
    full_shape = torch.nn.functional.pad(shape, (0, head.n_shape - shape.shape[0]))
    return FlameParams(full_shape, expr, frame["rotation"], frame["neck_pose"], frame["jaw_pose"],
                       frame["eyes_pose"], frame["translation"], static_offset=static_offset)
