"""Rasterizer benchmark: forward and forward+backward time and peak memory per scene and backend.

Scenes
- demo_256 / demo_512: the demo avatar (engine.avatar.demo.load_demo_avatar, neutral frame) seen by
  orbit_camera(0, 0, 0.6, fov_y_deg=20); if the demo avatar cannot be loaded, a synthetic head-like shell
  (40k Gaussians on a ~0.1 m ellipsoid, scales 2-4 mm) is used instead and the output says so.
- rand20k_256: 20k random Gaussians (means N(0, 0.1 m), log-normal scales with median 6.7 mm, opacity
  U(0.1, 1), SH degree 3) seen from 0.6 m with a 30 deg fov; the "torch" reference is timed here too.

Backends: "cpu" (numba, exact, differentiable), "torch" (reference) and "fast" (the inference-only viewport
path engine/render/fast_view.py; forward only, so it has no fwd+bwd figure).

Each scene/backend runs in its own subprocess so that peak memory is measured cleanly: the figure is the
growth of resource.getrusage().ru_maxrss (peak RSS of the process) over the value after the scene is built
and the kernels are warmed up on a tiny scene. Times are medians over the repeats, measured after one
untimed warm-up render of the same scene. The numba first-call cost (cache load, or a full compile when
the cache is cold) is reported separately and never enters the timings.

Usage: python bench/render.py [--quick]   (last stdout line: one JSON object of figures)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _synthetic_head(n: int = 40_000):
    import torch

    from engine.render.splats import Splats

    g = torch.Generator().manual_seed(0)
    normal = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    means = normal * torch.tensor([0.08, 0.11, 0.095]) * (1 + 0.03 * torch.randn(n, 1, generator=g))
    scales = torch.rand(n, 3, generator=g) * 0.002 + 0.002
    scales[:, 2] *= 0.3  # flat along the local z axis, which is turned onto the shell normal
    z = torch.tensor([0.0, 0.0, 1.0]).expand(n, 3)
    axis = torch.linalg.cross(z, normal)
    sin = axis.norm(dim=-1, keepdim=True)
    half = 0.5 * torch.atan2(sin, normal[:, 2:3])
    quats = torch.cat([torch.cos(half), axis / sin.clamp_min(1e-9) * torch.sin(half)], dim=-1)
    opacities = torch.rand(n, generator=g) * 0.5 + 0.5
    sh = torch.randn(n, 16, 3, generator=g) * 0.05
    sh[:, 0] = torch.rand(n, 3, generator=g)
    return Splats(means, quats, scales, opacities, sh)


def _demo_splats():
    """(splats, description): the demo avatar's neutral frame, or the synthetic head if it cannot load."""
    try:
        from engine.avatar.demo import load_demo_avatar

        avatar = load_demo_avatar()
        splats = avatar.splats(avatar.head.neutral_params())
        return splats, f"demo avatar ({splats.count} Gaussians, SH degree {splats.sh_degree})"
    except Exception as exc:  # noqa: BLE001 - any failure means "fall back", reported below
        splats = _synthetic_head()
        why = f"{type(exc).__name__}: {str(exc)[:120]}"
        return splats, f"SYNTHETIC head shell ({splats.count} Gaussians) - demo avatar unavailable ({why})"


def _random_splats(n: int = 20_000):
    import torch

    from engine.render.splats import Splats

    g = torch.Generator().manual_seed(1)
    return Splats(
        torch.randn(n, 3, generator=g) * 0.1,
        torch.randn(n, 4, generator=g),
        torch.exp(torch.randn(n, 3, generator=g) * 0.5 - 5.0),
        torch.rand(n, generator=g) * 0.9 + 0.1,
        torch.randn(n, 16, 3, generator=g) * 0.2,
    )


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _worker(scene: str, backend: str, repeats: int) -> dict:
    """Time one scene/backend in this process; returns a dict of figures."""
    import torch

    from engine.render.camera import orbit_camera
    from engine.render.rasterize import render
    from engine.render.splats import Splats

    if scene.startswith("demo"):
        splats, desc = _demo_splats()
        fov = 20.0
    else:
        splats, desc = _random_splats(), "random 20k"
        fov = 30.0
    size = int(scene.rsplit("_", 1)[1])
    cam = orbit_camera(0.0, 0.0, 0.6, fov_y_deg=fov, width=size, height=size)
    tiny = orbit_camera(0.0, 0.0, 0.6, fov_y_deg=fov, width=32, height=32)
    t0 = time.perf_counter()
    if backend == "fast":  # the inference-only path (engine/render/fast_view.py): forward only, no gradients
        from engine.render.fast_view import FastSplatRenderer

        fast = FastSplatRenderer()
        fast.render(splats.subset(torch.arange(50)), tiny)  # kernel load / compile
    else:
        render(splats.subset(torch.arange(50)), tiny, backend=backend)  # kernel load / compile
    first_call_s = time.perf_counter() - t0
    leaves = [t.detach().clone().requires_grad_() for t in (splats.means, splats.quats, splats.scales,
                                                           splats.opacities, splats.sh)]
    base = _maxrss_mb()

    def fwd() -> None:
        if backend == "fast":
            fast.render(splats, cam)
            return
        with torch.no_grad():
            render(splats, cam, backend=backend)

    def fwdbwd() -> float:
        res = render(Splats(*leaves), cam, backend=backend)
        (res.rgb.mean() + res.depth.mean()).backward()
        for t in leaves:
            t.grad = None
        return float(res.alpha.detach().mean())

    coverage = fwdbwd() if backend != "fast" else float(fast.render(splats, cam).alpha.mean())  # untimed warm-up
    fwd()
    times: dict[str, list[float]] = {"fwd": [], "fwdbwd": [], "fwd_cpu": [], "fwdbwd_cpu": []}
    passes = (("fwd", fwd),) if backend == "fast" else (("fwd", fwd), ("fwdbwd", fwdbwd))
    for _ in range(repeats):
        for key, fn in passes:
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[key].append(time.perf_counter() - t0)
            times[key + "_cpu"].append(time.process_time() - c0)
    return {
        "scene": scene, "backend": backend, "desc": desc, "n": splats.count, "coverage": coverage,
        "fwd_ms": 1e3 * statistics.median(times["fwd"]), "fwdbwd_ms": 1e3 * statistics.median(times["fwdbwd"] or [0.0]),
        "fwd_min_ms": 1e3 * min(times["fwd"]), "fwdbwd_min_ms": 1e3 * min(times["fwdbwd"] or [0.0]),
        "fwd_cpu_ms": 1e3 * statistics.median(times["fwd_cpu"]),
        "fwdbwd_cpu_ms": 1e3 * statistics.median(times["fwdbwd_cpu"] or [0.0]),
        "peak_mb": _maxrss_mb() - base, "first_call_s": first_call_s,
    }


