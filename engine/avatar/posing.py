"""Named poses for an avatar: the expression/jaw/head/eye values a person types or drags."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from engine.avatar.avatar import Avatar
from engine.head.model import POSE_EXPRESSIONS
from engine.head.params import FlameParams

JAW_OPEN = math.radians(20.0)
"""Jaw rotation of one unit of the 'jaw_open' expression word (a jaw pose on every head, not a blendshape)."""


@dataclass(frozen=True)
class Pose:
    """A pose in the units people use: expression weights by name, angles in degrees, jaw in radians."""

    expressions: dict[str, float] = field(default_factory=dict)  # name (or expr_<i>, or jaw_open) -> weight
    jaw: float = 0.0  # jaw opening, radians about x
    yaw: float = 0.0  # head rotation about the vertical axis, degrees (positive turns to the subject's left)
    pitch: float = 0.0  # head rotation about x, degrees (positive looks down)
    roll: float = 0.0  # head rotation about z, degrees
    neck_yaw: float = 0.0  # neck joint yaw, degrees
    neck_pitch: float = 0.0  # neck joint pitch, degrees
    gaze_x: float = 0.0  # eye rotation left/right, degrees (both eyes)
    gaze_y: float = 0.0  # eye rotation up/down, degrees (both eyes)


def _euler_to_axis_angle(pitch_deg: float, yaw_deg: float, roll_deg: float) -> torch.Tensor:
    """[3] axis-angle of R = Ry(yaw)·Rx(pitch)·Rz(roll)."""
    p, y, r = (math.radians(a) for a in (pitch_deg, yaw_deg, roll_deg))
    rx = torch.tensor([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]], dtype=torch.float64)
    ry = torch.tensor([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]], dtype=torch.float64)
    rz = torch.tensor([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]], dtype=torch.float64)
    m = ry @ rx @ rz
    angle = math.acos(max(-1.0, min(1.0, (float(m.trace()) - 1) / 2)))
    if angle < 1e-9:
        return torch.zeros(3)
    axis = torch.tensor([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]], dtype=torch.float64)
    if math.sin(angle) < 1e-6:  # 180 degrees: axis from the symmetric part
        axis = torch.sqrt(torch.clamp((torch.diagonal(m) + 1) / 2, min=0))
    return (axis / axis.norm() * angle).float()


def apply_pose(avatar: Avatar, pose: Pose, frame: int = 0) -> FlameParams:
    """The avatar's parameters at `frame` with the pose applied (expressions added to the frame's own;
    named expressions are coefficient mixes on a FLAME head, and 'jaw_open' opens the jaw)."""
    p = avatar.frame_params(frame)
    named = {k: v for k, v in pose.expressions.items() if k not in POSE_EXPRESSIONS}
    expr = p.expr + avatar.head.expr_vector(**named).to(p.expr)[None, : p.expr.shape[1]]
    jaw = p.jaw_pose.clone()
    jaw[0, 0] += pose.jaw + JAW_OPEN * pose.expressions.get("jaw_open", 0.0)
    eyes = p.eyes_pose.clone()
    gaze = _euler_to_axis_angle(-pose.gaze_y, pose.gaze_x, 0.0)
    eyes[0, :3] += gaze
    eyes[0, 3:] += gaze
    rotation = p.rotation + _euler_to_axis_angle(pose.pitch, pose.yaw, pose.roll)[None]
    neck = p.neck_pose + _euler_to_axis_angle(pose.neck_pitch, pose.neck_yaw, 0.0)[None]
    return p.with_values(expr=expr, jaw_pose=jaw, eyes_pose=eyes, rotation=rotation, neck_pose=neck)
