"""The viewer's orbit camera and the one rule that frames an avatar (viewport, exports and the CLI alike)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from engine.avatar.avatar import Avatar
from engine.head.params import FlameParams
from engine.render.camera import Camera, framing, orbit_camera

PITCH_LIMIT = 89.0  # degrees: the orbit stops short of the poles (look_at needs a horizontal right vector)
DISTANCE_RANGE = (0.05, 20.0)  # metres: zoom limits
FOV = 22.0  # default vertical field of view, degrees
VIEW_FILL = 1 / 1.15  # share of the view the framed avatar fills (its height, or its width over the aspect)


@dataclass(frozen=True)
class CameraState:
    """The viewport's orbit camera."""

    yaw: float = 0.0  # degrees about world +y; positive moves the camera toward +x
    pitch: float = 0.0  # degrees; positive moves the camera up
    distance: float = 0.6  # metres from the camera to target
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)  # orbit centre in world metres
    fov: float = FOV  # vertical field of view, degrees

    def camera(self, width: int, height: int) -> Camera:
        """The engine Camera for an image of width x height pixels."""
        return orbit_camera(self.yaw, self.pitch, self.distance, self.target, self.fov, width, height)

    def orbited(self, d_yaw: float, d_pitch: float) -> CameraState:
        pitch = min(PITCH_LIMIT, max(-PITCH_LIMIT, self.pitch + d_pitch))
        yaw = (self.yaw + d_yaw + 180.0) % 360.0 - 180.0
        return replace(self, yaw=yaw, pitch=pitch)

    def panned(self, dx_px: float, dy_px: float, height_px: int) -> CameraState:
        """The target moved so the picture follows a drag of (dx, dy) pixels in an image height_px tall."""
        metres_per_px = 2.0 * self.distance * math.tan(math.radians(self.fov) / 2) / max(1, height_px)
        rot = self.camera(64, 64).world_to_cam[:3, :3].double()  # rows: camera right, down, forward in world
        shift = (-dx_px * rot[0] - dy_px * rot[1]) * metres_per_px
        return replace(self, target=tuple(float(a + b) for a, b in zip(self.target, shift.tolist())))

    def zoomed(self, factor: float) -> CameraState:
        """Distance multiplied by factor (< 1 moves closer), within DISTANCE_RANGE."""
        lo, hi = DISTANCE_RANGE
        return replace(self, distance=min(hi, max(lo, self.distance * factor)))


def frame_points(points: torch.Tensor, fov: float = FOV, aspect: float = 1.0) -> tuple[tuple[float, float, float], float]:
    """(target, distance) that frame points [N, 3] the way every view of an avatar is framed (VIEW_FILL)."""
    target, distance = framing(points, fov, aspect, fill=VIEW_FILL)
    return target, max(DISTANCE_RANGE[0], distance)


def framing_camera(avatar: Avatar, fov: float = FOV, aspect: float = 1.0,
                   params: FlameParams | None = None) -> CameraState:
    """A front view that frames the avatar's Gaussians at params (one frame; default its first frame)."""
    with torch.inference_mode():
        means = avatar.splats(params).means.float()
    target, distance = frame_points(means, fov, aspect)
    return CameraState(0.0, 0.0, distance, target, fov)
