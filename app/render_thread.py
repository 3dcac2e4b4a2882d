"""The viewport's render thread: a thin Qt wrapper around the engine's progressive render loop.

RenderController turns every change of the session model into one engine.view.ViewRequest (a snapshot of
the Qt-free session state at the viewport's size) for the loop (engine/view/progressive.py), which renders
it on its own thread (reduced while things move, refined to full resolution once they rest, stale requests
dropped), and brings each finished Frame back to the GUI thread as a signal. It also measures the frame rate
while frames are being drawn (fpsChanged; 0.0 means idle: nothing drawn for IDLE_AFTER_S).
"""

from __future__ import annotations

import math
import time
from collections import deque

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from app.session import SessionModel
from app.workers import user_message
from engine.view.progressive import FrameBudget, RenderLoop
from engine.view.request import Frame

RATE_WINDOW_S = 2.0  # the frame rate is measured over the frames of the last this many seconds
RATE_MIN_FRAMES = 3  # ... when there are at least this many (a reduced frame and its refinement are no rate)
IDLE_AFTER_S = 1.0  # with no frame for this long, the rate reads "idle"


class RenderController(QObject):
    """Submits the model's state to the render loop whenever it changes; delivers frames in the GUI thread.

    max_side: the longest side of full-resolution pictures (None: the viewport's own size); progressive False
    renders every request at full resolution (tests that want one frame per request).
    """

    frameReady = Signal(object)  # Frame, in the GUI thread
    fpsChanged = Signal(float)  # frames per second while frames are being drawn; 0.0 when idle
    backendReady = Signal(str, str)  # backend, note (why a fallback was taken, or "")
    failed = Signal(str)  # a message for the status bar
    _arrived = Signal(object)  # relays from the render thread
    _broke = Signal(str)
    _ready = Signal(str, str)

    def __init__(self, model: SessionModel, backend: str = "auto", max_side: int | None = None,
                 progressive: bool = True, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.max_side = max_side
        self._size = (640, 480)
        self._serial = 0
        self._times: deque[float] = deque(maxlen=120)  # arrival times of recent frames
        self.last_frame: Frame | None = None
        self.fps = 0.0  # the measured rate; 0.0 while idle
        self._rate_timer = QTimer(self, interval=250)  # runs while frames arrive, until idle is reported
        self._rate_timer.timeout.connect(self._update_rate)
        queued = Qt.ConnectionType.QueuedConnection
        self._arrived.connect(self._on_frame, queued)
        self._broke.connect(self.failed, queued)
        self._ready.connect(self._on_ready, queued)
        budget = FrameBudget() if progressive else FrameBudget(budget_ms=math.inf)
        self.loop = RenderLoop(backend, on_frame=self._arrived.emit,
                               on_failed=lambda exc: self._broke.emit(user_message(exc)),
                               on_ready=self._ready.emit, budget=budget)
        model.changed.connect(self.request)
        self.loop.start()

    @property
    def backend(self) -> str:
        return self.loop.backend

    @property
    def latest_serial(self) -> int:
        """Serial of the newest request (a frame with it shows the current state)."""
        return self._serial

    def set_viewport_size(self, width: int, height: int) -> None:
        """The viewport's size in device pixels."""
        if (width, height) != self._size and width > 0 and height > 0:
            self._size = (width, height)
            self.request()

    def render_size(self) -> tuple[int, int]:
        """Size of full-resolution pictures: the viewport's, shrunk to max_side when that is set."""
        w, h = self._size
        scale = 1.0 if self.max_side is None else min(1.0, self.max_side / max(w, h))
        return max(1, round(w * scale)), max(1, round(h * scale))

    def request(self) -> None:
        """Hand the loop the current state (a no-op until an avatar is loaded)."""
        request = self.model.state.request(self._serial + 1, *self.render_size())
        if request is not None:
            self._serial += 1
            self.loop.submit(request)

    def _on_ready(self, backend: str, note: str) -> None:
        self.backendReady.emit(backend, note)
        self.request()

    def _on_frame(self, frame: Frame) -> None:
        self._times.append(time.perf_counter())
        self._update_rate()
        if not self._rate_timer.isActive():
            self._rate_timer.start()
        self.last_frame = frame
        self.frameReady.emit(frame)

    def _update_rate(self) -> None:
        """Measure the rate over the recent frames; report idle (0.0) once none arrived for IDLE_AFTER_S."""
        now = time.perf_counter()
        recent = [t for t in self._times if now - t < RATE_WINDOW_S]
        fps = self.fps
        if not recent or now - recent[-1] >= IDLE_AFTER_S:
            fps = 0.0
            self._rate_timer.stop()
        elif len(recent) >= RATE_MIN_FRAMES and recent[-1] > recent[0]:
            fps = (len(recent) - 1) / (recent[-1] - recent[0])
        if fps != self.fps:
            self.fps = fps
            self.fpsChanged.emit(fps)

    def shutdown(self) -> None:
        self._rate_timer.stop()
        self.loop.stop()
