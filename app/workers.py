"""Run a long engine function in a QThread and report through signals.

The engine function has the signature `fn(progress, cancel, *args, **kwargs)`:
`progress(fraction: float, text: str)` reports how far it got, `cancel() -> bool` says whether the
user asked it to stop (it then returns early or raises WorkCancelled). If fn also accepts a
keyword argument named `preview`, it receives `preview(obj)` to hand intermediate results (images,
losses) to the GUI. Exactly one of finished(result), errored(message) or cancelled() is emitted
at the end, then `done()`. Training, editing and export all run through this.

    worker = start_worker(load_avatar_job, path)
    worker.finished.connect(on_loaded); worker.errored.connect(show_error)

Controllers hold a Job per kind of work instead: it starts the worker, wires its signals to the given
callbacks, refuses a second run while one is going (the busy state) and cancels:

    self.fit = Job("fit stroke", self)
    self.fit.start(fit_stroke, stroke, on_progress=..., on_finished=..., on_done=...)
"""

from __future__ import annotations

import inspect
import logging
import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from engine.errors import UserError

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]


class WorkCancelled(Exception):
    """Raised by an engine function (or its progress callback) to stop because the user cancelled."""


class _Signals(QObject):
    """The signals of a job; one copy lives on the worker thread, one (the public one) in the GUI thread."""

    started = Signal()
    progress = Signal(float, str)  # fraction in [0, 1], text
    preview = Signal(object)  # whatever fn hands to preview()
    finished = Signal(object)  # fn's return value
    errored = Signal(str)  # a message for the user (a bug's traceback goes to the log; a UserError is one log line)
    cancelled = Signal()
    done = Signal()  # after any of finished / errored / cancelled

    NAMES = ("started", "progress", "preview", "finished", "errored", "cancelled", "done")


class _Runner(_Signals):
    """Lives on the worker thread and calls fn there."""

    def __init__(self, worker: "Worker") -> None:
        super().__init__()
        self.worker = worker

    @Slot()
    def run(self) -> None:
        w = self.worker
        self.started.emit()
        kwargs = dict(w.kwargs)
        if _accepts(w.fn, "preview"):
            kwargs["preview"] = self.preview.emit
        try:
            result = w.fn(self._report, w.is_cancelled, *w.args, **kwargs)
        except WorkCancelled:
            self.cancelled.emit()
        except Exception as exc:  # every failure becomes a message for the user, never a traceback in the GUI
            w.error = user_message(exc)
            if isinstance(exc, UserError):  # a known failure the user is told about: one line
                log.warning("%s: %s", w.name, w.error)
            else:  # a bug: its traceback goes to the log
                log.exception("worker %s failed", w.name)
            self.errored.emit(w.error)
        else:
            if w.is_cancelled():
                self.cancelled.emit()
            else:
                w.result = result
                self.finished.emit(result)
        self.done.emit()
        QThread.currentThread().quit()  # thread-safe; the loop ends once this slot returns

    def _report(self, fraction: float, text: str = "") -> None:
        self.progress.emit(float(min(1.0, max(0.0, fraction))), str(text))


class Worker(_Signals):
    """Runs fn once on its own QThread. Its signals arrive in the thread that created it (the GUI thread),
    so plain functions and lambdas connected to them run there. start_worker keeps it alive while it runs."""

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "", **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.name = name or getattr(fn, "__name__", "work")
        self.result: Any = None
        self.error: str | None = None
        self._cancel = threading.Event()
        self._thread = QThread()
        self._thread.setObjectName(f"worker:{self.name}")
        self._runner = _Runner(self)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        for name_ in self.NAMES:  # relay into this object's thread
            getattr(self._runner, name_).connect(getattr(self, name_), Qt.ConnectionType.QueuedConnection)

    def start(self) -> "Worker":
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask fn to stop at its next cancel() check."""
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the thread ended (for shutdown and tests)."""
        return self._thread.wait(timeout_ms)


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def user_message(exc: BaseException) -> str:
    """A one-paragraph message for a dialog: the error's own text, with its kind when that helps."""
    text = str(exc).strip()
    if isinstance(exc, (ValueError, FileNotFoundError, PermissionError, RuntimeError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_LIVE: set[Worker] = set()
"""Workers whose thread has not ended yet (so Python does not destroy a running QThread)."""


def start_worker(fn: Callable[..., Any], *args: Any, name: str = "", **kwargs: Any) -> Worker:
    """Create and start a Worker; it is kept alive until its thread has ended."""
    worker = Worker(fn, *args, name=name, **kwargs)
    _LIVE.add(worker)
    worker._thread.finished.connect(lambda: _LIVE.discard(worker), Qt.ConnectionType.QueuedConnection)
    return worker.start()


class Job(QObject):
    """One kind of background work of a controller: at most one run at a time (unless not exclusive).

    start(fn, *args, on_progress=, on_preview=, on_finished=, on_errored=, on_cancelled=, on_done=, **kwargs)
    runs fn(progress, cancel, *args, **kwargs) on a worker and connects the callbacks given to its signals.
    The job is busy from start until the worker reports its end (finished, errored or cancelled): by the time
    those callbacks run it is idle again, and busyChanged(bool) has told the panels.
    """

    busyChanged = Signal(bool)
    CALLBACKS = ("progress", "preview", "finished", "errored", "cancelled", "done")

    def __init__(self, name: str, parent: QObject | None = None, exclusive: bool = True) -> None:
        super().__init__(parent)
        self.name, self.exclusive = name, exclusive
        self.worker: Worker | None = None  # the newest run, while it runs

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Worker | None:
        """Run fn on a worker; None (nothing started) while an exclusive job runs."""
        if self.exclusive and self.busy:
            return None
        callbacks = {name: kwargs.pop(f"on_{name}") for name in self.CALLBACKS if f"on_{name}" in kwargs}
        worker = start_worker(fn, *args, name=self.name, **kwargs)
        for end in (worker.finished, worker.errored, worker.cancelled):
            end.connect(self._ended)  # first, so the job is idle when the callbacks run; bound: dropped with the job
        for name, callback in callbacks.items():
            if callback is not None:
                getattr(worker, name).connect(callback)
        self.worker = worker
        self.busyChanged.emit(True)
        return worker

    def cancel(self) -> None:
        """Ask the running work to stop (it reports cancelled, or finishes if it was past the point)."""
        if self.worker is not None:
            self.worker.cancel()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the running work ended (shutdown and tests)."""
        return True if self.worker is None else self.worker.wait(timeout_ms)

    def _ended(self, *_: Any) -> None:
        if self.sender() is self.worker:
            self.worker = None
            self.busyChanged.emit(False)
