"""Viewport latency at the window's real size: a slider drag through the viewport's own render loop.

The demo avatar in a Qt-free session (engine.view.SessionState, as the GUI's), shown at --size (default
1280x720, the viewport of a 1440x900 window or so). Figures:
- full_frame_ms: one full-resolution frame (FLAME forward, deform + projection, sort, bin, composite,
  readback) rendered synchronously, median over slider values; full_<stage>_median_ms per stage;
  full_frame_cpu_ms: the process CPU time of such a frame over all threads (what it costs, whatever the load).
- A drag: the smile slider moves at --rate events per second (a mouse drag reports ~60) for --seconds;
  every event changes the session's pose and hands its ViewRequest to engine.view.RenderLoop, the render
  thread the GUI uses (reduced resolution chosen to hold its frame budget while input moves, full
  resolution once it rests, stale requests dropped). interactive_latency_median_ms / _p95_ms: from a slider
  event to the first finished frame showing that event's pose or a newer one. interactive_scale_median:
  the share of the full width/height those frames had.
- settle_latency_ms: from the drag's last event to the full-resolution frame of that pose (median over
  the drags).
The first drag warms up (numba cache, the budget's cost estimates) and is not counted. The machine is
shared: figures are noisy under load, so the 1-minute load average at start and end is reported.
Ends with one JSON line.

    .venv/bin/python bench/viewport.py --quick
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import engine  # noqa: E402, F401 - sets OMP_WAIT_POLICY before torch loads


def slider(i: int, rate: float) -> float:
    """The smile slider's value at event i: a smooth drag back and forth, about one sweep a second."""
    return round(0.5 + 0.45 * math.sin(2 * math.pi * i / rate), 3)


def full_frames(state, backend: str, size: tuple[int, int], count: int) -> dict[str, float]:
    """Median milliseconds of full-resolution frames (total wall time and per stage) over `count` slider values."""
    import numpy as np

    from engine.view import FramePipeline

    pipe = FramePipeline(backend)
    walls: list[float] = []
    cpus: list[float] = []
    stages: dict[str, list[float]] = {}
    try:
        for i in range(count + 2):  # two warm-up frames (numba cache load, first allocations)
            state.set_pose(state.pose_with_expression("smile", slider(i, 7.0)))
            start, cpu_start = time.perf_counter(), time.process_time()
            frame = pipe.render(state.request(i, *size))
            wall, cpu = 1000 * (time.perf_counter() - start), 1000 * (time.process_time() - cpu_start)
            assert frame is not None and frame.image.shape == (size[1], size[0], 3)
            if i >= 2:
                walls.append(wall)
                cpus.append(cpu)
                for key, ms in frame.timings.items():
                    if key not in ("total", "compose"):
                        stages.setdefault(key, []).append(ms)
    finally:
        pipe.release()
    out = {"full_frame_ms": float(np.median(walls)), "full_frame_cpu_ms": float(np.median(cpus)), "backend": pipe.backend}
    out.update({f"full_{k}_median_ms": float(np.median(v)) for k, v in stages.items()})
    return out


class Drag:
    """One slider drag through a RenderLoop, timing every event and every frame."""

    def __init__(self, loop, state, size: tuple[int, int], rate: float, seconds: float, first: int) -> None:
        self.loop, self.state, self.size = loop, state, size
        self.rate, self.events = rate, max(2, round(rate * seconds))
        self.first = first  # serial of the first event
        self.sent: dict[int, float] = {}
        self.frames: list[tuple[float, int, float]] = []  # (arrival, serial, scale)
        self.settled = threading.Event()

    def on_frame(self, frame) -> None:
        self.frames.append((time.perf_counter(), frame.serial, frame.scale))
        if frame.full and frame.serial == self.first + self.events - 1:
            self.settled.set()

    def run(self) -> None:
        start = time.perf_counter()
        for i in range(self.events):
            time.sleep(max(0.0, start + i / self.rate - time.perf_counter()))
            self.state.set_pose(self.state.pose_with_expression("smile", slider(i, self.rate)))
            serial = self.first + i
            request = self.state.request(serial, *self.size)
            self.sent[serial] = request.issued
            self.loop.submit(request)
        if not self.settled.wait(60):
            raise RuntimeError("no full-resolution frame within 60 s of the drag's end")

    def latencies(self) -> list[float]:
        """Milliseconds from each event to the first frame showing it or a newer event."""
        out = []
        for serial, sent in self.sent.items():
            arrivals = [t for t, s, _ in self.frames if s >= serial and t >= sent]
            if arrivals:
                out.append(1000 * (min(arrivals) - sent))
        return out

    def settle_ms(self) -> float:
        last = self.first + self.events - 1
        full = [t for t, s, scale in self.frames if s == last and scale >= 1.0]
        return 1000 * (min(full) - self.sent[last])

    def scales(self) -> list[float]:
        last = self.first + self.events - 1
        return [scale for _, s, scale in self.frames if s != last or scale < 1.0]


