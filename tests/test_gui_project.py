"""Projects in the GUI: save / modify / open restores the session exactly; a corrupt file shows an error
and keeps the work; recovery copies are offered at start; export runs on a worker."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plyfile import PlyData
from PySide6.QtWidgets import QFileDialog, QMessageBox

from engine.edit.adjust import AdjustParams, selection_from_components
from engine.export.splat_export import posed_splats
from engine.export.video import VideoSettings
from engine.project.autosave import Autosaver
from engine.prompting import RefineSettings
from tests.gui_windows import new_window
from tests.test_export_video import decode
from widgets.export_dialog import ExportRequest


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard))
    win = new_window(tmp_path, "auto", 128, refine_settings=RefineSettings(use_embeddings=False))
    model = win.model
    controller = win.controller
    qtbot.addWidget(win)
    win.show()
    with qtbot.waitSignal(model.avatarChanged, timeout=60_000):
        win.open_avatar(None)
    yield win
    win.close()
    controller.shutdown()


def edit_session(win, qtbot) -> None:
    """Layer on the lips, a pose, a camera, a frame, a selection and one refined prompt."""
    model, features = win.model, win.features
    model.set_selection(selection_from_components(model.avatar.gaussians, ["lips"]).float() * 0.75)
    features["adjust"].apply(AdjustParams(brightness=0.4, tint=(0.9, 0.1, 0.1), strength=0.5))
    model.set_expression("smile", 0.35)
    model.set_pose_values(yaw=12.0, jaw=0.1)
    model.set_camera(model.camera.orbited(20.0, -5.0).zoomed(0.8))
    prompt = features["prompt"]
    prompt.panel.prompt_box.setEditText("make her smile")
    with qtbot.waitSignal(prompt.refined, timeout=60_000):
        prompt.panel.refine_button.click()


def state(win) -> dict:
    m = win.model
    return {"pose": m.pose, "camera": m.camera, "frame": m.frame, "selection": m.selection.clone(),
            "layers": [(l.id, l.name, l.kind, l.enabled, l.indices.clone(), {k: v.clone() for k, v in l.deltas.items()},
                        l.hidden.clone(), l.info) for l in m.layers],
            "history": win.features["prompt"].history, "gaussians": m.avatar.gaussians}


def assert_same(a: dict, b: dict) -> None:
    assert a["pose"] == b["pose"] and a["camera"] == b["camera"] and a["frame"] == b["frame"]
    assert torch.equal(a["selection"], b["selection"])
    assert a["history"] == b["history"]
    assert len(a["layers"]) == len(b["layers"]) == 1
    for x, y in zip(a["layers"], b["layers"]):
        assert x[:4] == y[:4] and x[7] == y[7]
        assert torch.equal(x[4], y[4]) and torch.equal(x[6], y[6])
        assert x[5].keys() == y[5].keys() and all(torch.equal(x[5][k], y[5][k]) for k in x[5])
    for f in ("xyz", "rotation", "log_scale", "opacity_logit", "sh", "binding", "labels"):
        assert torch.equal(getattr(a["gaussians"], f), getattr(b["gaussians"], f)), f


@pytest.mark.slow
def test_save_modify_open_restores_exactly(window, qtbot, monkeypatch, tmp_path):
    model, pc = window.model, window.features["project"]
    edit_session(window, qtbot)
    assert pc.modified and window.windowTitle().startswith("*")
    saved = state(window)
    path = tmp_path / "work" / "mine.dap"
    path.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(path.with_suffix("")), "")))
    assert pc.save()
    assert path.is_file() and not pc.modified and pc.path == path.resolve()
    assert pc.recent.paths() == [path.resolve()]

    model.set_expression("smile", 0.9)
    window.features["adjust"].hide_selection()
    model.set_selection(None)
    model.reset_camera()
    assert pc.modified
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
    monkeypatch.setattr(QMessageBox, "question",
                        staticmethod(lambda *a, **k: asked.append(a[1]) or QMessageBox.StandardButton.Discard))
    with qtbot.waitSignal(pc.opened, timeout=30_000):
        pc.choose_project()
    assert asked == ["Unsaved changes"]
    assert_same(state(window), saved)
    assert not pc.modified and model.undo_stack.count() == 0 and model.preview_layer is None
    assert window.features["prompt"].panel.prompt_box.itemText(0) == "make her smile"


def test_corrupt_project_shows_error_and_keeps_state(window, qtbot, monkeypatch, tmp_path):
    pc = window.features["project"]
    edit_session(window, qtbot)
    before = state(window)
    bad = tmp_path / "broken.dap"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip file" * 10)
    errors = []
    monkeypatch.setattr(QMessageBox, "critical", staticmethod(lambda parent, title, text, *a: errors.append((title, text))))
    worker = pc.open_project(bad, ask=False)
    qtbot.waitUntil(lambda: not worker.is_running() and bool(errors), timeout=30_000)
    assert errors[0][0] == "Could not open project" and "broken.dap" in errors[0][1]
    assert_same(state(window), before)
    assert pc.modified and pc.path is None


@pytest.mark.slow
def test_recovery_copy_is_offered_and_restored(window, qtbot, monkeypatch, tmp_path):
    model, pc = window.model, window.features["project"]
    edit_session(window, qtbot)
    crashed = Autosaver(pc.snapshot, folder=tmp_path / "state" / "recovery", interval_s=0.0)
    crashed.note_change()
    copy = crashed.maybe_save()
    assert copy is not None and copy.is_file()
    saved = state(window)
    while model.undo_stack.canUndo():
        model.undo_stack.undo()
    assert model.layers == () and model.selection is None
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        staticmethod(lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Open))
    with qtbot.waitSignal(pc.opened, timeout=30_000):
        assert pc.offer_recovery()
    assert len(asked) == 1 and "unsaved work" in asked[0]
    assert_same(state(window), saved)
    assert pc.modified and pc.path is None
    assert not copy.exists(), "the old copy is replaced by this session's own"
    assert pc.autosaver.recovery_path.is_file()


def test_recovery_discard_deletes_the_copy(window, qtbot, monkeypatch, tmp_path):
    pc = window.features["project"]
    crashed = Autosaver(pc.snapshot, folder=tmp_path / "state" / "recovery", interval_s=0.0)
    crashed.note_change()
    copy = crashed.maybe_save()
    assert copy.is_file()
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard))
    assert not pc.offer_recovery()
    assert not copy.exists() and pc.autosaver.pending_recovery() == []


def test_export_splats_and_video_on_a_worker(window, qtbot, tmp_path):
    model, pc = window.model, window.features["project"]
    model.set_selection(selection_from_components(model.avatar.gaussians, ["lips"]).float())
    window.features["adjust"].hide_selection()
    ply = tmp_path / "out" / "head.ply"
    with qtbot.waitSignal(pc.exported, timeout=60_000):
        pc.start_export(ExportRequest("splats", ply))
    composed = model.avatar.gaussians.count - int(model.layers[0].hidden.numel())
    vertex = PlyData.read(str(ply))["vertex"]
    assert vertex.count == composed
    # the file holds the composed avatar (lips hidden) at the session's shown parameters, in world space
    expected = posed_splats(pc.snapshot().composed_avatar(), model.current_params()).means.numpy()
    np.testing.assert_allclose(np.stack([vertex[a] for a in "xyz"], 1), expected, rtol=0, atol=1e-5)
    mp4 = tmp_path / "out" / "clip.mp4"
    settings = VideoSettings(width=64, height=64, fps=10.0, duration_s=0.3, mask_overlay=True)
    with qtbot.waitSignal(pc.exported, timeout=120_000):
        pc.start_export(ExportRequest("video", mp4, motion="held", settings=settings, mask_selection="current"))
    frames = decode(mp4)
    assert len(frames) == 3 and frames[0].shape == (64, 64, 3)
    bg = np.round(np.array(settings.background) * 255)
    assert np.abs(frames[0][:4, :4].reshape(-1, 3) - bg).max() <= 8, "the corners show the background"
    assert np.abs(frames[0][28:36, 28:36].reshape(-1, 3) - bg).max() > 30, "the head is in the middle"
    assert not pc.export_progress.isVisible()
