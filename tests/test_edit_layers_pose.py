"""Expression layers carry pose parts: 'jaw_open' is a jaw rotation (20° a unit), not a coefficient. A plan
with it becomes a layer that the viewport, the exports and the project file all apply and keep."""

from __future__ import annotations

import math

import pytest
import torch

from engine.avatar.demo import load_demo_avatar
from engine.avatar.posing import Pose, apply_pose
from engine.edit.editors import EditorSettings, make_editor
from engine.edit.layers import EditLayer, expression_layer_of, pose_offset
from engine.edit.run import run_edit
from engine.export.splat_export import posed_splats
from engine.project.layers_io import layer_arrays, layer_from_parts, layer_meta
from engine.prompting import refine
from engine.view.posing import posed_params


@pytest.fixture(scope="module")
def avatar():
    return load_demo_avatar(count=4000)


def test_jaw_open_becomes_a_jaw_rotation_beside_the_coefficients(avatar) -> None:
    layer = expression_layer_of(avatar.head, {"smile": 0.8, "jaw_open": 0.5}, "laugh")
    assert layer.kind == "expression"
    assert float(layer.expr_offset[avatar.head.expression_index("smile")]) == pytest.approx(0.8)
    assert layer.jaw_offset is not None
    assert float(layer.jaw_offset[0]) == pytest.approx(math.radians(20.0) * 0.5)
    assert float(layer.jaw_offset[1:].abs().sum()) == 0.0
    only_jaw = expression_layer_of(avatar.head, {"jaw_open": 1.0}, "open")
    assert only_jaw.expr_offset is None and float(only_jaw.jaw_offset[0]) == pytest.approx(math.radians(20.0))
    with pytest.raises(ValueError, match="unknown expression"):
        expression_layer_of(avatar.head, {"grin_wide": 1.0}, "bad")


def test_the_view_poses_a_jaw_layer_as_the_jaw_slider_does(avatar) -> None:
    """The layer's mesh equals the mesh of the same weights set on the sliders (apply_pose), and differs
    from the neutral one; a disabled layer adds nothing."""
    layer = expression_layer_of(avatar.head, {"smile": 0.6, "jaw_open": 0.7}, "laugh")
    by_layer = avatar.posed_vertices(posed_params(avatar, avatar.params, Pose(), 0, [layer]))
    by_slider = avatar.posed_vertices(apply_pose(avatar, Pose(expressions={"smile": 0.6, "jaw_open": 0.7})))
    neutral = avatar.posed_vertices(posed_params(avatar, avatar.params, Pose(), 0, []))
    torch.testing.assert_close(by_layer, by_slider)
    assert float((by_layer - neutral).norm(dim=1).max()) > 1e-3  # the jaw really moved
    off = avatar.posed_vertices(posed_params(avatar, avatar.params, Pose(), 0, [layer.toggled(False)]))
    torch.testing.assert_close(off, neutral)
    assert pose_offset([layer.toggled(False)], avatar.head.n_expr) is None


def test_jaw_offsets_of_several_layers_add_and_reach_the_exported_splats(avatar) -> None:
    a = expression_layer_of(avatar.head, {"jaw_open": 0.25}, "a")
    b = expression_layer_of(avatar.head, {"jaw_open": 0.5}, "b")
    offset = pose_offset([a, b], avatar.head.n_expr)
    assert offset is not None and offset.expr is None
    assert float(offset.jaw[0]) == pytest.approx(math.radians(20.0) * 0.75)
    exported = posed_splats(avatar, avatar.frame_params(0), offset).means
    slider = avatar.splats(apply_pose(avatar, Pose(expressions={"jaw_open": 0.75}))).means
    torch.testing.assert_close(exported, slider)


def test_a_jaw_layer_survives_the_project_file(avatar) -> None:
    layer = expression_layer_of(avatar.head, {"smile": 0.4, "jaw_open": 0.3}, "laugh", {"expression": {"smile": 0.4}})
    back = layer_from_parts(layer_meta(layer, "x.npz"), layer_arrays(layer), "x.npz", avatar.gaussians,
                            avatar.head.n_faces)
    assert torch.equal(back.jaw_offset, layer.jaw_offset) and torch.equal(back.expr_offset, layer.expr_offset)
    arrays = {**layer_arrays(layer), "jaw_offset": layer.jaw_offset.numpy()[:2]}
    from engine.io.atomic import FileFormatError

    with pytest.raises(FileFormatError, match="jaw_offset must hold 3 finite floats"):
        layer_from_parts(layer_meta(layer, "x.npz"), arrays, "x.npz", avatar.gaussians, avatar.head.n_faces)
    with pytest.raises(AssertionError, match="jaw_offset must be"):
        EditLayer("bad", "expression", jaw_offset=torch.zeros(2))


@pytest.mark.parametrize("prompt", ["open her mouth wide", "make her laugh"])
def test_plans_with_jaw_open_make_a_layer_instead_of_raising(avatar, prompt: str) -> None:
    plan = refine(prompt).plan
    assert plan.expression.get("jaw_open", 0.0) > 0
    result = run_edit(avatar, torch.zeros(avatar.gaussians.count, dtype=torch.bool), plan,
                      make_editor(EditorSettings()))
    layer = result.layer
    assert layer.kind == "expression" and layer.jaw_offset is not None
    assert float(layer.jaw_offset[0]) == pytest.approx(math.radians(20.0) * plan.expression["jaw_open"])


def test_a_mixed_plan_edits_views_that_wear_its_jaw(avatar) -> None:
    """'make her lips blue and make her laugh': the appearance keyframes are taken with the new expression,
    the jaw rotation included, and the expression layer carries both parts."""
    from engine.edit.optimise import OptimConfig
    from engine.edit.run import EditConfig
    from engine.head.components import labels_of

    plan = refine("make the lips blue and make her laugh").plan
    assert plan.expression.get("jaw_open", 0.0) > 0 and plan.colour is not None
    lips = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(list(plan.components))))
    config = EditConfig(size=48, keyframes=2, orbit_cameras=4, max_timesteps=1, min_steps=2, max_steps=3,
                        mapped_steps=3, discriminator=False, optim=OptimConfig(refresh_every=0))
    result = run_edit(avatar, lips, plan, make_editor(EditorSettings()), config)
    assert [layer.kind for layer in result.layers] == ["edit", "expression"]
    jaw = math.radians(20.0) * plan.expression["jaw_open"]
    assert float(result.expression.jaw_offset[0]) == pytest.approx(jaw)
    base_jaw = float(avatar.frame_params(0).jaw_pose[0, 0])
    assert result.views and all(float(v.params.jaw_pose[0, 0]) == pytest.approx(base_jaw + jaw) for v in result.views)
