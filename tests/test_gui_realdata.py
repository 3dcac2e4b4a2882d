"""The window with real data: a GaussianAvatars output folder dropped on it opens (asking for the FLAME
model once), and a FLAME head gets named sliders plus its raw coefficients in an Advanced group."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from app.main_window import MainWindow
from engine.head.model import load_head
from tests.flame_like import flame_like
from tests.gui_windows import new_window
from tests.test_flame_data import _ga_run
from widgets.edit_panel import EditPanel


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    model_file = flame_like().write(tmp_path_factory.mktemp("flame"))
    run = _ga_run(tmp_path_factory.mktemp("output") / "subject_run", load_head(model_file, teeth=True), (1000, 2000))
    return model_file, run


@pytest.fixture
def window(qtbot, tmp_path):
    win = new_window(tmp_path, "cpu", 96, features=False)
    controller = win.controller
    qtbot.addWidget(win)
    win.show()
    yield win
    controller.shutdown()


def _drop(win: MainWindow, path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(win.rect().center(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(win.rect().center()), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, drop)


@pytest.mark.slow
def test_dropped_gaussianavatars_folder_asks_for_flame_once_then_opens(window, qtbot, files, monkeypatch):
    model_file, run = files
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: asked.append(a[2]))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(model_file), ""))
    with qtbot.waitSignal(window.model.avatarChanged, timeout=60_000):
        _drop(window, run)
    avatar = window.model.avatar
    assert len(asked) == 1 and "made with FLAME" in asked[0]
    assert avatar.name == "subject_run" and avatar.iteration == 2000 and avatar.head.has_teeth
    assert window.flame_model == str(model_file)
    assert window.model.frame_count == 4  # its own sequence plays
    asked.clear()
    with qtbot.waitSignal(window.model.avatarChanged, timeout=60_000):  # remembered: no question the second time
        _drop(window, run / "point_cloud")
    assert not asked


def test_flame_head_has_named_sliders_and_folded_raw_coefficients(window, qtbot, files):
    model_file, run = files
    window.settings.setValue("flame_model", str(model_file))
    with qtbot.waitSignal(window.model.avatarChanged, timeout=60_000):
        window.open_avatar(str(run))
    panel = window.panels["expression"]
    head = window.model.avatar.head
    assert {"expr:smile", "expr:blink_left", "expr:pucker"} <= set(panel.rows)
    assert panel.advanced.isVisibleTo(panel) and not panel.advanced.isChecked()
    assert {f"expr:expr_{i}" for i in range(10)} <= set(panel.rows)
    panel.rows["expr:smile"].spin.setValue(0.8)
    panel.rows["expr:expr_2"].spin.setValue(1.5)
    expected = head.expr_vector(smile=0.8, expr_2=1.5)
    torch.testing.assert_close(window.model.current_params().expr[0], expected)
    presets = panel.presets.presets()
    assert any(pose.expressions for pose in presets.values())  # the built-in named presets apply to FLAME now


def test_edit_panel_offers_the_devices_it_is_given(qtbot):
    panel = EditPanel(devices=["cpu", "cuda"])
    qtbot.addWidget(panel)
    assert panel.settings()["device"] == "cpu"
    panel.device_box.setCurrentText("cuda")
    assert panel.settings()["device"] == "cuda"
