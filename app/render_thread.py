"""The viewport's render thread: a thin Qt wrapper around the engine's progressive render loop.

RenderController turns every change of the session model into one engine.view.ViewRequest (a snapshot of
the Qt-free session state at the viewport's size) for the loop (engine/view/progressive.py), which renders
it on its own thread (reduced while things move, refined to full resolution once they rest, stale requests
dropped), and brings each finished Frame back to the GUI thread as a signal. It also counts frames per second.
"""

from __future__ import annotations

import math
import time
from collections import deque

from PySide6.QtCore import QObject, Qt, Signal

from app.session import SessionModel
from app.workers import user_message
from engine.view.progressive import FrameBudget, RenderLoop
from engine.view.request import Frame


class RenderController(QObject):
    """Submits the model's state to the render loop whenever it changes; delivers frames in the GUI thread.

    max_side: the longest side of full-resolution pictures (None: the viewport's own size); progressive False
    renders every request at full resolution (tests that want one frame per request).
    """

    frameReady = Signal(object)  # Frame, in the GUI thread
    fpsChanged = Signal(float)
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
        self._times: deque[float] = deque(maxlen=30)
        self.last_frame: Frame | None = None
        self.fps = 0.0
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
        now = time.perf_counter()
        self._times.append(now)
        if len(self._times) >= 2 and now - self._times[0] > 0:
            recent = [t for t in self._times if now - t < 2.0]
            span = recent[-1] - recent[0] if len(recent) >= 2 else 0.0
            self.fps = (len(recent) - 1) / span if span > 0 else 0.0
            self.fpsChanged.emit(self.fps)
        self.last_frame = frame
        self.frameReady.emit(frame)

    def shutdown(self) -> None:
        self.loop.stop()
