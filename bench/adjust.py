"""Latency of a live adjustment: slider value -> finished pixels, for a tint on the demo avatar's hair at 512².

Figures (medians over the frames, milliseconds), all with the same renderer in the same run
(the viewer's renderer: OpenGL on a hardware driver, else the fast CPU path; --cpu: rasterize.render):
- viewer_latency_median_ms: render alone of the posed avatar (a viewport redraw);
- viewer_pose_latency_median_ms: deform + render (a frame of an expression slider drag);
- adjust_latency_median_ms: AdjustPreview.update(params) + render (slider value to pixels; the
  posed splats share the preview's SH tensor, so no deform is needed for a colour change);
- preview_update_median_ms: AdjustPreview.update alone;
- full_compose_median_ms: compose(base, [layer]) from scratch, what a naive preview would pay;
- adjust_overhead_ms = adjust − viewer (target: at most 5 ms).

    .venv/bin/python bench/adjust.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402,F401  (before torch: sets the OpenMP wait policy, see engine/__init__.py)


def make_renderer(size: int, force_cpu: bool) -> tuple[str, Callable[..., object]]:
    """(name, render(splats, camera) -> image): the viewer's own choice — OpenGL on a hardware driver,
    the fast CPU path (engine/render/fast_view.py) on Mesa's software OpenGL or without EGL — or
    rasterize.render with force_cpu."""
    import torch

    if not force_cpu:
        try:
            from engine.render.gl_splats import GLSplatRenderer, is_software_renderer

            gl = GLSplatRenderer(size, size)
            if not is_software_renderer(gl.ctx):
                return "gl_splats", lambda splats, cam: gl.render(splats, cam)
            gl.release()
        except Exception as exc:  # noqa: BLE001 (no EGL / moderngl: fall back, and say why)
            print(f"GL renderer unavailable ({type(exc).__name__}: {exc})", file=sys.stderr)
        from engine.render.fast_view import FastSplatRenderer

        fast = FastSplatRenderer()
        return "fast_cpu", lambda splats, cam: fast.render(splats, cam).image
    from engine.render.rasterize import render

    def cpu(splats: Any, cam: Any) -> object:
        with torch.no_grad():
            return render(splats, cam).rgb

    return "rasterize", cpu


def _ms(fn: Callable[[int], object], frames: int) -> tuple[list[float], object]:
    out, last = [], None
    for i in range(frames):
        t = time.perf_counter()
        last = fn(i)
        out.append(1000 * (time.perf_counter() - t))
    return out, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few frames (under a minute)")
    parser.add_argument("--size", type=int, default=512, help="image size in pixels")
    parser.add_argument("--cpu", action="store_true", help="use rasterize.render even when GL works")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from engine.avatar.avatar import Avatar
    from engine.avatar.demo import load_demo_avatar
    from engine.edit.adjust import AdjustParams, AdjustPreview, adjust_layer, selection_from_components
    from engine.edit.layers import compose
    from engine.render.camera import orbit_camera

    frames = 5 if args.quick else 20
    avatar = load_demo_avatar()
    base = avatar.gaussians
    hair = selection_from_components(base, ["hair"])
    name, draw = make_renderer(args.size, args.cpu)
    camera = orbit_camera(20.0, 10.0, 0.6, (0.0, -0.014, 0.0), 22.0, args.size, args.size)
    values = [AdjustParams(tint=(0.85, 0.7, 0.35), strength=0.05 + 0.9 * i / max(frames - 1, 1)) for i in range(frames)]

    with torch.no_grad():
        preview = AdjustPreview(base, [], hair)
        shown = Avatar(avatar.head, preview.gaussians, avatar.params, avatar.name)
        posed = shown.splats()  # its sh is preview.gaussians.sh: updated in place by the preview
        draw(posed, camera)  # warm-up (shader/JIT compile, buffers)
        viewer, _ = _ms(lambda i: draw(posed, camera), frames)
        pose_params = [avatar.params_with(0, smile=0.1 * i) for i in range(frames)]
        viewer_pose, _ = _ms(lambda i: draw(shown.splats(pose_params[i]), camera), frames)
        update, _ = _ms(lambda i: preview.update(values[i]), frames)

        def adjust(i: int) -> object:
            preview.update(values[i])
            return draw(posed, camera)

        adjust_ms, _ = _ms(adjust, frames)
        layer = adjust_layer(base, hair, values[-1])
        full, _ = _ms(lambda i: compose(base, [layer]), frames)
        assert preview.update(values[-1]).equal(compose(base, [layer])), "preview differs from the committed layer"

    med = statistics.median
    figures = {
        "renderer": name,
        "size": args.size,
        "gaussians": base.count,
        "selected": int(hair.sum()),
        "frames": frames,
        "viewer_latency_median_ms": round(med(viewer), 2),
        "viewer_pose_latency_median_ms": round(med(viewer_pose), 2),
        "adjust_latency_median_ms": round(med(adjust_ms), 2),
        "preview_update_median_ms": round(med(update), 3),
        "full_compose_median_ms": round(med(full), 2),
        "adjust_overhead_ms": round(med(adjust_ms) - med(viewer), 2),
    }
    for key, value in figures.items():
        print(f"{key:32s} {value}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
