"""Synthetic ground truth: the demo head as a finely textured mesh, rendered under FLAME sequences
from several cameras into the VHAP / GaussianAvatars dataset layout, with foreground masks and
per-pixel component label maps.

Splits follow GaussianAvatars: train = training sequence × training cameras; val = training
sequence × held-out cameras (novel views); test = a second, different sequence × training cameras
(novel expressions).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.data.mesh_render import MeshRenderer
from engine.data.vhap_writer import DatasetWriter, FrameSample
from engine.head.model import HeadModel, load_head
from engine.head.params import FlameParams
from engine.io.atomic import staged_folder
from engine.render.camera import Camera, framing, orbit_camera

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]


class Cancelled(Exception):
    """Raised inside long engine work when its cancel callback says so."""


@dataclass(frozen=True)
class SynthConfig:
    """What synthetic dataset to make."""

    size: int = 256  # image width and height in pixels
    train_frames: int = 40  # timesteps of the training sequence
    test_frames: int = 16  # timesteps of the held-out expression sequence
    train_cameras: int = 8  # cameras used for training
    heldout_cameras: int = 2  # cameras only used for evaluation (novel views)
    distance: float | None = None  # camera distance from the head centre in metres (None: frame the head)
    fov_y_deg: float = 24.0  # vertical field of view
    yaw_range_deg: float = 70.0  # training cameras span ±this yaw
    seed: int = 0  # varies the sequences' phases


def camera_rig(config: SynthConfig, rest: torch.Tensor) -> tuple[list[Camera], list[Camera]]:
    """(training cameras, held-out cameras) around the rest mesh rest [V, 3]: a frontal arc at two
    heights; held-out ones in between."""
    target, framed = framing(rest, config.fov_y_deg, fill=0.8)
    distance = config.distance or framed
    train = []
    n = config.train_cameras
    for i in range(n):
        yaw = -config.yaw_range_deg + 2 * config.yaw_range_deg * i / max(1, n - 1)
        pitch = 12.0 if i % 2 else -6.0
        train.append(orbit_camera(yaw, pitch, distance, target, config.fov_y_deg, config.size, config.size))
    held = []
    for j in range(config.heldout_cameras):
        yaw = -0.5 * config.yaw_range_deg + config.yaw_range_deg * (j + 0.5) / max(1, config.heldout_cameras) * 0.9
        held.append(orbit_camera(yaw, 3.0, distance, target, config.fov_y_deg, config.size, config.size))
    return train, held


def talking_sequence(head: HeadModel, frames: int, phase: float, held_out: bool) -> FlameParams:
    """A smooth FLAME sequence: speech-like jaw, smiles, blinks, brows and head turns.

    held_out=True uses other expressions (frown, pucker, cheek puff, lip stretch, nose wrinkle) and
    other rhythms than the training sequence.
    """
    p = head.neutral_params(frames)
    t = torch.arange(frames, dtype=torch.float32) / max(1, frames - 1)
    w = lambda f, ph=0.0: torch.sin(2 * math.pi * (f * t + ph + phase))  # noqa: E731
    expr = p.expr.clone()

    def put(name: str, values: torch.Tensor) -> None:
        if name in head.expression_names:  # a demo blendshape, or its coefficient mix on a FLAME head
            expr.add_(values[:, None] * head.expression_direction(name)[None])

    if not held_out:
        put("smile", 0.6 * (w(1.0) * 0.5 + 0.5))
        put("brow_raise", 0.7 * torch.relu(w(1.5, 0.3)))
        put("blink_left", (w(3.0, 0.1) > 0.93).float())
        put("blink_right", (w(3.0, 0.1) > 0.93).float())
        put("brow_furrow", 0.5 * torch.relu(-w(1.3, 0.6)))
        jaw = 0.12 * (w(4.0) * 0.5 + 0.5)
        yaw, pitch = 0.35 * w(0.8, 0.2), 0.12 * w(1.1, 0.5)
    else:
        put("frown", 0.6 * (w(1.2, 0.2) * 0.5 + 0.5))
        put("pucker", 0.6 * torch.relu(w(1.7, 0.4)))
        put("cheek_puff", 0.5 * torch.relu(-w(1.1)))
        put("lip_stretch", 0.5 * torch.relu(w(0.9, 0.7)))
        put("nose_wrinkle", 0.5 * torch.relu(w(2.1, 0.1)))
        put("blink_left", (w(2.5, 0.3) > 0.9).float())
        jaw = 0.08 * (w(3.0, 0.25) * 0.5 + 0.5)
        yaw, pitch = 0.25 * w(0.6, 0.7), 0.1 * w(0.9)
    jaw_pose = torch.zeros(frames, 3)
    jaw_pose[:, 0] = jaw
    rotation = torch.zeros(frames, 3)
    rotation[:, 1], rotation[:, 0] = yaw, pitch
    eyes = torch.zeros(frames, 6)
    eyes[:, 1] = eyes[:, 4] = 0.15 * w(0.7, 0.4)
    return p.with_values(expr=expr, jaw_pose=jaw_pose, rotation=rotation, eyes_pose=eyes)


def generate(
    out: str | Path,
    config: SynthConfig = SynthConfig(),
    head: HeadModel | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> Path:
    """Write a synthetic dataset to `out` (built in out.partial, renamed when complete).

    Cancelling removes the partial folder and leaves any previous dataset at `out` untouched.
    """
    head = head or load_head("demo")
    out = Path(out)
    with torch.no_grad(), staged_folder(out) as work:
        rest = head(head.neutral_params())[0]
        train_cams, held_cams = camera_rig(config, rest)
        seq_train = talking_sequence(head, config.train_frames, 0.05 * config.seed, held_out=False)
        seq_test = talking_sequence(head, config.test_frames, 0.05 * config.seed + 0.37, held_out=True)
        jobs = [("train", t, c) for t in range(config.train_frames) for c in range(len(train_cams))]
        jobs += [("val", t, c) for t in range(config.train_frames) for c in range(len(held_cams))]
        jobs += [("test", config.train_frames + t, c) for t in range(config.test_frames) for c in range(len(train_cams))]
        cams = {**{i: cam for i, cam in enumerate(train_cams)}, **{len(train_cams) + j: cam for j, cam in enumerate(held_cams)}}
        with MeshRenderer() as renderer:
            writer = DatasetWriter(work)
            writer.set_canonical(head.neutral_params())
            verts: dict[int, torch.Tensor] = {}
            for t in range(config.train_frames):
                writer.add_flame(t, seq_train.frame(t))
            for t in range(config.test_frames):
                writer.add_flame(config.train_frames + t, seq_test.frame(t))
            for i, (split, t, c) in enumerate(jobs):
                if cancel is not None and cancel():
                    raise Cancelled("synthetic data generation cancelled")
                cam_index = c if split != "val" else len(train_cams) + c
                if t not in verts:
                    seq, row = (seq_train, t) if t < config.train_frames else (seq_test, t - config.train_frames)
                    verts = {t: head(seq.frame(row))[0]}
                image = renderer.render(verts[t], head.faces, head.face_labels, cams[cam_index], rest_verts=rest)
                writer.add_frame(FrameSample(split, t, cam_index, cams[cam_index], image.rgb, image.alpha, image.labels))
                if progress is not None:
                    progress((i + 1) / len(jobs), f"rendered {i + 1}/{len(jobs)} images")
            writer.close()
    return out
