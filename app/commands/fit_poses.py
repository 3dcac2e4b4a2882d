"""Refine a trained avatar's per-frame FLAME parameters (default: its held-out frames) against its own renders."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.commands import add_head_arguments, head_arg
from app.errors import CommandError
from app.progress import progress_bar
from engine.avatar.files import load_avatar
from engine.data.vhap_format import read_dataset
from engine.train.pose_refine import PoseRefineConfig, refine_avatar_folder


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = PoseRefineConfig()
    p.add_argument("avatar", help="avatar folder written by training (RUN/avatar); its FLAME parameters are rewritten")
    p.add_argument("--dataset", default=None, help="the dataset it was trained on (default: the one it remembers)")
    p.add_argument("--split", default="test", help="split whose timesteps are refined (default: test, the held-out)")
    p.add_argument("--holdout-time", type=float, default=None, metavar="FRACTION",
                   help="split the dataset by time as `train --holdout-time` did")
    p.add_argument("--iters", type=int, default=d.iters, help=f"steps per frame (default {d.iters})")
    p.add_argument("--resolution", type=int, default=d.resolution,
                   help=f"longer image side rendered at (default {d.resolution})")
    add_head_arguments(p)


def run(args: argparse.Namespace) -> int:
    if args.iters < 1 or args.resolution < 2:
        raise CommandError("--iters must be 1 or more and --resolution 2 or more")
    if args.holdout_time is not None and not 0 <= args.holdout_time < 1:
        raise CommandError(f"--holdout-time must be in [0, 1), got {args.holdout_time:g}")
    head = head_arg(args)
    source = args.dataset or load_avatar(args.avatar, head).dataset
    if source is None:
        raise CommandError(f"{args.avatar}: the avatar does not say which dataset it was trained on; pass --dataset")
    dataset = read_dataset(source, time_holdout=args.holdout_time)
    config = PoseRefineConfig(iters=args.iters, resolution=args.resolution)
    with progress_bar("fit-poses") as progress:
        result = refine_avatar_folder(args.avatar, dataset, args.split, config, head, progress)
    n = max(1, len(result.timesteps))
    print(f"refined {len(result.timesteps)} frame(s) of {Path(args.avatar)}: photometric loss "
          f"{sum(result.loss_before) / n:.4f} -> {sum(result.loss_after) / n:.4f}")
    return 0
