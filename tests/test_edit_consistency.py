"""View consistency of the edit stage: calibrated procedural targets, occlusion-aware visibility,
keyframes that show every visible part of the selection."""

from __future__ import annotations

import pytest
import torch

from engine.avatar.demo import load_demo_avatar
from engine.edit.editors import EditorSettings, make_editor
from engine.edit.keyframes import farthest_point_keyframes, orbit_cameras, orbit_views
from engine.edit.visibility import measure_visibility
from engine.head.components import labels_of
from engine.prompting import refine


def _two_views() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A region with a light and a dark half; view A shows both halves, view B only the light one."""
    image = torch.ones(32, 32, 3)
    image[8:24, 4:16] = torch.tensor([0.85, 0.45, 0.45])  # light half
    image[8:24, 16:28] = torch.tensor([0.45, 0.15, 0.15])  # dark half
    mask_a = torch.zeros(32, 32)
    mask_a[8:24, 4:28] = 1.0
    mask_b = torch.zeros(32, 32)
    mask_b[8:24, 4:16] = 1.0
    return image, mask_a, image.clone(), mask_b


def test_calibrated_procedural_editor_gives_each_surface_point_one_colour() -> None:
    image_a, mask_a, image_b, mask_b = _two_views()
    plan = refine("make the lips blue").plan
    light = (slice(8, 24), slice(4, 16))
    per_image = make_editor(EditorSettings())
    a, b = per_image.edit(image_a, mask_a, plan).image, per_image.edit(image_b, mask_b, plan).image
    assert float((a[light] - b[light]).abs().max()) > 0.05  # each view's own mean: the light half differs
    calibrated = per_image.calibrated([image_a, image_b], [mask_a, mask_b])
    assert calibrated.reference is not None and calibrated.deterministic
    a, b = calibrated.edit(image_a, mask_a, plan).image, calibrated.edit(image_b, mask_b, plan).image
    assert torch.allclose(a[light], b[light], atol=1e-6)
    assert torch.equal(a[mask_a == 0], image_a[mask_a == 0])
    assert per_image.calibrated([image_a], [torch.zeros(32, 32)]) is per_image  # nothing to calibrate on


def test_keyframes_reach_parts_of_the_selection_only_one_view_shows() -> None:
    features = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])
    visibility = torch.ones(5)
    seen = torch.zeros(5, 5, dtype=torch.bool)
    seen[:, 0] = True
    seen[1, 1:] = True  # four of the five Gaussians only show in candidate 1
    plain = farthest_point_keyframes(features, visibility, 3)
    aware = farthest_point_keyframes(features, visibility, 3, seen=seen, seen_weights=torch.ones(5))
    assert 1 not in plain.indices and 1 in aware.indices
    assert aware.region_coverage == pytest.approx(1.0)
    low = farthest_point_keyframes(features, visibility, 2, seen=seen, seen_weights=torch.ones(5))
    assert low.region_coverage == pytest.approx(0.2)  # candidates 0 and 4 show one of five


def test_visibility_counts_occluded_gaussians_as_unseen() -> None:
    avatar = load_demo_avatar(count=8000)
    inner = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(["mouth_interior"])))
    assert int(inner.sum()) > 20
    cams = orbit_cameras(avatar, 1, 128, yaw_range=0.0, pitches=(0.0,))
    closed = avatar.head.neutral_params()
    opened = closed.with_values(jaw_pose=torch.tensor([[0.35, 0.0, 0.0]]))
    views = orbit_views(avatar, closed, cams) + orbit_views(avatar, opened, cams)
    report = measure_visibility(avatar, views, inner.float())
    assert report.seen.shape == (2, int(inner.sum()))
    assert float(report.visibility[0]) < 0.02  # behind closed lips: in the frame, but covered
    assert float(report.visibility[1]) > float(report.visibility[0]) + 0.05  # the open jaw shows part of it
    assert float(report.mask_area[1]) > float(report.mask_area[0])
