"""Splat export: the avatar at its current expression as a standard world-space 3DGS .ply (all SH
bands; opens in ordinary splat viewers), and the animatable GaussianAvatars layout (point_cloud.ply
with binding_0 in triangle-local space + flame_param.npz), which GaussianAvatars' viewer drives.

Both take the avatar with its edit layers already composed (engine.project.Project.composed_avatar).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch

from engine.avatar.avatar import Avatar
from engine.avatar.files import RUN_FOLDER, save_avatar, save_splats_ply
from engine.head.params import FlameParams
from engine.render.splats import Splats
from engine.edit.layers import PoseOffset
from engine.view.posing import with_layer_offset


def posed_splats(avatar: Avatar, params: FlameParams | None = None, offset: PoseOffset | None = None) -> Splats:
    """World-space Gaussians of avatar at one frame of params (default: its first frame)."""
    p = avatar.frame_params(0) if params is None else params
    assert p.frames == 1, f"posed_splats takes one frame of parameters, got {p.frames}"
    with torch.no_grad():
        return avatar.splats(with_layer_offset(p, offset))


def export_standard_ply(
    avatar: Avatar,
    path: str | os.PathLike,
    params: FlameParams | None = None,
    offset: PoseOffset | None = None,
) -> Path:
    """Write the avatar at params (one frame: the current expression) as a standard 3DGS .ply.

    World-space x, y, z, nx, ny, nz, f_dc_0..2, f_rest_* (every SH band, channel-major), opacity
    (logit), scale_0..2 (log), rot_0..3; no binding. Written atomically.
    """
    out = Path(path)
    save_splats_ply(posed_splats(avatar, params, offset), out)
    return out


def export_gaussianavatars(
    avatar: Avatar,
    folder: str | os.PathLike,
    sequence: FlameParams | None = None,
    offset: PoseOffset | None = None,
) -> Path:
    """Write the animatable GaussianAvatars layout: point_cloud.ply (local space, binding_0, plus our
    label property), flame_param.npz (sequence, default the avatar's own, with the layers' expression and jaw
    offsets baked in; static and dynamic offsets always present, zero where the avatar has none, as
    GaussianAvatars' viewer reads them) and avatar.json. An avatar read from a GaussianAvatars run
    is written back the same way, into folder/point_cloud/iteration_<N>/; others into folder.
    Each file is replaced atomically. Returns the folder holding the files."""
    seq = avatar.params if sequence is None else sequence
    seq = with_layer_offset(seq, offset)
    if seq.static_offset is None:
        seq = seq.with_values(static_offset=avatar.params.static_offset)
    zeros = torch.zeros(avatar.head.n_verts, 3)
    seq = seq.with_values(static_offset=zeros if seq.static_offset is None else seq.static_offset,
                          dynamic_offset=zeros.expand(seq.frames, -1, -1) if seq.dynamic_offset is None
                          else seq.dynamic_offset)
    out = Path(folder)
    if avatar.iteration is not None:
        out = out / RUN_FOLDER / f"iteration_{avatar.iteration}"
    return save_avatar(replace(avatar, params=seq), out)
