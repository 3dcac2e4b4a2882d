"""Runs training from the Train panel: engine.train.run.train on a worker thread, with pause, cancel,
resume from checkpoint, live curves and preview, and the trained avatar offered to the viewport.

Pause works between steps: `train()` polls its cancel callback before every step, and the callback we
give it (PauseGate.check) blocks while paused, returning False when resumed and True once cancelled.
Cancel makes train() save a checkpoint and the avatar so far; the run's outcome is then reported like a
finished one (TrainOutcome.result.cancelled is True).

With Processes above 1 the run is `dynamicavatars train` under torchrun in child processes
(multiprocess_train_job): their JSON progress lines are merged (rank 0's curve, every rank's speed),
Cancel sends SIGINT to rank 0 (all ranks stop at the same step and rank 0 saves), and Pause is off.

    controller = install_train_panel(window, model)   # adds the "Train" dock to a MainWindow
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image as PILImage
from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from app.session import SessionModel
from app.train_launch import LocalRun, RankBoard, torchrun_command, torchrun_env
from app.workers import Job, WorkCancelled, Worker, user_message
from engine.avatar.avatar import Avatar
from engine.avatar.files import load_avatar
from engine.data.synth import Cancelled as SynthCancelled
from engine.data.synth import SynthConfig, generate
from engine.io.images import to_uint8
from engine.render.rasterize import available_devices
from engine.train.checkpoint import load_checkpoint
from engine.train.config import TrainConfig, write_config
from engine.train.distributed import Ranks
from engine.train.run import AVATAR_DIR, CHECKPOINT_NAME, TrainReport, TrainResult, dataset_needs_flame, train
from widgets.train_panel import TrainPanel, TrainSettings

if TYPE_CHECKING:
    from app.main_window import MainWindow

GUI_CONFIG = replace(TrainConfig(), preview_interval=10)
"""Settings the panel does not show (a preview every 10 steps: it costs one render of a held-out view)."""


class PauseGate:
    """Pause and cancel for a job that polls a cancel callback between steps. Thread-safe, no Qt."""

    POLL_SECONDS = 0.1  # how often a paused job looks at the worker's own cancel flag

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._cancelled = threading.Event()
        self.paused_seconds = 0.0  # time the job spent waiting in check() (for speed and ETA)

    @property
    def paused(self) -> bool:  # asked to pause (the job stops at its next check)
        return not self._running.is_set() and not self._cancelled.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()  # wakes a paused job

    def check(self, external: Callable[[], bool] | None = None,
              on_wait: Callable[[bool], None] | None = None) -> bool:
        """The job's cancel callback: blocks while paused; True once cancelled (here or by `external`).
        on_wait(True) is called when the job starts waiting, on_wait(False) when it goes on."""
        def stop() -> bool:
            return self._cancelled.is_set() or (external is not None and external())

        if not self._running.is_set() and not stop():
            began = time.perf_counter()
            if on_wait is not None:
                on_wait(True)
            while not self._running.wait(self.POLL_SECONDS) and not stop():
                pass
            self.paused_seconds += time.perf_counter() - began
            if on_wait is not None:
                on_wait(False)
        return stop()


@dataclass(frozen=True)
class TrainUpdate:
    """One training step as the GUI shows it (made on the worker thread from a TrainReport)."""

    iteration: int  # iterations done after this step (counting resumed ones)
    total: int  # iterations of the whole run
    loss: float  # total loss of the step
    psnr: float  # PSNR of the step's training view, dB
    gaussians: int  # Gaussian count
    rate: float  # iterations per second of unpaused time in this run
    eta: float | None  # seconds left at that rate (None before it is known)
    evaluation: dict[str, float]  # split -> held-out PSNR (dB) when an evaluation ran this step
    preview: np.ndarray | None  # [H, W, 3] uint8 render of a held-out view, when made this step


@dataclass(frozen=True)
class TrainHistory:
    """The curves of the checkpoint a run resumes from (empty when there was none)."""

    steps: tuple[tuple[int, float, float], ...]  # (iteration, loss, training PSNR)
    evaluations: tuple[tuple[int, str, float], ...]  # (iteration, split, held-out PSNR)
    found: bool  # a checkpoint was there


@dataclass(frozen=True)
class PauseNotice:
    """The job started (paused=True) or stopped (False) waiting at the pause gate."""

    paused: bool
    iteration: int  # iterations done when it happened


@dataclass(frozen=True)
class RanksUpdate:
    """The merged progress of a run's processes, one line per rank."""

    text: str


