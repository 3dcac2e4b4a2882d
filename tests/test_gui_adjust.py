"""Adjust panel in the main window: live preview on the selection while dragging (real mouse events),
one undo item per drag, Apply = one layer, undo back to the exact base, Delete hides, no selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox, QSlider, QStyle, QStyleOptionSlider

from engine.edit.adjust import selection_from_components
from engine.edit.layers import DELTA_FIELDS, compose
from engine.head.components import LABEL
from tests.gui_windows import new_window

SIDE = 256


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    # closing with unsaved changes asks; here the answer is always "Discard" (pytest-qt closes windows first)
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard))
    win = new_window(tmp_path, "auto", SIDE)
    model = win.model
    controller = win.controller
    qtbot.addWidget(win)
    win.resize(1100, 800)
    for key, dock in win.docks.items():
        dock.setVisible(key == "adjust")
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(model.avatarChanged, timeout=60_000):
        win.open_avatar(None)
    current_frame(qtbot, win)
    yield win
    win.close()
    controller.shutdown()


def current_frame(qtbot, win, timeout: int = 30_000):
    ctrl = win.controller
    qtbot.waitUntil(lambda: win.viewport.frame is not None and win.viewport.frame.serial == ctrl.latest_serial,
                    timeout=timeout)
    return win.viewport.frame


def mouth_box(win, frame, pad: int = 4) -> tuple[slice, slice]:
    avatar = win.model.avatar
    lips = (avatar.gaussians.labels == LABEL["upper_lip"]) | (avatar.gaussians.labels == LABEL["lower_lip"])
    with torch.no_grad():
        means = avatar.splats(avatar.frame_params(0)).means[lips]
    cam = frame.camera
    pc = means.float() @ cam.world_to_cam[:3, :3].T + cam.world_to_cam[:3, 3]
    uv = torch.stack([cam.fx * pc[:, 0] / pc[:, 2] + cam.cx, cam.fy * pc[:, 1] / pc[:, 2] + cam.cy], 1).numpy()
    x0, y0 = np.floor(uv.min(0)).astype(int) - pad
    x1, y1 = np.ceil(uv.max(0)).astype(int) + pad
    return slice(max(0, y0), y1), slice(max(0, x0), x1)


def handle_centre(slider: QSlider) -> QPoint:
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    rect = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, slider)
    return rect.center()


def move(slider: QSlider, pos: QPoint) -> None:
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(pos), QPointF(slider.mapToGlobal(pos)),
                        Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(slider, event)


def select_lips(win) -> torch.Tensor:
    model = win.model
    lips = selection_from_components(model.avatar.gaussians, ["lips"])
    model.set_selection(lips.float(), "Select lips")
    return lips


def test_drag_previews_then_apply_is_one_layer_and_undo_restores_base(window, qtbot):
    model, adjust = window.model, window.features["adjust"]
    panel = adjust.panel
    assert not panel.isEnabled(), "nothing selected yet"
    lips = select_lips(window)
    assert panel.isEnabled() and "selected" in adjust.status.text()
    before = current_frame(qtbot, window)
    rows, cols = mouth_box(window, before)
    steps = model.undo_stack.count()
    slider = panel.sliders["brightness"]
    start = handle_centre(slider)
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for dx in (10, 20, 35, 50, 70):
        move(slider, start + QPoint(dx, 0))
    qtbot.waitUntil(lambda: model.preview_layer is not None, timeout=5_000)
    assert slider.isSliderDown() and model.layers == ()
    during = current_frame(qtbot, window)
    diff = np.abs(during.image.astype(int) - before.image.astype(int))
    assert diff[rows, cols].max() > 20, "the preview brightens the lips on screen while dragging"
    outside = diff.copy()
    outside[rows, cols] = 0
    assert outside.max() <= 2, "nothing outside the mouth changes"
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start + QPoint(70, 0))
    assert model.undo_stack.count() == steps + 1, "one drag is one undo item"
    brightness = adjust.params.brightness
    assert brightness > 0.1 and model.preview_layer.info["params"]["brightness"] == brightness

    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert len(model.layers) == 1 and model.preview_layer is None and panel.params.brightness == 0.0
    layer = model.layers[0]
    assert layer.kind == "adjust" and torch.equal(torch.sort(layer.indices).values, torch.nonzero(lips).squeeze(1))
    applied = current_frame(qtbot, window)
    assert np.abs(applied.image.astype(int) - during.image.astype(int)).max() <= 2, "Apply shows what was previewed"

    model.undo_stack.undo()
    assert model.layers == ()
    base = model.avatar.gaussians
    composed = compose(base, list(model.layers))
    assert all(torch.equal(getattr(composed, f), getattr(base, f)) for f in DELTA_FIELDS)
    assert adjust.params.brightness == brightness, "undoing Apply returns to the adjustment being dialled in"
    model.undo_stack.undo()
    assert model.preview_layer is None and panel.params.brightness == 0.0
    after = current_frame(qtbot, window)
    assert np.abs(after.image.astype(int) - before.image.astype(int)).max() <= 1, "back to the original picture"


def test_delete_hides_the_selection_and_nothing_selected_does_nothing(window, qtbot):
    model, adjust = window.model, window.features["adjust"]
    panel = adjust.panel
    assert adjust.hide_selection() is None and model.layers == ()
    lips = select_lips(window)
    panel.sliders["brightness"].setFocus()
    QTest.keyClick(panel.sliders["brightness"], Qt.Key.Key_Delete)
    assert len(model.layers) == 1
    layer = model.layers[0]
    assert torch.equal(torch.sort(layer.hidden).values, torch.nonzero(lips).squeeze(1))
    composed = compose(model.avatar.gaussians, list(model.layers))
    assert composed.count == model.avatar.gaussians.count - int(lips.sum())
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert model.layers == ()
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(model.layers) == 1
