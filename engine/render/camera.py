"""Pinhole cameras in the OpenCV convention.

Camera axes: x right, y down, z forward (into the scene). `world_to_cam` maps homogeneous world
points to camera coordinates; a pixel (u, v) has its centre at (u + 0.5, v + 0.5) and a camera
point (x, y, z) projects to (fx·x/z + cx, fy·y/z + cy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class Camera:
    """One pinhole camera."""

    world_to_cam: Tensor  # [4, 4] float, OpenCV axes
    fx: float  # focal length in pixels, x
    fy: float  # focal length in pixels, y
    cx: float  # principal point x in pixels
    cy: float  # principal point y in pixels
    width: int  # image width in pixels
    height: int  # image height in pixels
    near: float = 0.01  # Gaussians closer than this are culled
    far: float = 100.0  # Gaussians farther than this are culled

    def __post_init__(self) -> None:
        assert self.world_to_cam.shape == (4, 4), f"world_to_cam must be [4, 4], got {tuple(self.world_to_cam.shape)}"
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive, got {self.width}x{self.height}")

    @property
    def K(self) -> Tensor:
        """[3, 3] intrinsic matrix (same dtype and device as world_to_cam)."""
        w = self.world_to_cam
        return torch.tensor(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=w.dtype, device=w.device
        )

    @property
    def cam_to_world(self) -> Tensor:
        """[4, 4] inverse of world_to_cam."""
        return torch.linalg.inv(self.world_to_cam)

    @property
    def position(self) -> Tensor:
        """[3] camera centre in world coordinates."""
        return self.cam_to_world[:3, 3]

    def project_points(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """(pixel positions [N, 2] as (u, v), depths [N]) of world points [N, 3], in points' dtype.

        Pixel centres sit at +0.5 (module docstring); a point at depth ≤ 1e-6 divides by 1e-6.
        """
        w2c = self.world_to_cam.to(points)
        p = points @ w2c[:3, :3].T + w2c[:3, 3]
        z = p[:, 2].clamp(min=1e-6)
        return torch.stack([self.fx * p[:, 0] / z + self.cx, self.fy * p[:, 1] / z + self.cy], dim=1), p[:, 2]

    def resized(self, width: int, height: int) -> "Camera":
        """The same view at another image size (intrinsics scaled)."""
        sx, sy = width / self.width, height / self.height
        return replace(self, fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy, width=width, height=height)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Camera":
        """The same camera with world_to_cam on another device or dtype."""
        return replace(self, world_to_cam=self.world_to_cam.to(device=device, dtype=dtype or self.world_to_cam.dtype))


def look_at(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """[4, 4] OpenCV world_to_cam for a camera at eye ([3]) looking at target ([3]); up ([3]) is world up."""
    forward = target - eye
    forward = forward / forward.norm()
    right = torch.linalg.cross(forward, up)
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    rot = torch.stack([right, down, forward])  # rows: camera axes in world coordinates
    w2c = torch.eye(4, dtype=eye.dtype, device=eye.device)
    w2c[:3, :3] = rot
    w2c[:3, 3] = -rot @ eye
    return w2c


def orbit_camera(
    yaw_deg: float,
    pitch_deg: float,
    radius: float,
    target: tuple[float, float, float] = (0.0, 0.0, 0.0),
    fov_y_deg: float = 20.0,
    width: int = 512,
    height: int = 512,
    dtype: torch.dtype = torch.float32,
) -> Camera:
    """A camera on a sphere around target, world +y up, yaw 0 looking along -z from +z.

    Positive yaw moves the camera toward +x, positive pitch moves it up.
    """
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    tgt = torch.tensor(target, dtype=dtype)
    eye = tgt + radius * torch.tensor(
        [math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)], dtype=dtype
    )
    w2c = look_at(eye, tgt, torch.tensor([0.0, 1.0, 0.0], dtype=dtype))
    f = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
    return Camera(w2c, fx=f, fy=f, cx=width / 2, cy=height / 2, width=width, height=height)


def framing(points: Tensor, fov_y_deg: float, aspect: float = 1.0,
            fill: float = 0.85) -> tuple[tuple[float, float, float], float]:
    """(target, distance) at which the bounding box of points [N, 3], seen along z, fills `fill` of a view.

    The view has a vertical field of view fov_y_deg and width / height = aspect; the box's height, or its
    width over the aspect if that is larger, spans `fill` of the view at the box's front face.
    """
    assert points.ndim == 2 and points.shape[1] == 3, f"points must be [N, 3], got {tuple(points.shape)}"
    lo, hi = points.min(0).values, points.max(0).values
    target = (float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2), float((lo[2] + hi[2]) / 2))
    half = max(float(hi[1] - lo[1]), float(hi[0] - lo[0]) / max(aspect, 1e-6)) / 2
    distance = half / fill / math.tan(math.radians(fov_y_deg) / 2) + float(hi[2] - lo[2]) / 2
    return target, distance
