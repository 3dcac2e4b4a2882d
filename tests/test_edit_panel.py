"""Edit panel (headless): requests, previews, split comparison."""

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
    panel.show_comparison(before, after)
    panel.split_slider.setValue(25)
    split = panel.split_image()
    assert split[:, :7].max() == 0 and split[:, 9:].min() == 1
