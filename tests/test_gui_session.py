"""SessionModel (signals, undo, camera maths, recording), presets files and the generic worker."""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pytest
import torch

from app.session import SessionModel
from app.workers import Job, WorkCancelled, start_worker
from engine.avatar.demo import load_demo_avatar
from engine.avatar.posing import Pose
from engine.io.atomic import FileFormatError
from engine.view import CameraState, posed_params
from widgets.presets import available_presets, load_presets, save_presets


@pytest.fixture
def model(qtbot):
    m = SessionModel()
    m.set_avatar(load_demo_avatar())
    return m


def test_setters_emit_and_merge_into_one_undo_item(model, qtbot):
    with qtbot.waitSignals([model.poseChanged, model.changed], timeout=1000):
        model.set_expression("smile", 0.2, merge="smile:1")
    for v in (0.4, 0.6, 0.8):
        model.set_expression("smile", v, merge="smile:1")
    model.set_pose_values(jaw=0.1)
    assert model.undo_stack.count() == 2
    model.undo_stack.undo()
    assert model.pose.jaw == 0.0 and model.pose.expressions == {"smile": 0.8}
    model.undo_stack.undo()
    assert model.pose == Pose()
    with pytest.raises(ValueError, match="unknown expression 'grin'"):
        model.set_expression("grin", 1.0)


def test_camera_state_orbit_pan_zoom():
    cam = CameraState(distance=0.5, target=(0.0, 0.0, 0.0))
    assert cam.orbited(10, 200).pitch == 89.0 and cam.orbited(190, 0).yaw == pytest.approx(-170)
    assert cam.zoomed(0.5).distance == pytest.approx(0.25) and cam.zoomed(1e-9).distance == 0.05
    panned = cam.panned(100, 0, 500)  # drag right: the scene follows, so the target moves to world -x
    metres = 2 * 0.5 * math.tan(math.radians(cam.fov) / 2) / 500 * 100
    assert panned.target == pytest.approx((-metres, 0.0, 0.0), abs=1e-9)
    before = cam.camera(64, 64)
    target_px = (before.world_to_cam @ torch.tensor([0.0, 0, 0, 1]))[:3]
    after = panned.camera(64, 64)
    moved = after.world_to_cam @ torch.tensor([0.0, 0, 0, 1])
    assert moved[0] / moved[2] * after.fx > target_px[0] / target_px[2] * before.fx, "the origin moved right"


def test_posed_params_sequence_pose_and_layers(model):
    from engine.edit.layers import EditLayer

    avatar = model.avatar
    seq = avatar.head.neutral_params(frames=3)
    jaw = seq.jaw_pose.clone()
    jaw[:, 0] = torch.tensor([0.0, 0.1, 0.2])
    model.set_sequence(seq.with_values(jaw_pose=jaw), "test")
    model.set_frame(5)
    assert model.frame == 2
    model.set_pose_values(jaw=0.05)
    smile = avatar.head.expression_index("smile")
    offset = torch.zeros(avatar.head.n_expr)
    offset[smile] = 0.3
    model.set_layers([EditLayer(name="smile more", kind="expression", expr_offset=offset)])
    params = model.current_params()
    assert params.frames == 1 and float(params.jaw_pose[0, 0]) == pytest.approx(0.25)
    assert float(params.expr[0, smile]) == pytest.approx(0.3)
    assert posed_params(avatar, model.sequence, Pose(), 0).jaw_pose.abs().max() == 0


def test_recording_makes_the_take_the_sequence(model):
    model.start_recording()
    for value in (0.0, 0.25, 0.5, 0.75):
        model.set_expression("frown", value)
        model.record_sample()
    take = model.stop_recording()
    frown = model.avatar.head.expression_index("frown")
    assert take.frames == 4 and take.expr[:, frown].tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert model.sequence.frames == 4 and model.pose == Pose() and not model.recording


def test_overlay_is_validated(model):
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        model.set_overlay(np.zeros((5, 3)))
    model.set_overlay(np.ones((model.avatar.gaussians.count, 3)), opacity=2.0)
    assert model.overlay_opacity == 1.0 and model.overlay_colors.dtype == np.float32


def test_presets_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "presets.json"
    assert load_presets(path) == {}
    presets = {"grin": Pose(expressions={"smile": 0.9}, jaw=0.1, yaw=5.0)}
    save_presets(path, presets)
    assert load_presets(path) == presets
    data = json.loads(path.read_text())
    data["presets"]["grin"]["yaw"] = "left"
    path.write_text(json.dumps(data))
    with pytest.raises(FileFormatError, match="yaw must be a finite number"):
        load_presets(path)
    path.write_text("{not json")
    with pytest.raises(FileFormatError, match="not a readable JSON"):
        load_presets(path)
    named = available_presets({}, ("smile", "squint"), False)
    assert "Happy" in named and "Sad" not in named
    assert set(available_presets({}, (), True)) == {"Neutral", "Look left"}


def test_worker_reports_progress_preview_result_error_and_cancel(qtbot):
    def job(progress, cancel, n, preview=None):
        for i in range(n):
            progress(i / n, f"step {i}")
            preview(i)
        return n * 10

    steps, previews = [], []
    worker = start_worker(job, 3)
    worker.progress.connect(lambda f, text: steps.append(text))
    worker.preview.connect(previews.append)
    with qtbot.waitSignal(worker.finished, timeout=10_000) as blocker:
        pass
    assert blocker.args == [30] and worker.result == 30
    qtbot.waitUntil(lambda: len(previews) == 3, timeout=5000)
    assert steps == ["step 0", "step 1", "step 2"]

    def broken(progress, cancel):
        raise ValueError("bad.npz: expr must be [T, E]")

    worker = start_worker(broken)
    with qtbot.waitSignal(worker.errored, timeout=10_000) as blocker:
        pass
    assert blocker.args == ["bad.npz: expr must be [T, E]"]

    def endless(progress, cancel):
        while not cancel():
            progress(0.5, "waiting")
        raise WorkCancelled()

    worker = start_worker(endless)
    with qtbot.waitSignal(worker.started, timeout=10_000):
        pass
    with qtbot.waitSignal(worker.cancelled, timeout=10_000):
        worker.cancel()
    assert worker.wait(10_000)


def test_job_runs_one_at_a_time_and_is_idle_when_its_callbacks_run(qtbot):
    """Job: busy from start to the end signal, a second start refused, cancel reaches the worker."""
    gate = threading.Event()

    def wait_for_gate(progress, cancel):
        while not gate.is_set():
            if cancel():
                raise WorkCancelled()
            time.sleep(0.01)
        progress(1.0, "done")
        return "result"

    job = Job("test job")
    busy_changes: list[bool] = []
    job.busyChanged.connect(busy_changes.append)
    seen: list[tuple[str, bool]] = []
    worker = job.start(wait_for_gate, on_progress=lambda f, text: seen.append((text, job.busy)),
                       on_finished=lambda result: seen.append((result, job.busy)),
                       on_done=lambda: seen.append(("done", job.busy)))
    assert worker is not None and job.busy and job.worker is worker
    assert job.start(wait_for_gate) is None, "an exclusive job refuses a second run while one goes"
    gate.set()
    qtbot.waitUntil(lambda: ("done", False) in seen, timeout=10_000)
    assert seen == [("done", True), ("result", False), ("done", False)]
    assert busy_changes == [True, False] and job.worker is None
    gate.clear()
    cancelled: list[bool] = []
    job.start(wait_for_gate, on_cancelled=lambda: cancelled.append(job.busy))
    job.cancel()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=10_000)
    assert cancelled == [False] and job.wait(10_000)
