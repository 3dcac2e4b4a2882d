"""GPU check: proves that rendering, training and edit optimisation really run on CUDA through gsplat.

On a machine with CUDA it (1) renders the demo avatar with gsplat on the GPU and with the CPU
reference and compares the images (PSNR between them), (2) trains a few steps of the modeling stage
with TrainConfig(device="cuda") on a small synthetic dataset and checks that the Gaussians, their
optimiser state and the renders live on the GPU and that the loss falls, and (3) runs a short edit
optimisation with OptimConfig(device="cuda"). Without CUDA it says so (and why) and reports no
figures: nothing here falls back to the CPU silently. --rehearse runs the same checks on the CPU
(numba renderer instead of gsplat) to prove the script itself where no GPU is. Ends with one JSON line.

    .venv/bin/python bench/gpu_check.py --quick
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402,F401  (before torch: sets the OpenMP wait policy, see engine/__init__.py)

import torch  # noqa: E402


def _cuda_state() -> tuple[bool, str]:
    """(usable, why not / which GPU)."""
    if not torch.cuda.is_available():
        build = torch.version.cuda or "none (a CPU build)"
        return False, f"torch {torch.__version__} sees no CUDA device (CUDA in this torch build: {build})"
    try:
        import gsplat  # noqa: F401
    except ImportError as exc:
        return False, f"CUDA is here but gsplat does not import ({exc})"
    return True, torch.cuda.get_device_name(0)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float().cpu() - b.float().cpu()) ** 2).mean())
    return 99.0 if mse == 0 else 10.0 * float(torch.log10(torch.tensor(1.0 / mse)))


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn, repeats: int, device: str) -> tuple[object, float]:
    fn()  # warm-up (kernel build, caches)
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    _sync(device)
    return out, 1000.0 * (time.perf_counter() - start) / repeats


def check_render(size: int, repeats: int, device: str) -> dict[str, float]:
    from engine.avatar.demo import load_demo_avatar
    from engine.render.camera import framing, orbit_camera
    from engine.render.rasterize import render

    cpu_avatar = load_demo_avatar()
    gpu_avatar = cpu_avatar.to(device)
    target, distance = framing(cpu_avatar.posed_vertices(), 22.0)
    camera = orbit_camera(20.0, 5.0, distance, target, 22.0, size, size)
    backend = "gsplat" if device == "cuda" else "cpu"
    with torch.no_grad():
        gpu_splats, cpu_splats = gpu_avatar.splats(), cpu_avatar.splats()
        gpu, gpu_ms = _timed(lambda: render(gpu_splats, camera, backend=backend), repeats, device)
        cpu, cpu_ms = _timed(lambda: render(cpu_splats, camera, backend="torch"), 1, "cpu")
    assert gpu.rgb.device.type == device, f"the {backend} render is not on {device}"
    return {"render_psnr_vs_cpu_reference_db": round(_psnr(gpu.rgb, cpu.rgb), 2), "render_ms_on_device": round(gpu_ms, 2),
            "render_ms_cpu_reference": round(cpu_ms, 1)}


def check_training(folder: Path, steps: int, size: int, device: str) -> dict[str, float | bool]:
    from engine.data.synth import SynthConfig, generate
    from engine.data.vhap_format import read_dataset
    from engine.head.model import load_head
    from engine.train.config import TrainConfig
    from engine.train.trainer import Trainer

    if not (folder / "transforms_train.json").is_file():
        generate(folder, SynthConfig(size=size, train_frames=4, test_frames=2, train_cameras=4, heldout_cameras=1))
    config = TrainConfig(iters=steps, resolution=size, device=device, eval_interval=0, preview_interval=0,
                         checkpoint_interval=0)
    trainer = Trainer(load_head("demo"), read_dataset(folder), config)
    before = trainer.evaluate("val")["psnr"]
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    _sync(device)
    wall = time.perf_counter() - start
    where = lambda t: t.device.type == device  # noqa: E731
    on_gpu = all(where(p) for p in trainer.params.values()) and where(trainer.head.v_template)
    on_gpu &= all(where(s["exp_avg"]) for s in trainer.optimizer.state.values() if "exp_avg" in s)
    after = trainer.evaluate("val")["psnr"]
    return {"train_on_device": bool(on_gpu), "train_steps_per_s": round(steps / wall, 2),
            "train_val_psnr_before_db": round(before, 2), "train_val_psnr_after_db": round(after, 2)}


def check_edit(steps: int, device: str) -> dict[str, float | bool]:
    from engine.avatar.demo import load_demo_avatar
    from engine.edit.editors import EditorSettings, make_editor
    from engine.edit.optimise import OptimConfig
    from engine.edit.run import EditConfig, run_edit
    from engine.head.components import labels_of
    from engine.prompting import refine

    avatar = load_demo_avatar(count=20000)
    lips = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(["lips"])))
    config = EditConfig(size=128, keyframes=4, min_steps=steps, max_steps=steps, discriminator=False,
                        optim=OptimConfig(device=device))
    start = time.perf_counter()
    result = run_edit(avatar, lips, refine("make the lips blue").plan, make_editor(EditorSettings()), config)
    return {"edit_ok": result is not None and result.layer.indices.numel() > 0,
            "edit_s": round(time.perf_counter() - start, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small renders and a few dozen steps (under a minute)")
    ap.add_argument("--data", default=str(ROOT / "out" / "bench_data"), help="where the synthetic dataset is cached")
    ap.add_argument("--rehearse", action="store_true", help="run the same checks on the CPU (proves the script only)")
    args = ap.parse_args()
    usable, detail = _cuda_state()
    device = "cpu" if args.rehearse else "cuda"
    figures: dict[str, object] = {"cuda": usable, "device": device, "quick": args.quick}
    if not usable and not args.rehearse:
        figures["reason"] = detail
        print(f"no GPU check here: {detail}", file=sys.stderr)
        print(json.dumps(figures))
        return
    figures["gpu"] = detail if usable else None
    size, steps = (128, 50) if args.quick else (512, 1000)
    if args.rehearse:
        size, steps = 64, 5
    figures.update(check_render(size, 5 if args.quick else 50, device))
    figures.update(check_training(Path(args.data) / f"gpu_synth{min(size, 256)}", steps, min(size, 256), device))
    figures.update(check_edit(5 if args.rehearse else 20 if args.quick else 200, device))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
