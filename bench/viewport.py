"""Viewport latency: from a slider change to finished pixels, on the demo avatar at 512², per backend.

Each step changes the smile (and a little jaw) the way a slider drag does, then renders through the
viewport's own FramePipeline (app/render_thread.py), exactly as the render thread does: FLAME
forward + Gaussian deform + colours + projection/sort + draw + readback. Backends: "gl" (moderngl,
EGL; Mesa llvmpipe without a GPU), "cpu" (the engine's numba rasterizer), "gsplat" when CUDA is
present. Prints per-backend medians, then one JSON line: <backend>_latency_median_ms,
<backend>_latency_p95_ms and <backend>_<stage>_median_ms for every stage.

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


def bench_backend(backend: str, avatar: "Avatar", steps: int, size: int) -> dict[str, float]:  # noqa: F821
    """Median and p95 latency (ms) and the median of every stage over `steps` slider changes."""
    import numpy as np

    from app.render_thread import FramePipeline, RenderRequest
    from app.session import framing_camera
    from engine.avatar.posing import Pose

    pipe = FramePipeline(backend)
    if pipe.backend != backend:
        pipe.release()
        raise RuntimeError(f"backend {backend} unavailable: {pipe.note}")
    camera = framing_camera(avatar)
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}
    for i in range(steps + 1):  # the first frame warms up (shader compile, numba load, caches)
        value = 0.5 + 0.5 * math.sin(i * 0.7)
        pose = Pose(expressions={"smile": round(value, 3)}, jaw=0.05 * value)
        start = time.perf_counter()
        frame = pipe.render(RenderRequest(i, avatar, avatar.params, pose, 0, (), camera, size, size, issued=start))
        if i == 0:
            continue
        latencies.append(1000 * (time.perf_counter() - start))
        for key, ms in frame.timings.items():
            if key not in ("total", "compose"):
                stages.setdefault(key, []).append(ms)
    pipe.release()
    out = {"latency_median_ms": float(np.median(latencies)), "latency_p95_ms": float(np.percentile(latencies, 95))}
    out.update({f"{k}_median_ms": float(np.median(v)) for k, v in stages.items()})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few steps (under a minute)")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--backends", default="gl,cpu", help="comma-separated: gl, cpu, torch, gsplat")
    args = parser.parse_args()
    import torch

    from engine.avatar.demo import load_demo_avatar

    torch.set_num_threads(1)  # as the render thread does: the GL driver needs the other core
    avatar = load_demo_avatar()
    backends = [b for b in args.backends.split(",") if b]
    if torch.cuda.is_available() and "gsplat" not in backends:
        backends.append("gsplat")
    figures: dict[str, float | int | str] = {"bench": "viewport", "size": args.size, "gaussians": avatar.gaussians.count}
    for backend in backends:
        steps = (15 if args.quick else 60) if backend in ("gl", "gsplat") else (3 if args.quick else 10)
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
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