@dataclass(frozen=True)
class TrainOutcome:
    """How a run ended, with the avatar it wrote."""

    settings: TrainSettings
    result: TrainResult
    avatar: Avatar | None  # out/avatar loaded, None when loading failed
    avatar_error: str | None  # why loading failed


def speed(done: int, active_seconds: float, remaining: int) -> tuple[float, float | None]:
    """(iterations per second, seconds left) from `done` iterations in `active_seconds`."""
    if done <= 0 or active_seconds <= 0:
        return 0.0, None
    rate = done / active_seconds
    return rate, remaining / rate


def history_from_state(state: dict[str, Any]) -> TrainHistory:
    """The loss / PSNR curves stored in a trainer state dict (Trainer.state_dict)."""
    steps = tuple((int(r["iteration"]), float(r["loss"]), float(r["psnr"])) for r in state.get("history", []))
    evals = []
    for row in state.get("evaluations", []):
        for key, value in row.items():
            if key.endswith("_psnr") and value is not None and math.isfinite(float(value)):
                evals.append((int(row["iteration"]), key[: -len("_psnr")], float(value)))
    return TrainHistory(steps, tuple(evals), True)


def train_job(progress: Callable[[float, str], None], cancel: Callable[[], bool], settings: TrainSettings,
              config: TrainConfig, gate: PauseGate, preview: Callable[[object], None],
              flame: str | None = None) -> TrainOutcome:
    """Worker job: train, then load the avatar written to out/avatar. Sends TrainHistory (when resuming),
    TrainUpdate per step and PauseNotice through preview(). A dataset tracked with FLAME trains on the
    user's FLAME model `flame` (without one, training refuses it and says what to do)."""
    out = Path(settings.out)
    _send_history(settings, preview)
    first: list[int] = []
    last = [0]

    def report(r: TrainReport) -> None:
        if not first:
            first.append(r.step.iteration - 1)
        last[0] = r.step.iteration
        rate, eta = speed(r.step.iteration - first[0], r.seconds - gate.paused_seconds, r.total - r.step.iteration)
        evaluation = {s: v["psnr"] for s, v in (r.evaluation or {}).items() if v and "psnr" in v}
        image = to_uint8(r.preview) if r.preview is not None else None
        preview(TrainUpdate(r.step.iteration, r.total, r.step.loss, r.step.psnr, r.step.gaussians, rate, eta,
                            evaluation, image))

    def should_stop() -> bool:
        return gate.check(cancel, lambda paused: preview(PauseNotice(paused, last[0])))

    _label_maps(settings, config, progress, cancel)
    head = flame if flame and dataset_needs_flame(settings.dataset) else None
    result = train(settings.dataset, out, config, head=head, resume=settings.resume, report=report,
                   cancel=should_stop)
    return TrainOutcome(settings, result, *_load_trained(out))


def _send_history(settings: TrainSettings, preview: Callable[[object], None]) -> None:
    """A resumed run first shows the curves of its checkpoint (TrainHistory)."""
    if settings.resume:
        checkpoint = Path(settings.out) / CHECKPOINT_NAME
        found = checkpoint.is_file()
        preview(history_from_state(load_checkpoint(checkpoint)) if found else TrainHistory((), (), False))


def _label_maps(settings: TrainSettings, config: TrainConfig, progress: Callable[[float, str], None],
                cancel: Callable[[], bool]) -> None:
    """With the label loss on, the face parser chosen in Edit → Models… labels frames that have no label map."""
    if config.lambda_label:
        from app.model_choices import current_settings, label_maps_if_needed

        note = label_maps_if_needed(settings.dataset, current_settings(), progress, cancel)
        if note:
            progress(0.0, note)


def _load_trained(out: Path) -> tuple[Avatar | None, str | None]:
    """(out/avatar loaded, None) or (None, why it could not be)."""
    try:
        return load_avatar(out / AVATAR_DIR), None
    except (ValueError, OSError) as exc:
        return None, user_message(exc)


