"""Edit panel (headless): requests, previews, the split toggle, the keyframe source and the chosen keyframes."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from widgets.edit_panel import EditPanel


def test_panel_emits_requests_and_shows_state(qtbot) -> None:
    panel = EditPanel()
    qtbot.addWidget(panel)
    panel.backend_box.setCurrentIndex(3)
    panel.url_edit.setText("http://127.0.0.1:8000/v1")
    with qtbot.waitSignal(panel.edit_requested, timeout=1000) as sig:
        qtbot.mouseClick(panel.edit_button, Qt.MouseButton.LeftButton)
    assert sig.args[0]["backend"] == "http" and sig.args[0]["url"].endswith("/v1")
    panel.set_running(True)
    assert not panel.edit_button.isEnabled() and panel.cancel_button.isEnabled()
    with qtbot.waitSignal(panel.cancel_requested, timeout=1000):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    before, after = np.zeros((32, 32, 3), np.float32), np.ones((32, 32, 3), np.float32)
    panel.show_preview(0, before, after)
    assert panel.after_label.pixmap() is not None and not panel.after_label.pixmap().isNull()
    panel.set_compare(False, available=False)
    assert not panel.compare_button.isEnabled()
    panel.set_compare(False, available=True)
    with qtbot.waitSignal(panel.compare_toggled, timeout=1000) as sig:
        qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    assert sig.args == [True]
    panel.set_compare(False, available=True)  # the model's state, shown without a signal
    assert not panel.compare_button.isChecked()


def test_panel_shows_its_keyframe_source_and_keyframes(qtbot) -> None:
    panel = EditPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert not panel.keyframe_list.isVisible()
    panel.set_dataset("/data/gone: dataset folder does not exist: keyframes from rendered views", problem=True)
    assert "does not exist" in panel.dataset_label.text() and panel.dataset_label.styleSheet()
    panel.set_dataset("the avatar's training dataset ds: keyframes from its 9 training frames")
    assert not panel.dataset_label.styleSheet()
    pair = np.concatenate([np.zeros((32, 32, 3), np.float32), np.ones((32, 32, 3), np.float32)], axis=1)
    panel.show_keyframes([(pair, "t=0 · cam 1\nrealness 0.81 ✓", "tip a"), (pair, "t=2 · cam 0\nrealness 0.12 ✗", "tip b")])
    assert panel.keyframe_list.isVisible() and panel.keyframe_list.count() == 2
    assert not panel.keyframe_list.item(1).icon().isNull() and "0.12" in panel.keyframe_list.item(1).text()
    assert panel.keyframes_title.text() == "Keyframes (2)"
    panel.show_keyframes([])
    assert not panel.keyframe_list.isVisible()
