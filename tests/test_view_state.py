"""The Qt-free session state (engine/view/state.py): change events, the view request it snapshots, posing."""

from __future__ import annotations

import pytest
import torch

from engine.avatar.demo import load_demo_avatar
from engine.avatar.posing import Pose
from engine.edit.layers import EditLayer
from engine.head.components import LABEL
from engine.view import CameraState, SessionState, ViewOptions, posed_params


@pytest.fixture(scope="module")
def avatar():
    return load_demo_avatar()


def test_events_fire_per_change_and_the_request_snapshots_the_state(avatar):
    state = SessionState()
    assert state.request(1, 64, 48) is None, "nothing to draw before an avatar"
    fired: list[str] = []
    for name in ("avatar", "pose", "camera", "layers", "view", "changed", "frame"):
        getattr(state.events, name).connect(lambda *args, name=name: fired.append(name))
    state.set_avatar(avatar)
    assert fired[0] == "avatar" and "changed" in fired and fired[-1] == "frame"
    fired.clear()
    state.set_pose(state.pose_with_expression("smile", 0.4))
    state.set_camera(state.camera.orbited(10, 0))
    state.set_camera(state.camera)  # no change, no event
    state.set_view_options(wireframe=True)
    assert fired == ["pose", "changed", "camera", "changed", "view", "changed"]
    offset = torch.zeros(avatar.head.n_expr)
    offset[avatar.head.expression_index("smile")] = 0.3
    layer = EditLayer(name="smile more", kind="expression", expr_offset=offset)
    state.set_layers((layer,))
    req = state.request(7, 320, 240)
    assert (req.serial, req.size, req.avatar, req.layers) == (7, (320, 240), avatar, (layer,))
    assert req.pose == Pose(expressions={"smile": 0.4}) and req.view == ViewOptions(wireframe=True)
    assert req.camera == state.camera and isinstance(req.camera, CameraState)
    smile = avatar.head.expression_index("smile")
    assert float(state.current_params().expr[0, smile]) == pytest.approx(0.7), "pose plus the layer's offset"
    assert float(posed_params(avatar, avatar.params, req.pose, 0).expr[0, smile]) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="unknown expression 'grin'"):
        state.pose_with_expression("grin", 1.0)


def test_recording_a_take_replaces_the_sequence_and_resets_the_pose(avatar):
    state = SessionState()
    state.set_avatar(avatar)
    state.start_recording()
    for value in (0.0, 0.5, 1.0):
        state.set_pose(state.pose_with_expression("frown", value))
        state.record_sample()
    take = state.stop_recording()
    assert take is not None and take.frames == 3 and state.sequence is take and state.pose == Pose()
    frown = avatar.head.expression_index("frown")
    assert [round(float(v), 3) for v in take.expr[:, frown]] == [0.0, 0.5, 1.0]


def test_before_view_option_draws_no_layers(avatar):
    state = SessionState()
    state.set_avatar(avatar)
    layer = EditLayer("hide hair", "adjust", hidden=torch.nonzero(avatar.gaussians.labels == LABEL["hair"])[:, 0])
    state.set_layers((layer,))
    assert state.request(1, 64, 64).layers == (layer,)
    state.set_view_options(before=True)
    assert state.request(2, 64, 64).layers == ()
    seen: list[str] = []
    state.events.changed.connect(lambda: seen.append("changed"))
    state.set_selection(torch.ones(avatar.gaussians.count))
    assert seen == ["changed"] and state.request(3, 64, 64).selection is state.selection