def multiprocess_train_job(progress: Callable[[float, str], None], cancel: Callable[[], bool],
                           settings: TrainSettings, config: TrainConfig, gate: PauseGate,
                           preview: Callable[[object], None], flame: str | None = None) -> TrainOutcome:
    """Worker job: `dynamicavatars train` on settings.processes local processes under torchrun, sending
    TrainHistory (when resuming), TrainUpdate per step (rank 0's line) and RanksUpdate (every rank's
    progress, merged) through preview(). The config goes in out/train_config.json, the processes' stderr
    in out/train_log.txt. Cancel (gate or worker) interrupts rank 0: every rank stops at the same step."""
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    _send_history(settings, preview)
    _label_maps(settings, config, progress, cancel)  # here, once: the processes do not make them
    args = [settings.dataset, "--out", str(out), "--config", str(write_config(config, out / "train_config.json")),
            "--progress", "jsonl", "--no-parse-labels"]
    args += ["--resume"] if settings.resume else []
    if flame and dataset_needs_flame(settings.dataset):
        args += ["--flame", flame]
    run = LocalRun(torchrun_command(settings.processes, args), out / "train_log.txt", env=torchrun_env())
    board, first = RankBoard(), 0
    try:
        for line in run.lines(lambda: gate.cancelled or cancel(), lambda: run.interrupt(board.pids.get(0))):
            board.add(line)
            if line["event"] == "step" and line["rank"] == 0:
                first = first or line["iteration"] - 1
                preview(_update_from_line(line, first))
            preview(RanksUpdate(board.summary()))
    except BaseException:
        run.interrupt()  # never leave the processes running: they stop and save
        run.wait()
        raise
    code, result = run.wait(), board.result
    if result is None:
        raise RuntimeError(f"the training processes failed (exit code {code}); the end of {run.log}:\n{run.log_tail()}")
    avatar, error = _load_trained(out)
    trained = TrainResult(out, int(result["iterations"]), bool(result["cancelled"]), result["metrics"],
                          float(result["seconds"]), float(result["iters_per_second"]),
                          avatar.head if avatar is not None else None, Ranks(0, board.world, 0, board.world))
    return TrainOutcome(settings, trained, avatar, error)


def _update_from_line(line: dict[str, Any], first: int) -> TrainUpdate:
    """A TrainUpdate from rank 0's progress line (its preview read back from the PNG it names)."""
    iteration, total = int(line["iteration"]), int(line["total"])
    rate, eta = speed(iteration - first, float(line["seconds"]), total - iteration)
    evaluation = {s: v["psnr"] for s, v in (line.get("evaluation") or {}).items() if v and "psnr" in v}
    image = None
    if line.get("preview"):
        try:
            image = np.asarray(PILImage.open(line["preview"]).convert("RGB"))
        except OSError:
            image = None  # replaced while read: the next one comes
    return TrainUpdate(iteration, total, float(line["loss"]), float(line["psnr"]), int(line["gaussians"]), rate, eta,
                       evaluation, image)


def synth_job(progress: Callable[[float, str], None], cancel: Callable[[], bool], folder: str,
              config: SynthConfig) -> Path:
    """Worker job: a synthetic dataset of the demo head in `folder`."""
    try:
        return generate(folder, config, progress=progress, cancel=cancel)
    except SynthCancelled as exc:
        raise WorkCancelled(str(exc)) from None


