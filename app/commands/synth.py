"""Write a synthetic multi-view dataset of the demo head (VHAP / GaussianAvatars layout)."""

from __future__ import annotations

import argparse

from app.progress import progress_bar
from engine.data.synth import SynthConfig, generate


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = SynthConfig()
    p.add_argument("out", help="dataset folder to write")
    p.add_argument("--size", type=int, default=d.size, help="image size in pixels")
    p.add_argument("--frames", type=int, default=d.train_frames, help="timesteps of the training sequence")
    p.add_argument("--test-frames", type=int, default=d.test_frames, help="timesteps of the held-out expression sequence")
    p.add_argument("--cameras", type=int, default=d.train_cameras, help="training cameras")
    p.add_argument("--heldout-cameras", type=int, default=d.heldout_cameras, help="held-out cameras")
    p.add_argument("--seed", type=int, default=d.seed, help="varies the sequences")


def run(args: argparse.Namespace) -> int:
    config = SynthConfig(size=args.size, train_frames=args.frames, test_frames=args.test_frames,
                         train_cameras=args.cameras, heldout_cameras=args.heldout_cameras, seed=args.seed)
    with progress_bar("synth") as progress:
        out = generate(args.out, config, progress=progress)
    print(f"wrote {out}")
    return 0
