"""Viewport latency: from a slider change to finished pixels, on the demo avatar at 512², per backend.

Each step changes the smile (and a little jaw) the way a slider drag does, then renders a uint8 frame:
FLAME forward + Gaussian deform + colours + projection/sort + draw + readback. Backends:
- "gl": the viewport's own FramePipeline (app/render_thread.py) with moderngl through EGL (Mesa llvmpipe
  without a GPU).
- "cpu": the same FramePipeline with its CPU backend (whatever app/render_thread.py does today for "cpu").
- "cpufast": the CPU inference path engine/render/fast_view.py exactly as the proposed FramePipeline change
  uses it: posed_params -> FLAME -> FastAvatarRenderer.render(verts) (deform, projection, SH, sort, binning
  and compositing fused in numba). Once FramePipeline uses it, "cpu" measures the same thing.
- "gsplat" when CUDA is present.
Prints per-backend medians, then one JSON line: <backend>_latency_median_ms, <backend>_latency_p95_ms,
<backend>_latency_min_ms, <backend>_cpu_time_median_ms (process CPU time per frame over all threads, GL driver
threads included: what a frame costs, whatever the load), <backend>_<stage>_median_ms for every stage, the backend the viewport picks by default ("auto") and the
1-minute load average at start and end (the machine is shared: figures are noisy under load).

    .venv/bin/python bench/viewport.py --quick
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import engine  # noqa: F401 - sets OMP_WAIT_POLICY before torch loads


def _pose(i: int) -> Pose:  # noqa: F821
    """The slider value of step i (a smooth drag back and forth)."""
    from engine.avatar.posing import Pose

    value = 0.5 + 0.5 * math.sin(i * 0.7)
    return Pose(expressions={"smile": round(value, 3)}, jaw=0.05 * value)


class _FastPipeline:
    """The CPU inference path as the viewport would run it (see the module docstring)."""

    backend = "cpufast"

    def __init__(self, avatar: Avatar) -> None:  # noqa: F821
        from engine.render.fast_view import FastAvatarRenderer

        self.avatar = avatar
        self.renderer = FastAvatarRenderer(avatar.gaussians, avatar.head.faces)

    def render(self, pose: Pose, camera: Camera) -> tuple[np.ndarray, dict[str, float]]:  # noqa: F821
        import torch

        from app.session import posed_params

        t0 = time.perf_counter()
        with torch.no_grad():
            params = posed_params(self.avatar, self.avatar.params, pose, 0)
            verts = self.avatar.posed_vertices(params)
        t1 = time.perf_counter()
        frame = self.renderer.render(verts, camera, (1.0, 1.0, 1.0))
        return frame.image, {"flame": 1000 * (t1 - t0), **self.renderer.last_timings}


def bench_backend(backend: str, avatar: Avatar, steps: int, size: int) -> dict[str, float]:  # noqa: F821
    """Median and p95 latency (ms) and the median of every stage over `steps` slider changes."""
    import numpy as np

    from app.render_thread import FramePipeline, RenderRequest
    from app.session import framing_camera

    cam_state = framing_camera(avatar)
    if backend == "cpufast":
        fast, pipe = _FastPipeline(avatar), None
    else:
        fast, pipe = None, FramePipeline(backend)
        if pipe.backend != backend:
            pipe.release()
            raise RuntimeError(f"backend {backend} unavailable: {pipe.note}")
    latencies: list[float] = []
    cpu_ms: list[float] = []  # process CPU time per frame, all threads (llvmpipe's included): the load-free cost
    stages: dict[str, list[float]] = {}
    try:
        for i in range(steps + 2):  # the first two frames warm up (shader compile, numba load, caches)
            start, cpu_start = time.perf_counter(), time.process_time()
            if fast is not None:
                image, timings = fast.render(_pose(i), cam_state.camera(size, size))
            else:
                frame = pipe.render(RenderRequest(i, avatar, avatar.params, _pose(i), 0, (), cam_state, size, size,
                                                  issued=start))
                image, timings = frame.image, frame.timings
            elapsed, cpu = 1000 * (time.perf_counter() - start), 1000 * (time.process_time() - cpu_start)
            assert image.shape == (size, size, 3) and image.dtype == np.uint8
            if i < 2:
                continue
            latencies.append(elapsed)
            cpu_ms.append(cpu)
            for key, ms in timings.items():
                if key not in ("total", "compose"):
                    stages.setdefault(key, []).append(ms)
    finally:
        if pipe is not None:
            pipe.release()
    out = {"latency_median_ms": float(np.median(latencies)), "latency_p95_ms": float(np.percentile(latencies, 95)),
           "latency_min_ms": float(np.min(latencies)), "cpu_time_median_ms": float(np.median(cpu_ms))}
    out.update({f"{k}_median_ms": float(np.median(v)) for k, v in stages.items()})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps (well under a minute)")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--backends", default="gl,cpu,cpufast", help="comma-separated: gl, cpu, cpufast, torch, gsplat")
    args = parser.parse_args()
    import torch

    from app.render_thread import FramePipeline
    from engine.avatar.demo import load_demo_avatar

    torch.set_num_threads(1)  # as the render thread does
    load_start = os.getloadavg()[0]
    avatar = load_demo_avatar()
    backends = [b for b in args.backends.split(",") if b]
    if torch.cuda.is_available() and "gsplat" not in backends:
        backends.append("gsplat")
    auto = FramePipeline("auto")
    figures: dict[str, float | int | str] = {"bench": "viewport", "size": args.size,
                                             "gaussians": avatar.gaussians.count, "auto_backend": auto.backend}
    auto.release()
    for backend in backends:
        steps = (15 if args.quick else 60) if backend != "torch" else (3 if args.quick else 10)
        try:
            result = bench_backend(backend, avatar, steps, args.size)
        except RuntimeError as exc:
            print(f"{backend}: skipped ({exc})")
            continue
        stages = " ".join(f"{k[:-10]}={v:.1f}" for k, v in result.items() if not k.startswith("latency"))
        print(f"{backend}: median {result['latency_median_ms']:.1f} ms, p95 {result['latency_p95_ms']:.1f} ms "
              f"over {steps} slider changes ({stages})")
        figures.update({f"{backend}_{k}": round(v, 2) for k, v in result.items()})
        figures[f"{backend}_steps"] = steps
    figures["load_avg_1min_start"] = round(load_start, 2)
    figures["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    print(f"viewport default ('auto'): {figures['auto_backend']}; load average {load_start:.2f} -> "
          f"{figures['load_avg_1min_end']:.2f} on {os.cpu_count()} cores")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
