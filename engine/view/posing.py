"""The FLAME parameters a view shows: a sequence's frame, plus the user's pose, plus the edit layers'
pose offsets (expression coefficients and jaw). One rule, used by the viewport, recording, the splat and video exports and the CLI."""

from __future__ import annotations

from dataclasses import replace

import torch

from engine.avatar.avatar import Avatar
from engine.avatar.posing import Pose, apply_pose
from engine.edit.layers import EditLayer, PoseOffset, pose_offset
from engine.head.params import FRAME_KEYS, FlameParams


def with_layer_offset(params: FlameParams, offset: PoseOffset | None) -> FlameParams:
    """params with the edit layers' pose offset (expression coefficients, jaw) added to every frame."""
    return params if offset is None else offset.apply(params)


def posed_params(avatar: Avatar, sequence: FlameParams, pose: Pose, frame: int,
                 layers: tuple[EditLayer, ...] | list[EditLayer] = ()) -> FlameParams:
    """FLAME parameters of one frame [T=1]: the sequence's frame, plus the pose, plus the layers' pose offsets."""
    base = replace(avatar, params=sequence) if sequence is not avatar.params else avatar
    params = apply_pose(base, pose, frame % sequence.frames)
    return with_layer_offset(params, pose_offset(layers, avatar.head.n_expr))


def concat_params(frames: list[FlameParams]) -> FlameParams:
    """One sequence of T frames from T one-frame parameter sets (identity from the first)."""
    first = frames[0]
    cat = {k: torch.cat([getattr(f, k) for f in frames]) for k in FRAME_KEYS}
    dyn = None
    if all(f.dynamic_offset is not None for f in frames):
        dyn = torch.cat([f.dynamic_offset for f in frames])
    return first.with_values(**cat, dynamic_offset=dyn)
