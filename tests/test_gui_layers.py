"""Layers panel: the list follows the model; toggle, delete and revert-region are undoable layer changes."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt

from app.session import SessionModel
from engine.avatar.demo import load_demo_avatar
from engine.edit.adjust import AdjustParams, adjust_layer, selection_from_components
from engine.edit.layers import compose
from widgets.layers_panel import LayersPanel


@pytest.fixture(scope="module")
def avatar():
    return load_demo_avatar()


@pytest.fixture
def panel(qtbot, avatar):
    model = SessionModel()
    model.set_avatar(avatar)
    view = LayersPanel(model)
    qtbot.addWidget(view)
    view.show()
    g = avatar.gaussians
    lips = selection_from_components(g, ["lips"])
    nose = selection_from_components(g, ["nose"])
    tint = adjust_layer(g, lips, AdjustParams(brightness=0.5), name="brighter lips")
    hide = adjust_layer(g, nose, AdjustParams(hide=True), name="no nose")
    model.set_layers([tint, hide], "two layers")
    model.undo_stack.clear()
    return view


def rows(view: LayersPanel) -> list[tuple[str, bool]]:
    items = [view.list.item(i) for i in range(view.list.count())]
    return [(it.text(), it.checkState() == Qt.CheckState.Checked) for it in items]


def test_list_shows_layers_and_toggle_is_undoable(panel, qtbot):
    model = panel.model
    assert rows(panel) == [("brighter lips   ·   adjust", True), ("no nose   ·   adjust", True)]
    assert not panel.empty_label.isVisible() and not panel.undo_button.isEnabled()
    count = compose(model.avatar.gaussians, list(model.layers)).count
    panel.list.item(1).setCheckState(Qt.CheckState.Unchecked)  # what clicking the checkbox does
    assert not model.layers[1].enabled and model.layers[0].enabled
    assert compose(model.avatar.gaussians, list(model.layers)).count == model.avatar.gaussians.count > count
    assert rows(panel)[1] == ("no nose   ·   adjust", False)
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    assert model.layers[1].enabled and rows(panel)[1][1]
    qtbot.mouseClick(panel.redo_button, Qt.MouseButton.LeftButton)
    assert not model.layers[1].enabled


def test_delete_removes_the_chosen_layer(panel, qtbot):
    model = panel.model
    first = model.layers[0]
    panel.list.setCurrentRow(1)
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert model.layers == (first,) and rows(panel) == [("brighter lips   ·   adjust", True)]
    panel.list.setCurrentRow(0)
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert model.layers == () and panel.empty_label.isVisible() and not panel.delete_button.isEnabled()
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    assert len(model.layers) == 2 and model.layers[0] is first


def test_revert_region_restores_only_the_selected_gaussians(panel, qtbot):
    model = panel.model
    g = model.avatar.gaussians
    upper = selection_from_components(g, ["upper_lip"])
    lower = selection_from_components(g, ["lower_lip"])
    panel.list.setCurrentRow(0)
    assert not panel.revert_button.isEnabled(), "nothing selected"
    model.set_selection(upper.float())
    assert panel.revert_button.isEnabled()
    qtbot.mouseClick(panel.revert_button, Qt.MouseButton.LeftButton)
    layer = model.layers[0]
    assert layer.name == "brighter lips" and not bool(upper[layer.indices].any())
    assert set(layer.indices.tolist()) == set(torch.nonzero(lower).squeeze(1).tolist())
    shown = compose(g, [layer])
    assert torch.equal(shown.sh[upper], g.sh[upper]) and not torch.equal(shown.sh[lower], g.sh[lower])
    model.undo_stack.undo()
    assert bool(upper[model.layers[0].indices].any())
