"""The Adjust panel emits previews while dragging, one drag_finished per drag, Apply / Reset / Delete."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QSlider, QStyle, QStyleOptionSlider

from engine.edit.adjust import AdjustParams
from widgets.adjust_panel import AdjustPanel


def _handle_centre(slider: QSlider) -> QPoint:
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    rect = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, slider)
    return rect.center()


def _move(slider: QSlider, pos: QPoint) -> None:
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(pos), QPointF(slider.mapToGlobal(pos)),
                        Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(slider, event)


def _panel(qtbot) -> AdjustPanel:
    panel = AdjustPanel()
    qtbot.addWidget(panel)
    panel.resize(420, 600)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_a_drag_previews_live_and_finishes_once(qtbot) -> None:
    panel = _panel(qtbot)
    previews: list[AdjustParams] = []
    finished: list[AdjustParams] = []
    panel.preview_requested.connect(previews.append)
    panel.drag_finished.connect(finished.append)
    slider = panel.sliders["brightness"]
    start = _handle_centre(slider)
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for dx in (10, 25, 40, 60):
        _move(slider, start + QPoint(dx, 0))
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start + QPoint(60, 0))
    assert len(previews) >= 3
    values = [p.brightness for p in previews]
    assert values == sorted(values) and values[-1] > 0.1
    assert len(finished) == 1 and finished[0] == previews[-1] == panel.params


def test_colour_apply_reset_and_delete(qtbot) -> None:
    panel = _panel(qtbot)
    with qtbot.waitSignal(panel.preview_requested, timeout=1000) as blocker:
        panel.set_tint_colour(QColor(25, 76, 230))
    params = blocker.args[0]
    assert abs(params.tint[2] - 230 / 255) < 1e-6 and params.strength == 0.5
    assert panel.sliders["strength"].value() == 100
    with qtbot.waitSignal(panel.apply_requested, timeout=1000) as applied:
        QTest.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert applied.args[0] == params
    with qtbot.waitSignal(panel.reset_requested, timeout=1000):
        QTest.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    assert panel.params == AdjustParams() and panel.sliders["strength"].value() == 0
    panel.sliders["opacity"].setFocus()
    with qtbot.waitSignal(panel.delete_requested, timeout=1000):
        QTest.keyClick(panel.sliders["opacity"], Qt.Key.Key_Delete)


def test_set_params_shows_values_without_signals(qtbot) -> None:
    panel = _panel(qtbot)
    seen: list[AdjustParams] = []
    panel.preview_requested.connect(seen.append)
    panel.set_params(AdjustParams(saturation=-1.0, offset=(0.002, 0.0, 0.0)))
    assert seen == [] and panel.sliders["saturation"].value() == 0
    assert abs(panel.offset_boxes[0].value() - 2.0) < 1e-9
    panel.rotation_boxes[1].setValue(15.0)
    assert seen[-1].rotation == (0.0, 15.0, 0.0) and seen[-1].offset == (0.002, 0.0, 0.0)
