"""The Train panel and its controller, headless: start from the button, live curves and preview, pause,
resume, cancel (a loadable checkpoint and avatar), continue from the checkpoint (the curve goes on),
the finished avatar in the session, bad datasets as dialogs, the synthetic-dataset button, the dock."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.session import SessionModel
from app.train_controller import PauseGate, TrainController, TrainOutcome, install_train_panel, speed
from engine.avatar.files import load_avatar
from engine.data.synth import SynthConfig, generate
from engine.data.vhap_format import read_dataset
from engine.train.checkpoint import load_checkpoint
from engine.train.config import TrainConfig
from engine.train.run import train
from widgets.train_panel import TrainPanel, TrainSettings

RESOLUTION = 48
CONFIG = replace(TrainConfig(), resolution=RESOLUTION, preview_interval=2, eval_interval=4, eval_max_frames=1,
                 checkpoint_interval=0)
ENDLESS = 1_000_000  # iterations asked of the run the test cancels: the cancel always lands before its end
LONG = 300_000  # ms: the machine is shared, steps can be slow


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train_gui") / "synthetic"
    return generate(out, SynthConfig(size=48, train_frames=3, test_frames=1, train_cameras=3, heldout_cameras=1))


@pytest.fixture
def dialogs(monkeypatch) -> list[tuple[str, str]]:
    """Error dialogs shown (title, text), instead of modal boxes."""
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "critical", staticmethod(lambda parent, title, text, *a, **k: shown.append((title, text))))
    return shown


@pytest.fixture
def rig(qtbot, dialogs):
    model = SessionModel()
    panel = TrainPanel()
    qtbot.addWidget(panel)
    panel.resize(520, 900)
    panel.show()
    controller = TrainController(panel, model, base_config=CONFIG)
    yield panel, controller, model
    controller.shutdown()


def fill(panel: TrainPanel, dataset: Path, out: Path, iters: int) -> None:
    panel.dataset.setText(str(dataset))
    panel.out.setText(str(out))
    panel.iters.setValue(iters)
    panel.resolution.setValue(RESOLUTION)


def click(qtbot, button) -> None:
    assert button.isEnabled(), f"{button.text()} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def loss_xy(panel: TrainPanel) -> tuple[np.ndarray, np.ndarray]:
    panel.flush_plot()
    x, y = panel.loss_curve.getData()
    return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_pause_resume_cancel_then_continue_the_curve_and_open_the_avatar(qtbot, rig, dialogs, dataset, tmp_path):
    panel, controller, model = rig
    out = tmp_path / "run"
    ended: list[TrainOutcome] = []
    controller.run_finished.connect(ended.append)
    fill(panel, dataset, out, iters=ENDLESS)
    click(qtbot, panel.start_button)
    assert panel.state == "running" and not panel.start_button.isEnabled() and not panel.settings_box.isEnabled()
    qtbot.waitUntil(lambda: len(loss_xy(panel)[0]) >= 3 and panel.preview_image.image is not None, timeout=LONG)
    assert panel.preview_image.image.shape == (RESOLUTION, RESOLUTION, 3)
    assert panel.progress.value() >= 3 and "it/s" in panel.progress.format()

    click(qtbot, panel.pause_button)
    qtbot.waitUntil(lambda: panel.state == "paused", timeout=LONG)  # the job itself says it waits at the gate
    held, points = panel.progress.value(), len(loss_xy(panel)[0])
    qtbot.wait(500)  # 5 polls of the paused gate: a correct gate never steps here, so this cannot fail spuriously
    assert panel.progress.value() == held and len(loss_xy(panel)[0]) == points, "training went on while paused"
    assert panel.resume_button.isEnabled() and not panel.pause_button.isEnabled()

    click(qtbot, panel.resume_button)
    qtbot.waitUntil(lambda: panel.progress.value() > held, timeout=LONG)
    click(qtbot, panel.cancel_button)
    assert panel.state == "stopping" and not panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: len(ended) == 1, timeout=LONG)
    first = ended[0]
    assert first.result.cancelled and held < first.result.iterations < ENDLESS
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["iteration"] == first.result.iterations
    saved = load_avatar(out / "avatar")
    assert saved.gaussians.count == state["params"]["xyz"].shape[0] == first.avatar.gaussians.count
    assert panel.state == "idle" and panel.start_button.isEnabled() and panel.open_button.isEnabled()
    assert panel.resume.isChecked(), "after a cancel, Start should offer to continue"
    assert model.avatar is None, "a cancelled run is offered, not opened"
    x_before, y_before = loss_xy(panel)
    assert x_before[-1] == state["iteration"]

    total = first.result.iterations + 4
    panel.iters.setValue(total)
    click(qtbot, panel.start_button)  # continues from the checkpoint to `total`
    qtbot.waitUntil(lambda: len(loss_xy(panel)[0]) >= len(x_before) + 2, timeout=LONG)
    x, y = loss_xy(panel)
    np.testing.assert_array_equal(x[: len(x_before)], x_before)
    np.testing.assert_allclose(y[: len(y_before)], y_before)
    assert x[len(x_before)] == state["iteration"] + 1, "the resumed curve restarted instead of going on"
    qtbot.waitUntil(lambda: len(ended) == 2, timeout=LONG)
    second = ended[1]
    assert not second.result.cancelled and second.result.iterations == total
    x, _ = loss_xy(panel)
    np.testing.assert_array_equal(x, np.arange(1, total + 1))
    assert model.avatar is second.avatar and model.avatar_path == str(out / "avatar")
    assert model.avatar.gaussians.count == load_avatar(out / "avatar").gaussians.count
    assert panel.state == "idle" and panel.start_button.isEnabled() and not dialogs


def test_a_fresh_panel_resuming_a_checkpoint_shows_its_curve_and_continues(qtbot, rig, dialogs, dataset, tmp_path):
    panel, controller, model = rig
    out = tmp_path / "run"
    steps = iter(range(10**6))
    train(dataset, out, replace(CONFIG, iters=20), cancel=lambda: next(steps) >= 5)  # stops after 5 steps
    history = load_checkpoint(out / "checkpoint.pt")["history"]
    assert [r["iteration"] for r in history] == [1, 2, 3, 4, 5]
    fill(panel, dataset, out, iters=8)
    panel.resume.setChecked(True)
    with qtbot.waitSignal(controller.run_finished, timeout=LONG) as ended:
        click(qtbot, panel.start_button)
    assert ended.args[0].result.iterations == 8 and not ended.args[0].result.cancelled
    x, y = loss_xy(panel)
    np.testing.assert_array_equal(x, np.arange(1, 9))
    np.testing.assert_allclose(y[:5], [r["loss"] for r in history])
    assert model.avatar is not None and model.avatar_path == str(out / "avatar")
    assert not dialogs


@pytest.mark.slow
def test_two_processes_show_their_progress_merged_and_cancel_saves_a_checkpoint(qtbot, rig, dialogs, dataset, tmp_path):
    """Processes 2: torchrun in child processes; the curve and preview come from rank 0, each rank's progress
    is listed, Pause is off, and Cancel stops both ranks at the same step with a checkpoint and the avatar."""
    panel, controller, _ = rig
    out = tmp_path / "two"
    fill(panel, dataset, out, iters=ENDLESS)
    panel.processes.setValue(2)
    click(qtbot, panel.start_button)
    assert panel.state == "running" and not panel.pause_button.isEnabled()
    qtbot.waitUntil(lambda: "rank 0: it" in panel.ranks_label.text() and "rank 1: it" in panel.ranks_label.text()
                    and panel.preview_image.image is not None, timeout=LONG)
    assert panel.ranks_label.isVisible() and "1 frame(s)" in panel.ranks_label.text()
    assert len(loss_xy(panel)[0]) >= 2 and panel.preview_image.image.shape == (RESOLUTION, RESOLUTION, 3)
    with qtbot.waitSignal(controller.run_finished, timeout=LONG) as ended:
        click(qtbot, panel.cancel_button)
    outcome = ended.args[0]
    assert outcome.result.cancelled and 2 <= outcome.result.iterations < ENDLESS and outcome.result.ranks.world == 2
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["iteration"] == outcome.result.iterations and state["config"]["frames_per_step"] == 2
    assert outcome.avatar is not None and outcome.avatar.gaussians.count == state["params"]["xyz"].shape[0]
    x, _ = loss_xy(panel)
    np.testing.assert_array_equal(x, np.arange(1, outcome.result.iterations + 1))
    assert "rank 0: done" in panel.ranks_label.text() and "rank 1: done" in panel.ranks_label.text()
    assert panel.state == "idle" and panel.resume.isChecked() and not dialogs


def test_a_bad_dataset_shows_a_dialog_and_start_comes_back(qtbot, rig, dialogs, tmp_path):
    panel, controller, _ = rig
    junk = tmp_path / "not_a_dataset"
    junk.mkdir()
    (junk / "notes.txt").write_text("no transforms here")
    fill(panel, junk, tmp_path / "out", iters=5)
    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: bool(dialogs), timeout=LONG)
    title, text = dialogs[0]
    assert title == "Training failed" and "transforms_train.json" in text
    assert panel.state == "idle" and panel.start_button.isEnabled() and panel.settings_box.isEnabled()
    assert not panel.pause_button.isEnabled() and not panel.cancel_button.isEnabled() and not controller.busy
    panel.dataset.setText(str(tmp_path / "missing"))  # caught before any worker starts
    click(qtbot, panel.start_button)
    assert len(dialogs) == 2 and "does not exist" in dialogs[1][1] and panel.start_button.isEnabled()


def test_make_synthetic_fills_the_dataset_field(qtbot, rig, monkeypatch, dialogs, tmp_path):
    panel, controller, _ = rig
    controller.synth_config = SynthConfig(size=32, train_frames=2, test_frames=1, train_cameras=2, heldout_cameras=1)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path)))
    (tmp_path / "synthetic_head").mkdir()  # taken: the panel picks another name, never overwrites
    click(qtbot, panel.synth_button)
    assert panel.state == "making_data" and panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: panel.state == "idle", timeout=LONG)
    assert not dialogs
    assert panel.dataset.text() == str(tmp_path / "synthetic_head_2")
    assert panel.out.text() == str(tmp_path / "synthetic_head_2_train")
    data = read_dataset(panel.dataset.text())
    assert len(data.frames("train")) == 4 and len(data.frames("val")) == 2


def test_start_emits_the_settings_shown(qtbot):
    panel = TrainPanel(devices=["cpu", "cuda"])
    qtbot.addWidget(panel)
    got: list[TrainSettings] = []
    panel.start_requested.connect(got.append)
    panel.set_dataset("/data/alice")
    assert panel.out.text() == "/data/alice_train"
    panel.iters.setValue(1234)
    panel.device.setCurrentIndex(1)
    panel.finetune.setChecked(True)
    assert panel.fit_labels.isChecked()
    panel.fit_labels.setChecked(False)
    click(qtbot, panel.start_button)
    assert got == [TrainSettings("/data/alice", "/data/alice_train", 1234, 256, True, False, "cuda", False, True)]
    panel.set_state("paused")
    assert panel.resume_button.isEnabled() and panel.cancel_button.isEnabled() and not panel.start_button.isEnabled()


def test_the_label_maps_checkbox_sets_the_label_loss(rig):
    panel, controller, _ = rig
    assert controller.config_for(panel.settings()).lambda_label == CONFIG.lambda_label > 0
    panel.fit_labels.setChecked(False)
    assert controller.config_for(panel.settings()).lambda_label == 0.0


def test_pause_gate_blocks_between_steps_and_cancel_wakes_it():
    """Event-driven: each step, each wait and each going-on signals an Event; only the checks that nothing
    happens while paused use a window (they cannot fail spuriously: a correct gate never steps there)."""
    gate = PauseGate()
    steps, results, waits = [0], [], []
    stepped, waiting, went_on = threading.Event(), threading.Event(), threading.Event()

    def on_wait(now: bool) -> None:
        waits.append(now)
        (waiting if now else went_on).set()

    def job() -> None:
        while not gate.check(on_wait=on_wait):
            steps[0] += 1
            stepped.set()
            time.sleep(0.001)  # politeness only: the test waits on events, not on this
        results.append(steps[0])

    thread = threading.Thread(target=job)
    thread.start()
    assert stepped.wait(10)
    gate.pause()
    assert waiting.wait(10) and gate.paused and waits == [True]
    held = steps[0]
    assert not went_on.wait(0.3), "the job went on while paused"
    assert steps[0] == held
    stepped.clear()
    gate.resume()
    assert went_on.wait(10) and stepped.wait(10)
    assert steps[0] > held and waits == [True, False]
    waiting.clear()
    gate.pause()
    assert waiting.wait(10)
    gate.cancel()  # wakes the paused job, which stops without another step
    thread.join(10)
    assert not thread.is_alive() and results == [steps[0]] and gate.cancelled
    assert gate.paused_seconds >= 0.3
    assert speed(10, 4.0, 30) == (2.5, 12.0) and speed(0, 1.0, 5) == (0.0, None)


def test_install_train_panel_adds_a_dock_to_the_main_window(qtbot, tmp_path):
    from app.main_window import MainWindow
    from app.render_thread import RenderController

    model = SessionModel()
    render = RenderController(model, backend="cpu")
    window = MainWindow(model, render, settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                        data_dir=tmp_path / "data")
    qtbot.addWidget(window)
    try:
        controller = install_train_panel(window, model)
        dock = window.docks["train"]
        assert window.panels["train"] is controller.panel and controller.model is model
        assert controller.dialog_parent is window
        assert window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea  # the task column (app/layout.py)
        assert dock.toggleViewAction() in window.panels_menu.actions()
    finally:
        render.shutdown()
