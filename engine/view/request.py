"""A request for one picture of the session (a snapshot of everything it depends on) and the finished frame."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.avatar.avatar import Avatar
from engine.avatar.posing import Pose
from engine.edit.layers import EditLayer
from engine.head.params import FlameParams
from engine.render.camera import Camera
from engine.view.camera import CameraState


@dataclass(frozen=True)
class ViewOptions:
    """What the viewport draws besides the splats."""

    wireframe: bool = False  # mesh wireframe over the splats
    components: bool = False  # Gaussians tinted by facial component
    fps: bool = True  # frames-per-second readout in the corner
    selection: bool = True  # the selected Gaussians highlighted in a contrasting accent (engine/view/overlays.py)
    before: bool = False  # the avatar as it was before its edit layers (none of them drawn)
    background: tuple[float, float, float] = (0.13, 0.14, 0.16)  # linear rgb in [0, 1]


@dataclass(frozen=True)
class ViewRequest:
    """Everything one frame depends on (a snapshot of the session plus the picture's size)."""

    serial: int  # increases with every request
    avatar: Avatar
    sequence: FlameParams  # [T] frames
    pose: Pose
    frame: int
    layers: tuple[EditLayer, ...]
    camera: CameraState
    width: int  # size of the view in pixels (the full-resolution picture)
    height: int
    view: ViewOptions = field(default_factory=ViewOptions)
    overlay_colors: np.ndarray | None = None  # [N, 3] rgb or [N, 4] rgba per Gaussian
    overlay_opacity: float = 0.5
    selection: torch.Tensor | None = None  # [N_base] weights over avatar.gaussians; > 0 is highlighted
    issued: float = field(default_factory=time.perf_counter)  # perf_counter() when requested
    scale: float = 1.0  # the picture is rendered at scale × (width, height) (progressive rendering)
    split: float | None = None  # before/after divider as a share of the width (None: no comparison)
    before_layers: tuple[EditLayer, ...] = ()  # the layers left of the divider (`layers` are right of it)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the picture rendered for this request: the view's size times scale."""
        return max(1, round(self.width * self.scale)), max(1, round(self.height * self.scale))


@dataclass(frozen=True)
class Frame:
    """One finished picture."""

    serial: int  # of the request it shows
    image: np.ndarray  # [H, W, 3] uint8, top row first
    camera: Camera  # the camera it was rendered with (width x height of image)
    backend: str  # "gl", "gsplat", "cpu" or "torch"
    gaussians: int  # Gaussians drawn (before culling)
    timings: dict[str, float]  # milliseconds per stage; "total" is their sum
    latency_ms: float  # from the request to finished pixels
    scale: float = 1.0  # of the view's full size; 1 = full resolution
    view_size: tuple[int, int] | None = None  # (width, height) of the view at full resolution (None: the image's)
    split: float | None = None  # before/after divider as a share of the width, when the frame is a comparison

    @property
    def full(self) -> bool:
        """Rendered at the view's full resolution."""
        return self.scale >= 1.0

    @property
    def view_camera(self) -> Camera:
        """The frame's camera at the view's full resolution (the same view; what a stroke painted on it is
        lifted with, whatever the resolution the frame came at)."""
        return self.camera if self.view_size is None else self.camera.resized(*self.view_size)