class TrainController(QObject):
    """Connects a TrainPanel to training jobs and the session (the trained avatar goes to the viewport)."""

    run_finished = Signal(object)  # TrainOutcome of a run that ended (completed or cancelled)
    failed = Signal(str)  # message of a training or dataset job that failed (also shown in a dialog)

    def __init__(self, panel: TrainPanel, model: SessionModel, dialog_parent: QWidget | None = None,
                 base_config: TrainConfig = GUI_CONFIG, synth_config: SynthConfig | None = None,
                 parent: QObject | None = None, flame_model: Callable[[], str | None] = lambda: None) -> None:
        super().__init__(parent)
        self.panel, self.model = panel, model
        self.flame_model = flame_model  # the user's FLAME model file (the window remembers it), for FLAME datasets
        self.dialog_parent = dialog_parent if dialog_parent is not None else panel
        self.base_config = base_config  # everything the panel does not set
        self.synth_config = synth_config or SynthConfig()  # what "Make synthetic…" renders
        self.job = Job("train", self)  # a training run or a synthetic dataset being made: one at a time
        self.gate: PauseGate | None = None
        self.outcome: TrainOutcome | None = None  # of the last run that ended
        self._settings: TrainSettings | None = None
        panel.start_requested.connect(self.start)
        panel.pause_requested.connect(self.pause)
        panel.resume_requested.connect(self.resume)
        panel.cancel_requested.connect(self.cancel)
        panel.synth_requested.connect(self.make_synthetic)
        panel.open_avatar_requested.connect(self.open_avatar)

    @property
    def busy(self) -> bool:
        return self.job.busy

    def config_for(self, settings: TrainSettings) -> TrainConfig:
        return replace(self.base_config, iters=settings.iters, resolution=settings.resolution,
                       device=settings.device, finetune_flame=settings.finetune_flame,
                       lambda_label=self.base_config.lambda_label if settings.fit_labels else 0.0)

    # ---- training ------------------------------------------------------------------------------
    def start(self, settings: TrainSettings) -> Worker | None:
        """Start a run (nothing when one is running; a dialog when the folders are not set)."""
        if self.busy:
            return None
        if not settings.dataset or not settings.out:
            self._error("Cannot start training", "Choose a dataset folder and an output folder first.")
            return None
        if not Path(settings.dataset).is_dir():
            self._error("Cannot start training", f"{settings.dataset}: dataset folder does not exist")
            return None
        if not settings.resume:
            self.panel.clear_plot()
        self._settings, self.gate = settings, PauseGate()
        self.panel.pausable = settings.processes <= 1
        self.panel.set_ranks("")
        self.panel.set_state("running")
        self.panel.set_avatar_available(False)
        self.panel.set_progress(0, settings.iters, 0.0, None)
        self.panel.set_status(f"Loading {settings.dataset}…")
        job = train_job if settings.processes <= 1 else multiprocess_train_job
        return self.job.start(job, settings, self.config_for(settings), self.gate, flame=self.flame_model(),
                              on_preview=self._on_message, on_finished=self._on_finished,
                              on_errored=lambda message: self._on_failed("Training failed", message),
                              on_cancelled=lambda: self._end_job("Training stopped."))

    def pause(self) -> None:
        """Pause after the current step."""
        if self.gate is not None and self.panel.state == "running":
            self.gate.pause()
            self.panel.set_state("pausing")
            self.panel.set_status("Pausing after the current step…")

    def resume(self) -> None:
        if self.gate is not None and self.panel.state in ("pausing", "paused"):
            self.gate.resume()
            self.panel.set_state("running")
            self.panel.set_status("Resumed.")

    def cancel(self) -> None:
        """Stop the run (it saves a checkpoint and the avatar so far) or the dataset being made."""
        if not self.job.busy:
            return
        self.panel.set_state("stopping")
        if self.gate is not None:
            self.gate.cancel()
            self.panel.set_status("Cancelling: saving a checkpoint and the avatar so far…")
        else:
            self.job.cancel()
            self.panel.set_status("Cancelling…")

    def _on_message(self, message: object) -> None:
        if isinstance(message, TrainUpdate):
            self._show_update(message)
        elif isinstance(message, TrainHistory):
            self.panel.set_history(list(message.steps), list(message.evaluations))
            if not message.found and self._settings is not None:
                self.panel.set_status(f"No checkpoint in {self._settings.out}: training from the start.")
        elif isinstance(message, RanksUpdate):
            self.panel.set_ranks(message.text)
        elif isinstance(message, PauseNotice) and message.paused and self.gate is not None and self.gate.paused:
            self.panel.set_state("paused")
            self.panel.set_status(f"Paused at iteration {message.iteration}. Resume goes on; Cancel saves a checkpoint.")

    def _show_update(self, u: TrainUpdate) -> None:
        self.panel.add_step(u.iteration, u.loss, u.psnr)
        for split, psnr in u.evaluation.items():
            self.panel.add_evaluation(u.iteration, split, psnr)
        self.panel.set_progress(u.iteration, u.total, u.rate, u.eta)
        if u.preview is not None:
            self.panel.set_preview(u.preview, f"Held-out view at iteration {u.iteration}")
        if self.panel.state == "running":
            held = "".join(f" · {s} {p:.2f} dB" for s, p in u.evaluation.items())
            self.panel.set_status(f"Iteration {u.iteration}/{u.total} · loss {u.loss:.4f} · PSNR {u.psnr:.2f} dB · "
                                  f"{u.gaussians:,} Gaussians{held}")

    def _on_finished(self, outcome: TrainOutcome) -> None:
        self._end_job()
        self.outcome = outcome
        r, s = outcome.result, outcome.settings
        self.panel.set_avatar_available(outcome.avatar is not None)
        if r.cancelled:
            self.panel.set_resume(True)
            self.panel.set_status(f"Cancelled at iteration {r.iterations}/{s.iters}. The checkpoint and the avatar "
                                  f"so far are in {r.out}: Open in viewport shows it, Start continues from it.")
        else:
            scores = ", ".join(f"{k} {m['psnr']:.2f} dB" for k, m in r.metrics.items() if m and "psnr" in m)
            self.panel.set_status(f"Done: {r.iterations} iterations ({r.iters_per_second:.2f} it/s)"
                                  f"{'; held-out PSNR ' + scores if scores else ''}. Avatar in {r.out / AVATAR_DIR}.")
            if s.open_when_done and outcome.avatar is not None:
                self.open_avatar()
        self.run_finished.emit(outcome)
        if outcome.avatar_error:
            self._error("Could not open the trained avatar", outcome.avatar_error)

    def _on_failed(self, title: str, message: str) -> None:
        self._end_job()
        self.panel.set_status(f"{title}: {message}")
        self.failed.emit(message)
        self._error(title, message)

    def _end_job(self, status: str | None = None) -> None:
        self.gate = None
        self.panel.set_state("idle")
        if status is not None:
            self.panel.set_status(status)

    def open_avatar(self) -> None:
        """Show the last run's avatar in the viewport."""
        if self.outcome is not None and self.outcome.avatar is not None:
            path = self.outcome.result.out / AVATAR_DIR
            self.model.set_avatar(self.outcome.avatar, str(path))

    # ---- synthetic dataset -----------------------------------------------------------------------
    def make_synthetic(self, folder: str) -> Worker | None:
        """Render a synthetic dataset of the demo head into `folder`; it becomes the panel's dataset."""
        if self.busy:
            return None
        self.panel.set_state("making_data")
        self.panel.set_busy_progress(0.0, "")
        self.panel.set_status(f"Making a synthetic dataset in {folder}…")
        return self.job.start(synth_job, folder, self.synth_config, on_progress=self.panel.set_busy_progress,
                              on_finished=self._on_dataset_made,
                              on_errored=lambda message: self._on_failed("Could not make the dataset", message),
                              on_cancelled=lambda: self._end_job("Dataset not made (cancelled)."))

    def _on_dataset_made(self, folder: Path) -> None:
        self._end_job(f"Synthetic dataset written to {folder}.")
        self.panel.set_dataset(str(folder))

    # ---- helpers -------------------------------------------------------------------------------
    def _error(self, title: str, message: str) -> None:
        QMessageBox.critical(self.dialog_parent, title, message)

    def shutdown(self, timeout_ms: int = 120_000) -> None:
        """Cancel whatever runs (a run saves its checkpoint) and wait for it."""
        if not self.job.busy:
            return
        if self.gate is not None:
            self.gate.cancel()
        else:
            self.job.cancel()
        self.job.wait(timeout_ms)


def install_train_panel(window: MainWindow, model: SessionModel) -> TrainController:
    """Add the "Train" dock to a MainWindow and return its controller."""
    from app.main_window import PanelSpec

    panel = TrainPanel(devices=available_devices())
    controller = TrainController(panel, model, dialog_parent=window, parent=window, flame_model=lambda: window.flame_model)
    window.add_feature("train", controller, PanelSpec("train", "Train", lambda w: panel))
    app = QCoreApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(controller.shutdown)
    return controller