def _run_worker(scene: str, backend: str, repeats: int, env: dict[str, str] | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", scene, backend, str(repeats)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"bench worker {scene}/{backend} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cold_compile_s() -> float:
    """First-call time with an empty numba cache (a full compile of the CPU kernels), in a subprocess."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        return _run_worker("rand20k_64", "cpu", 1, env)["first_call_s"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no cold-compile run (< 1 minute)")
    parser.add_argument("--worker", nargs=3, metavar=("SCENE", "BACKEND", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import engine  # noqa: F401 - sets OMP_WAIT_POLICY=PASSIVE before torch loads (spinning pools: 10x slower)
    if args.worker:
        scene, backend, repeats = args.worker
        print(json.dumps(_worker(scene, backend, int(repeats))))
        return 0
    repeats = 3 if args.quick else 10
    runs = [("demo_256", "cpu"), ("demo_512", "cpu"), ("demo_512", "fast"), ("rand20k_256", "cpu"),
            ("rand20k_256", "torch")]
    figures: dict[str, float | str] = {}
    print(f"render bench: {os.cpu_count()} cores, {repeats} repeats, times are medians (min in brackets),")
    print("cpu-time = process CPU seconds (all threads) per call; it includes OpenMP spin-waiting, so it is not pure work")
    print("peak = growth of ru_maxrss (process peak RSS) over the post-warm-up baseline, per subprocess")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for scene, backend in runs:
        r = _run_worker(scene, backend, max(1, repeats // 3) if backend == "torch" else repeats)
        if scene.startswith("demo") and "demo_scene" not in figures:
            figures["demo_scene"] = r["desc"]
            print(f"demo scene: {r['desc']}")
        print(
            f"{scene:12s} {backend:5s} N={r['n']:6d} alpha={r['coverage']:.2f}  "
            f"fwd {r['fwd_ms']:7.1f} ms [{r['fwd_min_ms']:.1f}]  fwd+bwd {r['fwdbwd_ms']:7.1f} ms "
            f"[{r['fwdbwd_min_ms']:.1f}]  cpu-time {r['fwd_cpu_ms']:.0f}/{r['fwdbwd_cpu_ms']:.0f} ms  "
            f"peak +{r['peak_mb']:.0f} MB  (first call {r['first_call_s']:.2f} s)"
        )
        tag = scene.replace("rand", "") if backend == "cpu" else f"{scene.replace('rand', '')}_{backend}"
        figures[f"fwd_ms_{tag}"] = round(r["fwd_ms"], 1)
        figures[f"fwd_min_ms_{tag}"] = round(r["fwd_min_ms"], 1)
        if backend != "fast":
            figures[f"fwdbwd_ms_{tag}"] = round(r["fwdbwd_ms"], 1)
            figures[f"fwdbwd_min_ms_{tag}"] = round(r["fwdbwd_min_ms"], 1)
        figures[f"peak_mb_{tag}"] = round(r["peak_mb"], 1)
        if backend == "cpu":
            figures["first_call_s_warm_cache"] = round(r["first_call_s"], 2)
    if not args.quick:
        cold = _cold_compile_s()
        print(f"numba cold compile (empty cache) first call: {cold:.1f} s")
        figures["first_call_s_cold_compile"] = round(cold, 1)
    figures["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
