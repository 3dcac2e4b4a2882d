"""The FLAME parameters a view shows: a sequence's frame, plus the user's pose, plus the edit layers'
expression offsets. One rule, used by the viewport, recording, the splat and video exports and the CLI."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.avatar.posing import Pose, apply_pose
from engine.edit.layers import EditLayer, expression_offset
from engine.head.params import FRAME_KEYS, FlameParams


def with_expr_offset(params: FlameParams, expr_offset: Tensor | None) -> FlameParams:
    """params with an [E] expression offset (edit layers' expression changes) added to every frame."""
    if expr_offset is None:
        return params
    assert expr_offset.ndim == 1, f"expr_offset must be [E], got {tuple(expr_offset.shape)}"
    expr = params.expr.clone()
    width = min(expr.shape[1], expr_offset.shape[0])
    expr[:, :width] += expr_offset[:width].to(expr)
    return params.with_values(expr=expr)


def posed_params(avatar: Avatar, sequence: FlameParams, pose: Pose, frame: int,
                 layers: tuple[EditLayer, ...] | list[EditLayer] = ()) -> FlameParams:
    """FLAME parameters of one frame [T=1]: the sequence's frame, plus the pose, plus layer expression offsets."""
    base = replace(avatar, params=sequence) if sequence is not avatar.params else avatar
    params = apply_pose(base, pose, frame % sequence.frames)
    return with_expr_offset(params, expression_offset(list(layers), avatar.head.n_expr))


def concat_params(frames: list[FlameParams]) -> FlameParams:
    """One sequence of T frames from T one-frame parameter sets (identity from the first)."""
    first = frames[0]
    cat = {k: torch.cat([getattr(f, k) for f in frames]) for k in FRAME_KEYS}
    dyn = None
    if all(f.dynamic_offset is not None for f in frames):
        dyn = torch.cat([f.dynamic_offset for f in frames])
    return first.with_values(**cat, dynamic_offset=dyn)
