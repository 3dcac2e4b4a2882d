"""The before/after comparison in the frame pipeline: columns left of the divider are the picture without
the compared layers, columns right of it the picture with them, at the current pose and view, and the
divider is drawn where the split says."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.avatar.demo import load_demo_avatar
from engine.avatar.posing import Pose
from engine.edit.layers import EditLayer, expression_layer_of
from engine.head.components import labels_of
from engine.render.splats import rgb_to_dc
from engine.view.overlays import SPLIT_RGB, join_split, split_column
from engine.view.pipeline import FramePipeline
from engine.view.state import SessionState

W, H = 160, 128


@pytest.fixture(scope="module")
def avatar():
    return load_demo_avatar(count=6000)


def _green_lips(avatar) -> EditLayer:
    lips = torch.nonzero(torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(["lips"])))).squeeze(1)
    target = rgb_to_dc(torch.tensor([0.1, 0.9, 0.1])).expand(lips.numel(), 3)
    delta = torch.zeros(lips.numel(), *avatar.gaussians.sh.shape[1:])
    delta[:, 0] = target - avatar.gaussians.sh[lips, 0]
    return EditLayer("green lips", "edit", indices=lips, deltas={"sh": delta})


@pytest.fixture(scope="module")
def state(avatar) -> SessionState:
    s = SessionState()
    s.set_avatar(avatar)
    return s


def _alone(pipeline: FramePipeline, state: SessionState, layers: tuple[EditLayer, ...]) -> np.ndarray:
    req = state.request(1, W, H)
    frame = pipeline.render(replace(req, layers=layers, split=None, before_layers=()))
    return frame.image


def _away_from_divider(cut: int) -> np.ndarray:
    """[W] columns clear of the divider and its grip."""
    cols = np.arange(W)
    return np.abs(cols - cut) > 11  # the line is 2-4 px wide, the grip 21


def test_split_shows_before_left_and_after_right(avatar, state) -> None:
    edit = _green_lips(avatar)
    smile = expression_layer_of(avatar.head, {"smile": 0.9, "jaw_open": 0.4}, "smile")
    state.set_layers((edit, smile))
    state.set_compare({edit.id, smile.id}, 0.5)
    assert state.comparing and state.before_layers == ()
    pipeline = FramePipeline("cpu")
    req = state.request(1, W, H)
    assert req.split == 0.5 and req.before_layers == () and req.layers == (edit, smile)
    frame = pipeline.render(req)
    assert frame.split == 0.5 and frame.image.shape == (H, W, 3)
    before = _alone(pipeline, state, ())
    after = _alone(pipeline, state, (edit, smile))
    assert np.abs(before.astype(int) - after.astype(int)).max() > 60  # the edit and the smile show
    cut = split_column(W, 0.5)
    keep = _away_from_divider(cut)
    left, right = keep & (np.arange(W) < cut), keep & (np.arange(W) >= cut)
    diff = np.abs(frame.image.astype(int) - np.where(np.arange(W)[None, :, None] < cut, before, after).astype(int))
    assert diff[:, left].max() <= 2 and diff[:, right].max() <= 2  # each side is its own full picture's columns
    top = H // 4  # above the grip: the divider is the light line
    assert (frame.image[top, cut - 1:cut + 1] == SPLIT_RGB).all()


def test_divider_follows_the_split_and_the_pose(avatar, state) -> None:
    edit = _green_lips(avatar)
    state.set_layers((edit,))
    state.set_compare({edit.id}, 0.45)
    pipeline = FramePipeline("cpu")
    frame = pipeline.render(state.request(2, W, H))
    cut = split_column(W, 0.45)
    assert frame.split == 0.45 and (frame.image[H // 4, cut - 1:cut + 1] == SPLIT_RGB).all()
    before_rest = frame.image.copy()
    state.set_pose(Pose(yaw=25.0, expressions={"jaw_open": 0.8}))  # a slider moves: both sides follow it
    moved = pipeline.render(state.request(3, W, H))
    before_now = _alone(pipeline, state, ())
    keep = _away_from_divider(cut) & (np.arange(W) < cut)
    assert np.abs(moved.image[:, keep].astype(int) - before_now[:, keep].astype(int)).max() <= 2
    assert np.abs(moved.image[:, keep].astype(int) - before_rest[:, keep].astype(int)).max() > 30
    state.set_pose(Pose())
    state.set_compare(None, 0.0)  # divider at the left edge: the whole picture is after
    edge = pipeline.render(state.request(4, W, H))
    after = _alone(pipeline, state, (edit,))
    assert np.abs(edge.image[:, 12:].astype(int) - after[:, 12:].astype(int)).max() <= 2


def test_no_comparison_when_off_or_when_the_sides_are_the_same(avatar, state) -> None:
    edit = _green_lips(avatar)
    state.set_layers((edit,))
    state.set_compare({edit.id}, None)
    assert not state.comparing and state.request(5, W, H).split is None
    state.set_compare({"some other layer"}, 0.5)  # nothing compared is shown: before == after
    assert not state.comparing and state.request(6, W, H).split is None
    state.set_compare({edit.id}, 0.5)
    assert state.request(6, W, H).split == 0.5
    state.set_view_options(before=True)  # "before edits" (B) shows no layers, so no comparison either
    req = state.request(6, W, H)
    assert req.split is None and req.layers == ()
    state.set_view_options(before=False)
    state.set_layers(())  # the edit was undone: nothing left to compare
    assert not state.comparing
    state.set_layers((edit,))
    state.set_preview_layer(_green_lips(avatar))  # a preview is never on the before side
    state.set_compare(set(), 0.5)
    assert state.comparing and state.request(7, W, H).before_layers == (edit,)
    state.set_preview_layer(None)
    state.set_avatar(avatar)  # another avatar: comparison off
    assert state.split is None and not state.compared


def test_join_split_checks_its_sides() -> None:
    left, right = np.zeros((8, 3, 3), np.uint8), np.full((8, 5, 3), 200, np.uint8)
    image = join_split(left, right, 8)
    assert image.shape == (8, 8, 3)
    with pytest.raises(AssertionError, match="split sides must be"):
        join_split(left, np.zeros((7, 5, 3), np.uint8), 8)
