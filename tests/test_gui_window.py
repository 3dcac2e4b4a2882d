"""The main window, headless (offscreen Qt, the renderer "auto" picks as for users): demo avatar, sliders, orbit, bad files, timeline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMessageBox

from app.main_window import MainWindow
from engine.avatar.flame_npz import load_flame_params
from engine.head.components import LABEL
from tests.gui_windows import new_window

SIDE = 256  # render size of the tests (the longest side)


@pytest.fixture
def window(qtbot, tmp_path):
    win = new_window(tmp_path, "auto", SIDE, features=False)
    model = win.model
    controller = win.controller
    qtbot.addWidget(win)
    win.resize(1100, 760)
    win.show()
    with qtbot.waitSignal(model.avatarChanged, timeout=60_000):
        win.open_avatar(None)
    wait_current_frame(qtbot, win)
    yield win
    controller.shutdown()


def users_backend() -> str:
    """What the app's "auto" must pick here, probed on its own: gsplat with CUDA; else OpenGL, unless there is no
    EGL context or its driver is a software one (llvmpipe), where the CPU rasterizer is faster."""
    if torch.cuda.is_available():
        return "gsplat"
    try:
        import moderngl

        ctx = moderngl.create_standalone_context(backend="egl")
    except Exception:  # noqa: BLE001  (no EGL, no driver: whatever stops OpenGL makes auto take the CPU)
        return "cpu"
    try:
        renderer = str(ctx.info["GL_RENDERER"]).lower()
    finally:
        ctx.release()
    return "cpu" if any(name in renderer for name in ("llvmpipe", "softpipe", "swrast")) else "gl"


def wait_current_frame(qtbot, win: MainWindow, timeout: int = 30_000):
    """The frame showing the model's newest state, once it is on screen."""
    ctrl = win.controller
    qtbot.waitUntil(lambda: win.viewport.frame is not None and win.viewport.frame.serial == ctrl.latest_serial,
                    timeout=timeout)
    return win.viewport.frame


def project(points: torch.Tensor, frame) -> np.ndarray:
    """Pixel coordinates [N, 2] of world points [N, 3] in a frame's camera."""
    cam = frame.camera
    pc = points.float() @ cam.world_to_cam[:3, :3].T + cam.world_to_cam[:3, 3]
    return torch.stack([cam.fx * pc[:, 0] / pc[:, 2] + cam.cx, cam.fy * pc[:, 1] / pc[:, 2] + cam.cy], 1).numpy()


def mouth_box(win: MainWindow, frame, pad: int = 6) -> tuple[slice, slice]:
    """Rows and columns around the lips of the neutral avatar in a frame."""
    avatar = win.model.avatar
    lips = (avatar.gaussians.labels == LABEL["upper_lip"]) | (avatar.gaussians.labels == LABEL["lower_lip"])
    with torch.no_grad():
        means = avatar.splats(avatar.frame_params(0)).means[lips]
    uv = project(means, frame)
    x0, y0 = np.floor(uv.min(0)).astype(int) - pad
    x1, y1 = np.ceil(uv.max(0)).astype(int) + pad
    return slice(max(0, y0), y1), slice(max(0, x0), x1)


def test_window_opens_on_demo_avatar(window):
    m, frame = window.model, window.viewport.frame
    assert m.avatar.name == "demo avatar" and m.avatar.gaussians.count > 10_000
    assert window.status["gaussians"].text() == f"{m.avatar.gaussians.count:,} Gaussians"
    assert frame.backend == users_backend() and max(frame.image.shape[:2]) == SIDE
    names = {"gl": "OpenGL", "gsplat": "gsplat CUDA", "cpu": "CPU rasterizer"}
    assert window.status["backend"].text() == names[frame.backend]
    bg = np.round(np.array(m.view_options.background) * 255)
    corner = frame.image[:8, :8].reshape(-1, 3).astype(float)
    assert np.abs(corner - bg).max() <= 1, "corners show the background"
    centre = frame.image[frame.image.shape[0] // 2, frame.image.shape[1] // 2].astype(float)
    assert np.abs(centre - bg).max() > 30, "the head is in the middle of the view"
    assert set(window.docks) >= {"expression", "timeline"}


def test_smile_slider_changes_mouth_not_background(window, qtbot):
    before = window.viewport.frame
    row = window.panels["expression"].rows["expr:smile"]
    row.slider.setValue(row.to_slider(1.0))
    assert window.model.pose.expressions["smile"] == pytest.approx(1.0)
    assert row.spin.value() == pytest.approx(1.0)
    after = wait_current_frame(qtbot, window)
    diff = np.abs(after.image.astype(int) - before.image.astype(int)).max(axis=2)
    rows, cols = mouth_box(window, before)
    changed = diff > 8
    assert changed[rows, cols].sum() > 20, "the mouth changed"
    border = np.zeros_like(changed)
    border[:, :20] = border[:, -20:] = border[:20] = True
    # at most one 8-bit level: the depth sort is not stable, so equal-depth splats may blend in another order
    assert diff[border].max() <= 1, "the background did not change"
    assert changed[rows, cols].sum() > 0.5 * changed.sum(), "most changed pixels are around the mouth"


def test_orbit_drag_changes_view(window, qtbot):
    vp, before = window.viewport, window.viewport.frame
    yaw0 = window.model.camera.yaw
    start = QPoint(vp.width() // 2, vp.height() // 2)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    for step in range(1, 6):
        qtbot.mouseMove(vp, start + QPoint(12 * step, 3 * step))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=start + QPoint(60, 15))
    cam = window.model.camera
    assert cam.yaw == pytest.approx(yaw0 - 60 * 0.4) and cam.pitch == pytest.approx(15 * 0.4)
    after = wait_current_frame(qtbot, window)
    assert np.abs(after.image.astype(int) - before.image.astype(int)).max(axis=2).mean() > 2
    wheel = QWheelEvent(QPointF(start), QPointF(vp.mapToGlobal(start)), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(vp, wheel)
    assert window.model.camera.distance == pytest.approx(cam.distance * 0.81)
    qtbot.mouseDClick(vp, Qt.MouseButton.LeftButton, pos=start)
    assert window.model.camera.yaw == 0.0 and window.model.camera.distance == pytest.approx(cam.distance)


def test_bad_avatar_file_shows_error_and_keeps_avatar(window, qtbot, monkeypatch, tmp_path):
    bad = tmp_path / "broken" / "point_cloud.ply"
    bad.parent.mkdir()
    bad.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 2\nend_header\ngarbage\n")
    errors: list[tuple[str, str]] = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(bad), "")))
    monkeypatch.setattr(QMessageBox, "critical", staticmethod(lambda parent, title, text, *a: errors.append((title, text))))
    old = window.model.avatar
    window.choose_avatar()
    qtbot.waitUntil(lambda: len(errors) > 0, timeout=30_000)
    assert errors[0][0] == "Could not open avatar" and "point_cloud.ply" in errors[0][1]
    assert window.model.avatar is old
    assert window.recent_files() == []


