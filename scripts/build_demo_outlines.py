"""Regenerate the demo avatar's fitted outlines (resources/demo_avatar/outlines.npz).

    .venv/bin/python scripts/build_demo_outlines.py [--steps 1500] [--work out/demo_outlines] [--out FILE]

Renders two synthetic datasets of the demo head (engine/data/synth.py: 40 expression frames × 9
cameras at 256 px, 20 × 9 at 512 px; seed 5, cameras over ±75° of yaw — not the datasets the masks
bench measures on, which use seed 0 and other cameras), kept in --work so a rerun skips them, then fits
the procedural demo Gaussians' geometry to their label maps (engine/train/demo_outlines.py) and writes
the result atomically. About 3 minutes of rendering and 6 of fitting on 2 CPU cores. Run it again
whenever engine/avatar/demo.py's builder or the demo head changes (load_demo_avatar then refuses the
old file, naming this script).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.avatar.demo import OUTLINES_FILE, load_demo_avatar, save_outlines
from engine.data.synth import SynthConfig, generate
from engine.data.vhap_format import read_dataset
from engine.train.demo_outlines import OutlineFitConfig, fit_outlines

DATASETS = {
    "synth256": SynthConfig(size=256, train_frames=40, test_frames=2, train_cameras=9, heldout_cameras=1,
                            yaw_range_deg=75.0, seed=5),
    "synth512": SynthConfig(size=512, train_frames=20, test_frames=2, train_cameras=9, heldout_cameras=1,
                            yaw_range_deg=75.0, seed=5),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=OutlineFitConfig.steps)
    ap.add_argument("--work", type=Path, default=Path("out/demo_outlines"), help="where the datasets are kept")
    ap.add_argument("--out", type=Path, default=OUTLINES_FILE)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    datasets = []
    for name, cfg in DATASETS.items():
        root = args.work / name
        if not (root / "transforms_train.json").is_file():
            print(f"rendering {root} ...", flush=True)
            generate(root, cfg)
        datasets.append(read_dataset(root))
    print(f"datasets ready in {time.perf_counter() - t0:.0f} s", flush=True)
    last = [0.0]

    def report(fraction: float, message: str) -> None:
        if fraction - last[0] >= 0.05 or fraction >= 1.0:
            last[0] = fraction
            print(f"{100 * fraction:5.1f}%  {message}", flush=True)

    fitted = fit_outlines(load_demo_avatar(outlines=False), datasets, OutlineFitConfig(steps=args.steps), report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"wrote {save_outlines(fitted, args.out)} after {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
