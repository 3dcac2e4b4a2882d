"""The export dialog: fields become an ExportRequest; bad input keeps the dialog open with a message."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from engine.export.video import VideoSettings
from widgets.export_dialog import ExportDialog, ExportRequest


def test_video_request_from_fields(qtbot, tmp_path):
    dialog = ExportDialog(sequence_name="recorded take", has_original=True, selections=["lips", "hair"])
    qtbot.addWidget(dialog)
    assert "recorded take" in dialog.motion.itemText(0)
    dialog.path.setText(str(tmp_path / "talk"))
    dialog.camera.setCurrentIndex(dialog.camera.findData("orbit"))
    dialog.width_px.setValue(640)
    dialog.height_px.setValue(360)
    dialog.fps.setValue(30.0)
    dialog.crf.setValue(23)
    dialog.side_by_side.setChecked(True)
    dialog.mask.setCurrentIndex(dialog.mask.findData("lips"))
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.result() == QDialog.DialogCode.Accepted
    r = dialog.request()
    assert r.kind == "video" and r.path == tmp_path / "talk.mp4" and r.motion == "sequence"
    assert r.camera_path.kind == "orbit" and r.mask_selection == "lips"
    s = r.settings
    assert (s.width, s.height, s.fps, s.crf, s.side_by_side, s.mask_overlay) == (640, 360, 30.0, 23, True, True)


def test_invalid_input_keeps_dialog_open(qtbot, tmp_path):
    dialog = ExportDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "choose where" in dialog.error.text() and dialog.request() is None
    dialog.path.setText(str(tmp_path / "out.mp4"))
    dialog.motion.setCurrentIndex(dialog.motion.findData("file"))
    assert dialog.sequence_file.isEnabled()
    dialog.sequence_file.setText(str(tmp_path / "missing.npz"))
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "missing.npz" in dialog.error.text()
    assert not dialog.side_by_side.isEnabled()  # no original avatar to compare with


def test_splat_request_and_initial_values(qtbot, tmp_path):
    initial = ExportRequest("frames", tmp_path / "frames", settings=VideoSettings(width=256, height=128, fps=12.0))
    dialog = ExportDialog(initial=initial)
    qtbot.addWidget(dialog)
    assert (dialog.width_px.value(), dialog.height_px.value(), dialog.fps.value()) == (256, 128, 12.0)
    assert dialog.build_request().kind == "frames" and dialog.build_request().path == tmp_path / "frames"
    dialog.kind.setCurrentIndex(dialog.kind.findData("splats"))
    assert not dialog.camera.isEnabled() and not dialog.crf.isEnabled()
    dialog.path.setText(str(tmp_path / "head"))
    r = dialog.build_request()
    assert r.kind == "splats" and r.path == tmp_path / "head.ply" and r.mask_selection is None
