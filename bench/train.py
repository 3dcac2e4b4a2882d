"""Modeling-stage benchmark: train on a synthetic dataset, report held-out PSNR/SSIM and speed.

Dataset: the demo head rendered at 256² by `dynamicavatars synth` (8 training cameras, 2 held-out
cameras; training frames from one sequence, held-out expressions from another).
Figures: PSNR/SSIM on (a) held-out cameras at training frames (val split) and (b) held-out
expressions (test split), wall time and iterations per second. Ends with one JSON line.

--ranks N: the same schedule with N frames per step, trained by one process (in this one, --threads
threads) and by N processes (`dynamicavatars train --nproc N`: torchrun, gloo, cores split between
them), in one run. Figures: iterations and frames per second of each (steady state: the first WARMUP
steps left out), the speedup, each rank's compute and all_reduce (sync, waiting included) time per
step, and the largest difference between the two runs' final parameters (they must agree). On a
shared machine the figures depend on its load (reported): N processes get N shares of a busy CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402,F401  (before torch: sets the OpenMP wait policy, see engine/__init__.py)

from engine.data.synth import SynthConfig, generate  # noqa: E402
from engine.data.vhap_format import read_dataset  # noqa: E402
from engine.head.model import load_head  # noqa: E402
from engine.train.checkpoint import load_checkpoint  # noqa: E402
from engine.train.config import DensifyConfig, TrainConfig, write_config  # noqa: E402
from engine.train.run import TrainReport, train  # noqa: E402
from engine.train.trainer import Trainer  # noqa: E402

WARMUP = 2  # first steps left out of the rates (numba cache load, first touch of every buffer, rendezvous)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small dataset and a ~45 s run")
    ap.add_argument("--iters", type=int, default=6000, help="iterations (the schedule spans these)")
    ap.add_argument("--minutes", type=float, default=20.0, help="stop training after this wall time")
    ap.add_argument("--data", default=str(ROOT / "out" / "bench_data"), help="where synthetic datasets are cached")
    ap.add_argument("--ranks", type=int, default=None, metavar="N",
                    help="compare N training processes against one, N frames per step each (see above)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the one-process run (--ranks)")
    args = ap.parse_args()
    if args.ranks is not None:
        ranks_main(args)
        return

    if args.quick:
        synth = SynthConfig(size=96, train_frames=8, test_frames=4, train_cameras=6, heldout_cameras=2)
        iters, minutes = 400, 0.75
    else:
        synth = SynthConfig(size=256, train_frames=40, test_frames=16, train_cameras=8, heldout_cameras=2)
        iters, minutes = args.iters, args.minutes
    dataset = read_dataset(_dataset(synth, args.data))
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


def _dataset(synth: SynthConfig, root: str) -> Path:
    """The cached synthetic dataset for `synth` (made when missing)."""
    folder = Path(root) / f"synth{synth.size}_{synth.train_frames}x{synth.train_cameras}"
    if not (folder / "transforms_train.json").is_file():
        t0 = time.perf_counter()
        generate(folder, synth)
        print(f"generated {folder} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return folder


def _steady_rate(seconds_at: dict[int, float]) -> float:
    """Iterations per second between step WARMUP and the last (seconds_at: iteration -> seconds since start)."""
    last = max(seconds_at)
    first = min(WARMUP, last - 1)
    return (last - first) / (seconds_at[last] - seconds_at[first])


def ranks_main(args: argparse.Namespace) -> None:
    n = args.ranks
    assert n >= 2, f"--ranks must be 2 or more, got {n}"
    if args.quick:
        synth, iters = SynthConfig(size=64, train_frames=4, test_frames=1, train_cameras=4, heldout_cameras=1), 12
    else:
        synth, iters = SynthConfig(size=256, train_frames=40, test_frames=16, train_cameras=8, heldout_cameras=2), 200
    folder = _dataset(synth, args.data)
    work = ROOT / "out" / "bench_train_ranks"
    shutil.rmtree(work, ignore_errors=True)
    config = TrainConfig(iters=iters, resolution=synth.size, frames_per_step=n, eval_interval=0, preview_interval=0,
                         checkpoint_interval=0, densify=DensifyConfig(start=iters // 2, interval=iters // 2))
    config_file = write_config(config, work / "train_config.json")

    torch.set_num_threads(args.threads)
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)  # read when the renderer first imports numba
    one: dict[int, float] = {}

    def record(r: TrainReport) -> None:
        one[r.step.iteration] = r.seconds

    single = train(folder, work / "one", config, report=record, final_eval_frames=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "app.cli", "train", str(folder), "--out", str(work / "many"),
                           "--config", str(config_file), "--nproc", str(n), "--progress", "jsonl"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"the {n}-process run failed:\n{done.stderr[-3000:]}")
    lines = [json.loads(t) for t in done.stdout.splitlines() if t.startswith("{")]
    steps = [ln for ln in lines if ln["event"] == "step"]
    many = {ln["iteration"]: ln["seconds"] for ln in steps if ln["rank"] == 0}
    steady = [ln for ln in steps if ln["iteration"] > WARMUP]
    a, b = load_checkpoint(work / "one" / "checkpoint.pt"), load_checkpoint(work / "many" / "checkpoint.pt")
    diff = max(float((a["params"][k] - b["params"][k]).abs().max()) if a["params"][k].shape == b["params"][k].shape
               else float("inf") for k in a["params"])
    rate_one, rate_many = _steady_rate(one), _steady_rate(many)
    print(json.dumps({
        "ranks": n,
        "frames_per_step": n,
        "iters_per_s_1rank": round(rate_one, 3),
        "iters_per_s_ranks": round(rate_many, 3),
        "frames_per_s_1rank": round(rate_one * n, 3),
        "frames_per_s_ranks": round(rate_many * n, 3),
        "speedup": round(rate_many / rate_one, 3),
        "compute_ms_per_step_rank": round(1000 * sum(ln["compute_s"] for ln in steady) / len(steady), 1),
        "sync_ms_per_step_rank": round(1000 * sum(ln["sync_s"] for ln in steady) / len(steady), 1),
        "threads_1rank": args.threads,
        "threads_per_rank": max(1, (os.cpu_count() or 1) // n),
        "params_max_abs_diff": diff,
        "final_loss_1rank": round(a["history"][-1]["loss"], 5),
        "final_loss_ranks": round(b["history"][-1]["loss"], 5),
        "iterations": iters,
        "gaussians": int(b["params"]["xyz"].shape[0]),
        "resolution": synth.size,
        "seconds_1rank": round(single.seconds, 1),
        "load_average": round(os.getloadavg()[0], 1),  # of the machine during the run (shared cores)
        "quick": args.quick,
    }))


if __name__ == "__main__":
    main()
