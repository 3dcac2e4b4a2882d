"""Adjustments seen through the rasterizer at held-out expressions and views."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.avatar.avatar import Avatar
from engine.avatar.demo import load_demo_avatar
from engine.avatar.posing import Pose, apply_pose
from engine.edit.adjust import AdjustParams, AdjustPreview, adjust_layer, selection_from_components
from engine.edit.layers import compose
from engine.render.camera import orbit_camera
from engine.render.rasterize import render

SIZE = 128
POSES = [  # held-out: none of these is the avatar's own frame
    Pose(expressions={"smile": 1.0}),
    Pose(expressions={"pucker": 0.8, "brow_raise": 0.5}, jaw=0.15, yaw=12.0),
]
VIEWS = [(-30.0, 5.0), (25.0, -10.0)]  # camera yaw, pitch in degrees


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    return load_demo_avatar(count=12_000)


def _views(avatar: Avatar, g, target, features: torch.Tensor | None = None, views=VIEWS, distance: float = 0.35):
    """(rgb [H, W, 3], features [H, W, 1] | None) per (pose, view) of Gaussians g."""
    shown = Avatar(avatar.head, g, avatar.params)
    out = []
    for pose in POSES:
        splats = shown.splats(apply_pose(avatar, pose))
        for yaw, pitch in views:
            cam = orbit_camera(yaw, pitch, distance, target, 20.0, SIZE, SIZE)
            r = render(splats, cam, features=features)
            out.append((r.rgb, r.features))
    return out


def _dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Bool [H, W] mask grown by `pixels` (square structuring element)."""
    k = 2 * pixels + 1
    return F.max_pool2d(mask[None, None].float(), k, stride=1, padding=pixels)[0, 0] > 0


def _region_target(avatar: Avatar, names: list[str]) -> tuple[float, float, float]:
    sel = selection_from_components(avatar.gaussians, names)
    return tuple(float(v) for v in avatar.splats().means[sel].mean(0))


@pytest.mark.slow
def test_lip_tint_leaves_every_pixel_outside_the_lips_alone(avatar: Avatar) -> None:
    base = avatar.gaussians
    lips = selection_from_components(base, ["lips"])
    tinted = compose(base, [adjust_layer(base, lips, AdjustParams(tint=(0.1, 0.3, 0.9), strength=0.8))])
    target = _region_target(avatar, ["lips"])
    before = _views(avatar, base, target)
    after = _views(avatar, tinted, target, features=lips.float()[:, None])
    for (rgb0, _), (rgb1, feat) in zip(before, after):
        # the lips' rendered mask: every pixel they contribute to at all (a soft lip edge spans several
        # pixels, so a 0.5 threshold would miss real lip coverage), grown by a pixel for antialiasing
        mask = _dilate(feat[..., 0] > 0.5 / 255.0, 1)
        assert 20 < int(mask.sum()) < SIZE * SIZE // 4  # the lips are in view and small
        diff = (rgb1 - rgb0).abs().amax(dim=-1)
        assert float(diff[~mask].max()) <= 1.0 / 255.0
        assert float(diff[feat[..., 0] > 0.9].mean()) > 0.1  # and the lips did change


def test_hide_removes_the_ears_at_every_pose(avatar: Avatar) -> None:
    base = avatar.gaussians
    ears = selection_from_components(base, ["ears"])
    layer = adjust_layer(base, ears, AdjustParams(hide=True))
    hidden = compose(base, [layer])
    target = _region_target(avatar, ["ears"])
    sides = [(75.0, 5.0), (-100.0, -5.0)]  # both ears, from the side
    before = _views(avatar, base, target, ears.float()[:, None], sides, 0.6)
    after = _views(avatar, hidden, target, None, sides, 0.6)
    preview = AdjustPreview(base, [], ears).update(AdjustParams(hide=True))
    previewed = _views(avatar, preview, target, None, sides, 0.6)
    for (rgb0, feat), (rgb1, _), (rgb2, _) in zip(before, after, previewed):
        ear = feat[..., 0] > 0.9
        assert int(ear.sum()) > 20
        diff = (rgb1 - rgb0).abs().amax(dim=-1)
        assert float(diff[ear].mean()) > 0.05  # the ears' pixels show something else now
        assert float(diff[~_dilate(feat[..., 0] > 0.5 / 255.0, 1)].max()) <= 1.0 / 255.0
        assert float((rgb2 - rgb1).abs().max()) <= 1.0 / 255.0  # the live preview shows the same
    assert not bool(torch.isin(hidden.labels, base.labels[ears].unique()).any())
    assert compose(base, [layer.toggled(False)]).equal(base)
