"""Modeling-stage benchmark: train on a synthetic dataset, report held-out PSNR/SSIM and speed.

Dataset: the demo head rendered at 256² by `dynamicavatars synth` (8 training cameras, 2 held-out
cameras; training frames from one sequence, held-out expressions from another).
Figures: PSNR/SSIM on (a) held-out cameras at training frames (val split) and (b) held-out
expressions (test split), wall time and iterations per second. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402,F401  (before torch: sets the OpenMP wait policy, see engine/__init__.py)

from engine.data.synth import SynthConfig, generate  # noqa: E402
from engine.data.vhap_format import read_dataset  # noqa: E402
from engine.head.model import load_head  # noqa: E402
from engine.train.config import DensifyConfig, TrainConfig  # noqa: E402
from engine.train.trainer import Trainer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small dataset and a ~45 s run")
    ap.add_argument("--iters", type=int, default=6000, help="iterations (the schedule spans these)")
    ap.add_argument("--minutes", type=float, default=20.0, help="stop training after this wall time")
    ap.add_argument("--data", default=str(ROOT / "out" / "bench_data"), help="where synthetic datasets are cached")
    args = ap.parse_args()

    if args.quick:
        synth = SynthConfig(size=96, train_frames=8, test_frames=4, train_cameras=6, heldout_cameras=2)
        iters, minutes = 400, 0.75
    else:
        synth = SynthConfig(size=256, train_frames=40, test_frames=16, train_cameras=8, heldout_cameras=2)
        iters, minutes = args.iters, args.minutes
    folder = Path(args.data) / f"synth{synth.size}_{synth.train_frames}x{synth.train_cameras}"
    if not (folder / "transforms_train.json").is_file():
        t0 = time.perf_counter()
        generate(folder, synth)
        print(f"generated {folder} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    dataset = read_dataset(folder)
    config = TrainConfig(iters=iters, resolution=synth.size, eval_interval=0, preview_interval=0, checkpoint_interval=0)
    if args.quick:
        config = replace(config, densify=DensifyConfig(start=100, interval=100))
    trainer = Trainer(load_head("demo"), dataset, config)
    start = time.perf_counter()
    while trainer.iteration < iters and time.perf_counter() - start < minutes * 60:
        stats = trainer.step()
        if stats.iteration % 250 == 0:
            print(f"it {stats.iteration} loss {stats.loss:.4f} psnr {stats.psnr:.2f} n={stats.gaussians} "
                  f"{time.perf_counter() - start:.0f}s", file=sys.stderr)
    wall = time.perf_counter() - start
    val, test = trainer.evaluate("val"), trainer.evaluate("test")
    print(json.dumps({
        "psnr_heldout_view_db": round(val["psnr"], 2),
        "psnr_heldout_expr_db": round(test["psnr"], 2),
        "ssim_heldout_view": round(val["ssim"], 4),
        "ssim_heldout_expr": round(test["ssim"], 4),
        "iters_per_s": round(trainer.iteration / wall, 2),
        "iterations": trainer.iteration,
        "wall_s": round(wall, 1),
        "gaussians": trainer.count,
        "resolution": synth.size,
        "quick": args.quick,
    }))


if __name__ == "__main__":
    main()
