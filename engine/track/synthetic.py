"""A synthetic talking-head clip with known FLAME parameters: what tracking is measured against.

An avatar (the demo avatar in the bench and tests) is rendered under a smooth sequence of head
turns (up to ±max_yaw), nods, speech-like jaw motion, smiles, blinks and brows, by one fixed camera,
and encoded to H.264 mp4 with PyAV like a phone clip.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from engine.avatar.avatar import Avatar
from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.render.camera import Camera, framing, orbit_camera
from engine.render.rasterize import render


@dataclass(frozen=True)
class ClipSpec:
    """What clip to make."""

    frames: int = 150  # frames in the clip
    size: int = 256  # width and height in pixels
    fps: float = 25.0  # frames per second
    max_yaw_deg: float = 40.0  # the head turns to ±this
    max_pitch_deg: float = 12.0  # and nods to ±this
    fov_deg: float = 25.0  # camera's vertical field of view
    fill: float = 1.05  # the neutral head's bounding box spans this fraction of the image height
    seed: int = 0  # shifts the phases of every motion


def talking_head_params(head: HeadModel, spec: ClipSpec) -> FlameParams:
    """[frames] FLAME parameters: one full left-right head turn, nods, a little roll and drift, speech-like
    jaw, smiles, blinks, brow raises and frowns, a pucker, gaze following the turn."""
    n = spec.frames
    p = head.neutral_params(n)
    t = torch.arange(n, dtype=torch.float32) / max(1, n - 1)
    ph = 0.13 * spec.seed
    wave = lambda f, off=0.0: torch.sin(2 * math.pi * (f * t + off + ph))
    expr = p.expr.clone()
    names = head.expression_names

    def put(name: str, values: torch.Tensor) -> None:
        if name in names:
            expr[:, names.index(name)] = values

    put("smile", 0.8 * torch.relu(wave(1.3, 0.1)))
    put("frown", 0.6 * torch.relu(-wave(1.3, 0.1)) * (t > 0.5).float())
    put("brow_raise", 0.7 * torch.relu(wave(2.1, 0.35)))
    put("brow_furrow", 0.5 * torch.relu(-wave(1.7, 0.6)))
    blink = (wave(2.6, 0.05) > 0.95).float()
    put("blink_left", blink)
    put("blink_right", blink)
    put("pucker", 0.5 * torch.relu(wave(0.9, 0.7)) * (t < 0.6).float())
    put("mouth_left", 0.4 * torch.relu(wave(1.1, 0.2)))
    jaw = torch.zeros(n, 3)
    jaw[:, 0] = 0.03 + 0.12 * (0.5 + 0.5 * wave(5.0, 0.15)) * (0.6 + 0.4 * wave(0.7))
    yaw = math.radians(spec.max_yaw_deg) * wave(1.0, 0.0)
    pitch = math.radians(spec.max_pitch_deg) * wave(1.6, 0.25)
    roll = math.radians(5.0) * wave(0.8, 0.5)
    rotation = _euler(pitch, yaw, roll)
    eyes = torch.zeros(n, 6)
    eyes[:, 1] = eyes[:, 4] = 0.25 * yaw.clamp(-0.3, 0.3)
    translation = torch.zeros(n, 3)
    translation[:, 0] = 0.01 * wave(0.5, 0.3)
    translation[:, 2] = 0.015 * wave(0.4, 0.8)
    return p.with_values(expr=expr, jaw_pose=jaw, rotation=rotation, eyes_pose=eyes, translation=translation)


def _euler(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """[T, 3] axis-angle of Ry(yaw)·Rx(pitch)·Rz(roll) per frame."""
    from engine.track.rotations import matrix_to_axis_angle

    c, s = torch.cos, torch.sin
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    rx = torch.stack([one, zero, zero, zero, c(pitch), -s(pitch), zero, s(pitch), c(pitch)], -1).reshape(-1, 3, 3)
    ry = torch.stack([c(yaw), zero, s(yaw), zero, one, zero, -s(yaw), zero, c(yaw)], -1).reshape(-1, 3, 3)
    rz = torch.stack([c(roll), -s(roll), zero, s(roll), c(roll), zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return matrix_to_axis_angle(ry @ rx @ rz)


def clip_camera(head: HeadModel, spec: ClipSpec) -> Camera:
    """The clip's fixed camera: in front of the neutral head, framing it."""
    with torch.no_grad():
        rest = head(head.neutral_params())[0]
    target, distance = framing(rest, spec.fov_deg, fill=spec.fill)
    return orbit_camera(0.0, 0.0, distance, target, spec.fov_deg, spec.size, spec.size)


def render_clip(avatar: Avatar, params: FlameParams, camera: Camera,
                progress: Callable[[float, str], None] | None = None) -> list[np.ndarray]:
    """Frames [H, W, 3] uint8 of the avatar under params (over white) seen by camera."""
    frames = []
    with torch.no_grad():
        for i in range(params.frames):
            rgb = render(avatar.splats(params.frame(i)), camera).rgb.clamp(0, 1)
            frames.append((rgb.numpy() * 255 + 0.5).astype(np.uint8))
            if progress is not None:
                progress((i + 1) / params.frames, f"rendered {i + 1}/{params.frames} frames")
    return frames


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 25.0, crf: int = 12) -> Path:
    """Encode RGB frames [H, W, 3] uint8 (even sizes) to an H.264 mp4 at path (replaced only when complete)."""
    import av

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part.mp4", dir=target.parent)
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "medium"}
            for i, image in enumerate(frames):
                if i == 0:
                    stream.height, stream.width = image.shape[:2]
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target