def drags(state, backend: str, size: tuple[int, int], rate: float, seconds: float, count: int) -> dict[str, float]:
    """Latency figures over `count` counted drags (after one warm-up drag)."""
    import numpy as np

    from engine.view import RenderLoop

    current: list[Drag] = []
    loop = RenderLoop(backend, on_frame=lambda frame: current[-1].on_frame(frame)).start()
    latencies, settles, scales, frames, events = [], [], [], 0, 0
    serial = 1
    try:
        for n in range(count + 1):
            drag = Drag(loop, state, size, rate, seconds, serial)
            current.append(drag)
            drag.run()
            serial += drag.events
            time.sleep(0.2)  # a pause between drags
            if n == 0:
                continue
            latencies += drag.latencies()
            settles.append(drag.settle_ms())
            scales += drag.scales()
            frames += len(drag.frames)
            events += drag.events
    finally:
        loop.stop()
    return {"interactive_latency_median_ms": float(np.median(latencies)),
            "interactive_latency_p95_ms": float(np.percentile(latencies, 95)),
            "settle_latency_ms": float(np.median(settles)), "settle_latency_max_ms": float(np.max(settles)),
            "interactive_scale_median": float(np.median(scales)), "drag_events": events,
            "frames_per_event": frames / max(1, events), "dropped_requests": loop.dropped}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter drags and fewer frames (well under a minute)")
    parser.add_argument("--size", default="1280x720", help="viewport size WxH in pixels (default 1280x720)")
    parser.add_argument("--backend", default="auto", help="auto, gl, cpu, torch or gsplat (default: auto)")
    parser.add_argument("--threads", type=int, default=2, help="rasterizer threads (default 2: the machine's cores)")
    parser.add_argument("--rate", type=float, default=60.0, help="slider events per second during a drag")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    import numba
    import torch

    from engine.avatar.demo import load_demo_avatar
    from engine.view import SessionState

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(1)  # as the render loop does
    load_start = os.getloadavg()[0]
    state = SessionState()
    state.set_avatar(load_demo_avatar())
    full = full_frames(state, args.backend, (width, height), 5 if args.quick else 20)
    drag = drags(state, args.backend, (width, height), args.rate, 2.0 if args.quick else 5.0, 2 if args.quick else 5)
    figures: dict[str, float | int | str] = {
        "bench": "viewport", "width": width, "height": height, "gaussians": state.avatar.gaussians.count,
        "backend": full.pop("backend"), "threads": numba.get_num_threads(), "cores": os.cpu_count() or 0}
    figures.update({k: round(v, 2) if isinstance(v, float) else v for k, v in {**full, **drag}.items()})
    figures["load_avg_1min_start"] = round(load_start, 2)
    figures["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    print(f"{figures['backend']} at {width}x{height}: full frame {full['full_frame_ms']:.1f} ms; drag at "
          f"{args.rate:g} events/s: latency median {drag['interactive_latency_median_ms']:.1f} ms, p95 "
          f"{drag['interactive_latency_p95_ms']:.1f} ms at scale {drag['interactive_scale_median']:.2f}; settle "
          f"{drag['settle_latency_ms']:.1f} ms; load average {load_start:.2f} -> {figures['load_avg_1min_end']:.2f}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