def test_open_sequence_and_timeline_plays(window, qtbot, monkeypatch, tmp_path):
    from engine.avatar.flame_npz import save_flame_params

    m = window.model
    seq = m.avatar.head.neutral_params(frames=8)
    jaw = seq.jaw_pose.clone()
    jaw[:, 0] = torch.linspace(0, 0.4, 8)
    path = tmp_path / "seq.npz"
    save_flame_params(seq.with_values(jaw_pose=jaw), path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
    with qtbot.waitSignal(m.sequenceChanged, timeout=20_000):
        window.choose_sequence()
    assert m.frame_count == 8 and m.sequence_name == "seq.npz"
    assert window.recent_files()[0].startswith("sequence:")
    first = wait_current_frame(qtbot, window)
    timeline = window.panels["timeline"]
    seen: list[int] = []
    m.frameChanged.connect(seen.append)
    m.set_loop(False)
    timeline.play.click()
    assert m.playing
    qtbot.waitUntil(lambda: not m.playing, timeout=20_000)
    assert seen == list(range(1, 8)), "played every frame in order, stopped at the end"
    assert timeline.slider.value() == 7 and timeline.cursor.value() == 7
    last = wait_current_frame(qtbot, window)
    rows, cols = mouth_box(window, first)
    assert np.abs(last.image[rows, cols].astype(int) - first.image[rows, cols].astype(int)).max() > 30, "jaw opened"
    timeline.slider.setValue(3)  # scrub
    assert m.frame == 3


def test_record_take_saves_sequence(window, qtbot, monkeypatch, tmp_path):
    m = window.model
    out = tmp_path / "take.npz"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    timeline = window.panels["timeline"]
    timeline.timer.stop()
    timeline.record.click()
    assert m.recording
    timeline.timer.stop()  # drive the clock by hand for exact frames
    for value in (0.0, 0.5, 1.0):
        m.set_expression("smile", value)
        timeline.tick()
    timeline.record.click()
    assert not m.recording and m.frame_count == 3 and m.pose.expressions == {}
    take = load_flame_params(out)
    smile = m.avatar.head.expression_index("smile")
    assert take.expr[:, smile].tolist() == pytest.approx([0.0, 0.5, 1.0])


def test_slider_drag_is_one_undo_item_and_presets_round_trip(window, qtbot, monkeypatch):
    m = window.model
    panel = window.panels["expression"]
    row = panel.rows["jaw"]
    handle = row.slider
    qtbot.mousePress(handle, Qt.MouseButton.LeftButton, pos=QPoint(handle.width() // 8, handle.height() // 2))
    for x in (handle.width() // 3, handle.width() // 2, handle.width() * 2 // 3):
        qtbot.mouseMove(handle, QPoint(x, handle.height() // 2))
    qtbot.mouseRelease(handle, Qt.MouseButton.LeftButton, pos=QPoint(handle.width() * 2 // 3, handle.height() // 2))
    assert m.pose.jaw > math.radians(5)
    assert m.undo_stack.count() == 1
    m.undo_stack.undo()
    assert m.pose.jaw == 0.0 and row.spin.value() == 0.0
    m.set_pose_values(jaw=0.2)
    m.set_expression("brow_raise", 0.7)
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("mine", True)))
    panel.presets.save_current()
    assert Path(panel.presets.path).is_file()
    m.set_pose(type(m.pose)())
    combo = panel.presets.combo
    index = combo.findText("mine")
    assert index > 0
    combo.activated.emit(index)
    assert m.pose.jaw == pytest.approx(0.2) and m.pose.expressions == {"brow_raise": 0.7}
    assert panel.rows["expr:brow_raise"].spin.value() == pytest.approx(0.7)
