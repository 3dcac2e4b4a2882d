"""Rendering the demo avatar at a new expression moves the lips' Gaussians with the lips (on pixels)."""

from __future__ import annotations

import torch

from engine.avatar.demo import load_demo_avatar
from engine.head.components import LABEL
from engine.render.camera import framing, orbit_camera
from engine.render.rasterize import render


def _splat_mask(avatar, params, camera, label: int) -> torch.Tensor:
    """bool [H, W]: pixels where Gaussians with this label dominate."""
    indicator = (avatar.gaussians.labels == label).float()[:, None]
    with torch.no_grad():
        r = render(avatar.splats(params), camera, features=indicator)
    return r.features[..., 0] > 0.5


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum()) / max(1, int((a | b).sum()))


def test_lower_lip_pixels_follow_the_mesh_when_the_jaw_opens(mesh_renderer):
    avatar = load_demo_avatar()
    target, distance = framing(avatar.posed_vertices(), 20.0)
    camera = orbit_camera(10, 0, distance * 0.55, target, 20.0, 256, 256)
    neutral = avatar.frame_params(0)
    opened = avatar.params_with(0, smile=0.6).with_values(jaw_pose=torch.tensor([[0.1, 0.0, 0.0]]))
    lip = LABEL["lower_lip"]
    mesh_neutral = mesh_renderer.render(avatar.posed_vertices(neutral), avatar.head.faces, avatar.head.face_labels, camera).labels == lip
    mesh_opened = mesh_renderer.render(avatar.posed_vertices(opened), avatar.head.faces, avatar.head.face_labels, camera).labels == lip
    splat_opened = _splat_mask(avatar, opened, camera, lip)
    assert _iou(mesh_neutral, mesh_opened) < 0.3, "the jaw should move the lower lip well away"
    # the Gaussians' lower lip is where the mesh's lower lip went, not where it was
    assert _iou(splat_opened, mesh_opened) > 0.4
    assert _iou(splat_opened, mesh_neutral) < 0.15
