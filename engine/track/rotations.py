"""Rotation conversions tracking needs (axis-angle <-> matrix, angles between rotations), differentiable."""

from __future__ import annotations

import torch
from smplx.lbs import batch_rodrigues
from torch import Tensor

from engine.avatar.binding import quat_from_matrix
from engine.head.params import FlameParams


def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """[..., 3, 3] rotation matrices of axis-angle vectors aa [..., 3]."""
    return batch_rodrigues(aa.reshape(-1, 3)).reshape(*aa.shape[:-1], 3, 3)


def head_rotations(params: FlameParams) -> Tensor:
    """[T, 3, 3] the head's world rotation (global rotation, then the neck) of every frame."""
    return axis_angle_to_matrix(params.rotation) @ axis_angle_to_matrix(params.neck_pose)


def matrix_to_axis_angle(m: Tensor) -> Tensor:
    """[..., 3] axis-angle of rotation matrices m [..., 3, 3] (angle in [0, π])."""
    q = quat_from_matrix(m)  # [..., 4] (w, x, y, z), w >= 0
    xyz = q[..., 1:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    scale = torch.where(sin_half > 1e-8, angle / sin_half.clamp(min=1e-12), torch.full_like(sin_half, 2.0))
    return xyz * scale


def angle_between(a: Tensor, b: Tensor) -> Tensor:
    """[...] angle in radians of the rotation taking matrix b [..., 3, 3] to a [..., 3, 3]."""
    rel = a @ b.transpose(-1, -2)
    cos = ((rel[..., 0, 0] + rel[..., 1, 1] + rel[..., 2, 2]) - 1) / 2
    return torch.acos(cos.clamp(-1.0, 1.0))
