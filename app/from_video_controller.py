"""File → New avatar from video…: runs the wizard's requests on worker threads and opens the avatar when done.

Probing the input, decoding a frame to scrub to and finding landmarks on sample frames each run in a
worker; a scrub that arrives while a frame is being decoded waits, and only the newest waits. The run
is engine.track.from_video.from_video in one worker, its cancel callback a PauseGate (pause blocks
between frames, tracking iterations and training steps). Cancelling while ingesting leaves no
dataset; cancelling while training saves a checkpoint, and Resume keeps the dataset and continues.

    controller = install_from_video(window)   # adds the File-menu entry
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox

from app.train_controller import PauseGate
from app.workers import WorkCancelled, Worker, start_worker, user_message
from engine.avatar.files import load_avatar
from engine.track.config import TrackConfig
from engine.track.from_video import MONOCULAR, FromVideoResult, from_video
from engine.track.ingest import IngestConfig
from engine.track.sources import FrameSelection, IngestCancelled, probe, read_frame
from engine.train.config import TrainConfig
from engine.train.run import AVATAR_DIR
from widgets.video_wizard import FromVideoSettings, VideoWizard

if TYPE_CHECKING:
    from app.main_window import MainWindow

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]


@dataclass(frozen=True)
class FromVideoOutcome:
    """How a run ended, with the avatar it made (None when it could not be loaded or training was cancelled
    before saving one)."""

    result: FromVideoResult
    avatar: Any  # engine.avatar.avatar.Avatar | None
    error: str | None  # why the avatar could not be loaded


def probe_job(progress: Progress, cancel: Cancel, path: str) -> Any:
    return probe(path)


def frame_job(progress: Progress, cancel: Cancel, path: str, time: float) -> tuple[float, Any]:
    frame = read_frame(path, time)
    return time, frame.image


def landmarks_job(progress: Progress, cancel: Cancel, path: str, selection: FrameSelection) -> list:
    from engine.track.clip import sample_landmarks
    from engine.track.landmarks import default_landmarker

    landmarker = default_landmarker()
    try:
        return sample_landmarks(path, selection, landmarker)
    finally:
        landmarker.close()


def run_job(progress: Progress, cancel: Cancel, settings: FromVideoSettings, ingest_config: IngestConfig,
            train_config: TrainConfig, resume: bool, gate: PauseGate) -> FromVideoOutcome:
    """Worker job: from_video, then the avatar it wrote loaded for the viewport."""
    try:
        result = from_video(settings.source, settings.out, ingest_config, train_config, resume=resume,
                            progress=progress, cancel=lambda: gate.check(cancel))
    except IngestCancelled as exc:
        raise WorkCancelled(str(exc)) from None
    try:
        return FromVideoOutcome(result, load_avatar(Path(settings.out) / AVATAR_DIR), None)
    except (ValueError, OSError) as exc:
        return FromVideoOutcome(result, None, user_message(exc))


class FromVideoController(QObject):
    """Connects a VideoWizard to the workers and the session (the made avatar goes to the viewport)."""

    run_finished = Signal(object)  # FromVideoOutcome of a run that ended (completed or cancelled in training)
    failed = Signal(str)  # message of a job that failed

    def __init__(self, window: MainWindow, track_config: TrackConfig = TrackConfig(),
                 train_config: TrainConfig = MONOCULAR, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.track_config = track_config  # how tracking runs (the wizard does not show these)
        self.train_config = train_config  # training settings besides iterations and resolution
        self.wizard: VideoWizard | None = None
        self.worker: Worker | None = None  # the run
        self.gate: PauseGate | None = None
        self._frame_worker: Worker | None = None
        self._pending_frame: float | None = None
        self.outcome: FromVideoOutcome | None = None

    def open_wizard(self) -> VideoWizard:
        """Show the wizard (a new one unless one is open)."""
        if self.wizard is None:
            wizard = VideoWizard(self.window)
            wizard.probe_requested.connect(self._probe)
            wizard.frame_requested.connect(self._frame)
            wizard.landmarks_requested.connect(self._landmarks)
            wizard.start_requested.connect(self.start)
            wizard.pause_requested.connect(self.pause)
            wizard.resume_requested.connect(self.resume)
            wizard.cancel_requested.connect(self.cancel)
            wizard.finished.connect(self._on_wizard_closed)
            self.wizard = wizard
        self.wizard.show()
        self.wizard.raise_()
        return self.wizard

    def _on_wizard_closed(self) -> None:
        if self.worker is None:
            self.wizard = None

    # ---- before the run ------------------------------------------------------------------------
    def _probe(self, path: str) -> None:
        worker = start_worker(probe_job, path, name="probe video")
        wizard = self.wizard
        worker.finished.connect(lambda info: wizard.set_source(info.frames, info.fps, info.width, info.height,
                                                               info.kind))
        worker.errored.connect(wizard.set_source_error)

    def _frame(self, time: float) -> None:
        if self._frame_worker is not None:
            self._pending_frame = time  # only the newest request waits
            return
        wizard = self.wizard
        worker = self._frame_worker = start_worker(frame_job, wizard.source_edit.text(), time, name="scrub")
        worker.finished.connect(lambda result: wizard.show_frame(*result))
        worker.errored.connect(lambda message: wizard.frame_view.setText(message))
        worker.done.connect(self._frame_done)

    def _frame_done(self) -> None:
        self._frame_worker = None
        if self._pending_frame is not None and self.wizard is not None:
            time, self._pending_frame = self._pending_frame, None
            self._frame(time)

    def _landmarks(self, settings: FromVideoSettings) -> Worker:
        wizard = self.wizard
        wizard.find_button.setEnabled(False)
        wizard.samples_status.setText("Finding landmarks…")
        worker = start_worker(landmarks_job, settings.source, FrameSelection(settings.start, settings.end),
                              name="sample landmarks")
        worker.finished.connect(wizard.show_landmarks)
        worker.errored.connect(lambda message: wizard.samples_status.setText(f"Could not find landmarks: {message}"))
        worker.done.connect(lambda: wizard.find_button.setEnabled(True))
        return worker

    # ---- the run ---------------------------------------------------------------------------------
    def configs(self, settings: FromVideoSettings) -> tuple[IngestConfig, TrainConfig]:
        selection = FrameSelection(settings.start, settings.end, settings.stride)
        ingest = IngestConfig(selection, settings.size, "auto", settings.holdout, True, self.track_config)
        return ingest, replace(self.train_config, iters=settings.iters, resolution=settings.resolution)

    def start(self, settings: FromVideoSettings, resume: bool = False) -> Worker | None:
        """Run (or resume) decode → landmarks → tracking → training."""
        wizard = self.wizard
        if self.worker is not None or wizard is None:
            return None
        if not settings.out:
            wizard.set_status("Choose a run folder on the first page.")
            return None
        ingest, train = self.configs(settings)
        self.gate = PauseGate()
        wizard.set_run_state("running")
        wizard.set_progress(0.0, "Resuming…" if resume else "Starting…")
        worker = start_worker(run_job, settings, ingest, train, resume, self.gate, name="avatar from video")
        worker.progress.connect(wizard.set_progress)
        worker.finished.connect(self._on_finished)
        worker.errored.connect(self._on_failed)
        worker.cancelled.connect(lambda: self._end("stopped", "Stopped while making the dataset (nothing kept). "
                                                              "Start begins again."))
        self.worker = worker
        return worker

    def pause(self) -> None:
        if self.gate is not None and self.wizard is not None and self.wizard.run_state == "running":
            self.gate.pause()
            self.wizard.set_run_state("paused")

    def resume(self) -> None:
        if self.gate is not None and self.wizard is not None and self.wizard.run_state in ("pausing", "paused"):
            self.gate.resume()
            self.wizard.set_run_state("running")

    def cancel(self) -> None:
        if self.gate is not None and self.wizard is not None:
            self.gate.cancel()
            self.wizard.set_run_state("stopping")
            self.wizard.set_status("Stopping…")

    def _on_finished(self, outcome: FromVideoOutcome) -> None:
        self.outcome = outcome
        train = outcome.result.train
        avatar_dir = train.out / AVATAR_DIR
        if train.cancelled:
            self._end("stopped", f"Stopped at training iteration {train.iterations}. The dataset and a checkpoint "
                                 f"are in {train.out}; Resume continues.")
            self.run_finished.emit(outcome)
            return
        scores = ", ".join(f"{k} {m['psnr']:.1f} dB" for k, m in train.metrics.items() if m and "psnr" in m)
        if outcome.result.psnr_after_refine is not None:
            scores += f" ({outcome.result.psnr_after_refine:.1f} dB with the held-out poses refined)"
        summary = (f"{train.iterations} iterations{'; held-out PSNR ' + scores if scores else ''}. The avatar is in "
                   f"{avatar_dir}; the dataset stays in {outcome.result.dataset} for re-training.")
        if outcome.avatar is not None:
            self._end("done", f"Done — avatar opened: {outcome.avatar.name}.\n{summary}")
            self.window.model.set_avatar(outcome.avatar, str(avatar_dir))
        else:
            self._end("done", f"Done, but the avatar could not be opened: {outcome.error}\n{summary}")
            QMessageBox.critical(self.wizard or self.window, "Could not open the avatar", outcome.error or "")
        if self.wizard is not None:
            self.wizard.set_progress(1.0, "")
        self.run_finished.emit(outcome)

    def _on_failed(self, message: str) -> None:
        self._end("failed", f"Failed: {message}")
        self.failed.emit(message)
        QMessageBox.critical(self.wizard or self.window, "Could not make the avatar", message)

    def _end(self, state: str, status: str) -> None:
        self.worker, self.gate = None, None
        if self.wizard is not None:
            self.wizard.set_run_state(state)
            self.wizard.set_status(status)

    def shutdown(self, timeout_ms: int = 120_000) -> None:
        """Cancel a run (training saves its checkpoint) and wait for it."""
        if self.worker is not None and self.gate is not None:
            self.gate.cancel()
            self.worker.wait(timeout_ms)


def install_from_video(window: MainWindow, track_config: TrackConfig = TrackConfig(),
                       train_config: TrainConfig = MONOCULAR) -> FromVideoController:
    """Add File → New avatar from video… (after the other Open entries) and return its controller."""
    controller = FromVideoController(window, track_config, train_config, parent=window)
    action = QAction("New avatar from &video…", window)
    action.triggered.connect(controller.open_wizard)
    entries = window.file_menu.actions()
    after = next((i for i, a in enumerate(entries) if a.text().replace("&", "") == "Open demo avatar"), None)
    window.file_menu.insertAction(entries[after + 1] if after is not None and after + 1 < len(entries) else None,
                                  action)
    controller.action = action
    from PySide6.QtCore import QCoreApplication

    app = QCoreApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(controller.shutdown)
    return window.add_feature("from_video", controller)
