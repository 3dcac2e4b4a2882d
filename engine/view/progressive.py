"""Progressive rendering on a thread of its own: while the input moves, every new state is drawn at a reduced
resolution chosen to hold a frame budget; once the input pauses, the newest state is refined at full
resolution. A newer request aborts a refinement (between bands of tile rows), so a drag never waits for a
full-size picture of a pose it has left, and frames come out in request order: no stale pose is shown after
a newer one.

    loop = RenderLoop("auto", on_frame=show)   # show(frame) is called on the render thread
    loop.start(); loop.submit(request); ...; loop.stop()

Qt-free: the GUI wraps it (app/render_thread.py), bench/viewport.py drives it like a slider drag.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from engine.view.pipeline import FramePipeline, pixel_ms
from engine.view.request import Frame, ViewRequest

log = logging.getLogger(__name__)


@dataclass
class FrameBudget:
    """Chooses the scale of interactive pictures from what frames cost: fixed + per-pixel milliseconds."""

    budget_ms: float = 16.0  # an interactive frame should take about this long
    min_scale: float = 0.25  # never smaller than this share of the view's width and height
    step: float = 1 / 16  # scales are multiples of this (the picture's size stays put while costs wobble)
    fixed_ms: float = 8.0  # estimate of the per-frame cost that does not grow with pixels
    ms_per_mpx: float = 40.0  # estimate of the cost per million pixels
    smoothing: float = 0.3  # weight of a new observation in the running estimates

    def observe(self, frame: Frame) -> None:
        """Learn from a finished frame's stage timings. Ignored without timings, and for the first frame after
        the avatar or its layers changed (composing them, and a first render's kernel loading, are one-offs)."""
        total = frame.timings.get("total")
        if not total or "compose" in frame.timings:
            return
        h, w = frame.image.shape[:2]
        per_pixel = pixel_ms(frame)
        k = self.smoothing
        self.fixed_ms += k * (max(0.0, total - per_pixel) - self.fixed_ms)
        self.ms_per_mpx += k * (per_pixel / max(1e-6, w * h / 1e6) - self.ms_per_mpx)

    def predict_ms(self, width: int, height: int, scale: float = 1.0) -> float:
        """Expected milliseconds of a frame of the view's size at scale."""
        return self.fixed_ms + self.ms_per_mpx * width * height * scale * scale / 1e6

    def scale(self, width: int, height: int) -> float:
        """The largest scale (a multiple of step, at least min_scale, at most 1) predicted to fit the budget."""
        room = self.budget_ms - self.fixed_ms
        if room <= 0:
            return self.min_scale
        fit = math.sqrt(room / max(1e-9, self.ms_per_mpx * width * height / 1e6))
        return min(1.0, max(self.min_scale, math.floor(fit / self.step) * self.step))


class RenderLoop:
    """Renders the newest submitted ViewRequest on its own thread (module docstring).

    on_frame(frame) and on_failed(exception) are called on the render thread; on_ready(backend, note) once
    the backend is up. pause_ms: how long the input must rest before the full-resolution refinement starts.
    """

    def __init__(self, backend: str = "auto", on_frame: Callable[[Frame], None] | None = None,
                 on_failed: Callable[[Exception], None] | None = None,
                 on_ready: Callable[[str, str], None] | None = None,
                 budget: FrameBudget | None = None, pause_ms: float = 40.0) -> None:
        self.preference = backend
        self.on_frame, self.on_failed, self.on_ready = on_frame, on_failed, on_ready
        self.budget = budget or FrameBudget()
        self.pause_ms = pause_ms
        self.backend = ""  # set once the pipeline is up
        self.note = ""
        self.dropped = 0  # requests replaced before they were rendered
        self._cond = threading.Condition()
        self._pending: ViewRequest | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="render", daemon=True)

    def start(self) -> RenderLoop:
        self._thread.start()
        return self

    def submit(self, request: ViewRequest) -> None:
        """Render request next (at the size FrameBudget picks), replacing any request still waiting."""
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            self._pending = request
            self._cond.notify()

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _next(self, unrefined: ViewRequest | None) -> tuple[ViewRequest | None, bool]:
        """(request, refine): the newest pending request, else the unrefined one once the input paused."""
        with self._cond:
            while not self._stopping:
                if self._pending is not None:
                    request, self._pending = self._pending, None
                    return request, False
                if unrefined is None:
                    self._cond.wait()
                    continue
                rest = unrefined.issued + self.pause_ms / 1000 - time.perf_counter()
                if rest <= 0:
                    return unrefined, True
                self._cond.wait(rest)
        return None, False

    def _run(self) -> None:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        torch.set_num_threads(1)  # the rasterizer (numba) or the GL driver needs the other core
        try:
            pipeline = FramePipeline(self.preference)
        except Exception as exc:  # e.g. an unknown backend name: nothing can be drawn
            log.exception("no renderer")
            if self.on_failed is not None:
                self.on_failed(exc)
            return
        self.backend, self.note = pipeline.backend, pipeline.note
        if self.on_ready is not None:
            self.on_ready(pipeline.backend, pipeline.note)
        unrefined: ViewRequest | None = None
        try:
            while True:
                request, refine = self._next(unrefined)
                if request is None:
                    return
                unrefined = None
                if refine:
                    frame = self._render(pipeline, request, abort=lambda: self._pending is not None)
                else:
                    w, h = request.width, request.height
                    scale = self.budget.scale(w, h) if self.budget.predict_ms(w, h) > self.budget.budget_ms else 1.0
                    frame = self._render(pipeline, replace(request, scale=scale))
                    if frame is not None:
                        self.budget.observe(frame)
                        unrefined = request if scale < 1.0 else None
                if frame is not None and self.on_frame is not None:
                    self.on_frame(frame)
        finally:
            pipeline.release()

    def _render(self, pipeline: FramePipeline, request: ViewRequest, abort: Callable[[], bool] | None = None
                ) -> Frame | None:
        try:
            return pipeline.render(request, abort)
        except Exception as exc:  # reported; the next request may well work
            log.exception("render failed")
            if self.on_failed is not None:
                self.on_failed(exc)
            return None
