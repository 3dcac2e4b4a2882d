"""Micro-benchmark of the OpenGL splat renderer alone (engine/render/gl_splats.py), headless via EGL.

Random head-like scenes: N Gaussians on an ellipsoid shell of ~0.1 m semi-axes, scales (standard
deviations) 1.5–4 mm, opacities 0.3–1, SH degree 3, seen at 512² from 0.6 m with a 20° vertical
field of view while the camera orbits. Prints the median milliseconds of the whole render and of
each stage (prepare, sort, upload, draw, readback), the mean quad area and visible count, then one
JSON line with all figures.

    .venv/bin/python bench/gl_splats.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402,F401  (before torch: sets the OpenMP wait policy, see engine/__init__.py)

if TYPE_CHECKING:
    from engine.render.gl_splats import GLSplatRenderer
    from engine.render.splats import Splats


def head_like_splats(n: int, seed: int = 0, scale_range: tuple[float, float] = (0.0015, 0.004)) -> "Splats":
    """N random Gaussians on an ellipsoid shell (semi-axes 0.08, 0.1, 0.09 m) with SH degree 3."""
    import torch

    from engine.render.splats import Splats

    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(n, 3, generator=g)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    radii = torch.tensor([0.08, 0.10, 0.09]) * (1.0 + 0.03 * torch.randn(n, 1, generator=g))
    means = dirs * radii
    lo, hi = scale_range
    scales = torch.exp(torch.empty(n, 3).uniform_(float(torch.log(torch.tensor(lo))), float(torch.log(torch.tensor(hi))),
                                                  generator=g))
    quats = torch.randn(n, 4, generator=g)
    opacities = torch.empty(n).uniform_(0.3, 1.0, generator=g)
    sh = torch.randn(n, 16, 3, generator=g) * 0.1
    sh[:, 0, :] = torch.randn(n, 3, generator=g) * 0.5 + 0.6
    return Splats(means, quats, scales, opacities, sh)


def bench_one(renderer: "GLSplatRenderer", n: int, frames: int, scale_mm: tuple[float, float]) -> dict[str, float]:
    """Median ms per stage over `frames` renders of an orbiting camera, plus scene statistics."""
    import numpy as np

    from engine.render.camera import orbit_camera

    splats = head_like_splats(n, scale_range=(scale_mm[0] / 1000, scale_mm[1] / 1000))
    stats: dict[str, list[float]] = {}
    for i in range(frames + 1):
        cam = orbit_camera(-30 + 60 * i / max(frames, 1), 5.0, 0.6, fov_y_deg=20.0, width=512, height=512)
        renderer.render(splats, cam)
        if i == 0:
            continue  # warm-up (shader JIT, first buffer allocation)
        for k, v in renderer.last_timings.items():
            stats.setdefault(k, []).append(v)
    inst = renderer.prepare(splats, cam)
    area = 4.0 * np.hypot(inst[:, 2], inst[:, 3]) * np.hypot(inst[:, 4], inst[:, 5])
    out: dict = {k: float(np.median(v)) for k, v in stats.items()}
    out.update(primitive=renderer.last_primitive, visible=int(inst.shape[0]), mean_quad_px=float(area.mean()), quad_mpx=float(area.sum() / 1e6))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few frames per size (under a minute)")
    parser.add_argument("--sizes", default="10000,50000,100000", help="comma-separated Gaussian counts")
    parser.add_argument("--primitive", default="auto", choices=["auto", "quads", "points"], help="draw mode")
    parser.add_argument("--scale-mm", default="1.5,4", help="range of Gaussian standard deviations in mm")
    args = parser.parse_args()
    from engine.render.gl_splats import GLSplatConfig, GLSplatRenderer

    scale_mm = tuple(float(v) for v in args.scale_mm.split(","))

    frames = 5 if args.quick else 20
    renderer = GLSplatRenderer(512, 512, config=GLSplatConfig(primitive=args.primitive))
    results: dict[str, dict[str, float]] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        r = bench_one(renderer, n, frames, scale_mm)
        results[str(n)] = r
        stages = " ".join(f"{k}={r[k]:.1f}" for k in ("prepare", "sort", "upload", "draw", "readback"))
        print(f"N={n:>6} {r['primitive']}: total {r['total']:.1f} ms ({stages}) visible={r['visible']} "
              f"mean quad={r['mean_quad_px']:.0f} px, {r['quad_mpx']:.1f} Mpx of quads")
    renderer.release()
    print(json.dumps({"bench": "gl_splats", "size": [512, 512], "frames": frames, "scale_mm": scale_mm,
                      "primitive": args.primitive, "results_ms": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
