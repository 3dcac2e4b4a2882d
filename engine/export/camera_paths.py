"""Camera paths for exported videos: a fixed view, an orbit around the head, or a dolly toward it.

A path is a small frozen dataclass; `path_cameras(path, frames, width, height, target)` turns it into
one OpenCV Camera per frame (engine.render.camera.orbit_camera does the geometry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.render.camera import Camera, orbit_camera

PATH_KINDS: tuple[str, ...] = ("fixed", "orbit", "dolly")
"""Camera path kinds, in the order a menu lists them."""


@dataclass(frozen=True)
class CameraPath:
    """How the camera moves over an exported clip (angles in degrees, distances in metres)."""

    kind: str = "fixed"  # "fixed" (still camera), "orbit" (yaw sweeps around the head) or "dolly" (moves in/out)
    yaw_deg: float = 0.0  # camera yaw at the start; 0 looks at the face from the front (+z)
    pitch_deg: float = 0.0  # camera elevation; positive looks down on the head
    distance: float | None = None  # camera distance from the target at the start; None frames the avatar
    fov_y_deg: float = 22.0  # vertical field of view
    sweep_deg: float = 360.0  # orbit: yaw swept over the whole clip (a full turn loops seamlessly)
    end_distance: float | None = None  # dolly: camera distance at the last frame; None = 0.6 × distance
    target: tuple[float, float, float] | None = None  # point looked at; None = centre of the avatar

    def __post_init__(self) -> None:
        if self.kind not in PATH_KINDS:
            raise ValueError(f"unknown camera path {self.kind!r}; choose one of {', '.join(PATH_KINDS)}")
        if any(d is not None and d <= 0 for d in (self.distance, self.end_distance)):
            raise ValueError(f"camera distances must be positive, got {self.distance} and {self.end_distance}")
        if not 0.0 < self.fov_y_deg < 180.0:
            raise ValueError(f"field of view must lie in (0, 180) degrees, got {self.fov_y_deg}")

    @property
    def moves(self) -> bool:
        """True when the camera changes from frame to frame."""
        if self.kind == "orbit":
            return self.sweep_deg != 0.0
        return self.kind == "dolly" and self.end_distance != self.distance

    def camera_at(self, t: float, width: int, height: int, target: tuple[float, float, float],
                  fit: float = 0.6) -> Camera:
        """The camera at clip time t in [0, 1] (0 = first frame), looking at self.target or target;
        fit is the distance used when self.distance is None (engine.view.camera.frame_points)."""
        look = self.target if self.target is not None else target
        start = self.distance if self.distance is not None else fit
        yaw, distance = self.yaw_deg, start
        if self.kind == "orbit":
            yaw = self.yaw_deg + self.sweep_deg * t
        elif self.kind == "dolly":
            end = self.end_distance if self.end_distance is not None else 0.6 * start
            ease = t * t * (3.0 - 2.0 * t)  # smoothstep: starts and stops gently
            distance = start + (end - start) * ease
        return orbit_camera(yaw, self.pitch_deg, distance, look, self.fov_y_deg, width, height)


def clip_times(path: CameraPath, frames: int) -> list[float]:
    """Clip time in [0, 1] of each frame. A full orbit stops one step short of 1 so the loop has no repeat."""
    if frames < 1:
        raise ValueError(f"a clip needs at least one frame, got {frames}")
    if frames == 1:
        return [0.0]
    full_turn = path.kind == "orbit" and math.isclose(abs(path.sweep_deg) % 360.0, 0.0) and path.sweep_deg != 0.0
    last = frames if full_turn else frames - 1
    return [i / last for i in range(frames)]


def path_cameras(
    path: CameraPath, frames: int, width: int, height: int, target: tuple[float, float, float], fit: float = 0.6
) -> list[Camera]:
    """One camera per frame of a clip of `frames` frames at width × height pixels (fit: see camera_at)."""
    return [path.camera_at(t, width, height, target, fit) for t in clip_times(path, frames)]
