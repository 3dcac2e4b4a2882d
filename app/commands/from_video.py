"""Make an avatar from a video in one go: ingest (landmarks, foreground, FLAME fit), then training."""

from __future__ import annotations

import argparse
from dataclasses import replace

from app.commands.ingest import add_ingest_arguments, ingest_config
from app.errors import CommandError
from app.progress import progress_bar
from engine.track.from_video import MONOCULAR, from_video
from engine.track.landmarks import LandmarkerUnavailable
from engine.train.config import TrainConfig
from engine.train.pose_refine import PoseRefineConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("video", help="a video (mp4, mov, webm, …), a folder of images, or one photo")
    p.add_argument("--out", required=True, help="run folder: dataset/, avatar/, checkpoint.pt, metrics.json")
    add_ingest_arguments(p)
    p.add_argument("--iters", type=int, default=d.iters, help="training steps")
    p.add_argument("--resolution", type=int, default=d.resolution, help="longer image side used for training")
    p.add_argument("--finetune-flame", action=argparse.BooleanOptionalAction, default=True,
                   help="refine the training frames' FLAME parameters while training (default on)")
    p.add_argument("--fit-poses", action=argparse.BooleanOptionalAction, default=True,
                   help="after training, refine the held-out frames' FLAME parameters against the avatar's renders "
                        "(default on; `dynamicavatars fit-poses` does it alone)")
    p.add_argument("--resume", action="store_true",
                   help="keep a complete OUT/dataset and continue training from OUT/checkpoint.pt")


def run(args: argparse.Namespace) -> int:
    config = ingest_config(args)
    if args.iters < 1:
        raise CommandError(f"--iters must be 1 or more, got {args.iters}")
    train_config = replace(MONOCULAR, iters=args.iters, resolution=args.resolution, finetune_flame=args.finetune_flame)
    refine_config = PoseRefineConfig() if args.fit_poses else None
    with progress_bar("from-video") as progress:
        try:
            result = from_video(args.video, args.out, config, train_config, head=args.flame, resume=args.resume,
                                progress=progress, refine_config=refine_config)
        except LandmarkerUnavailable as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            print("interrupted; run again with --resume to continue")
            return 130
    if result.ingest is not None:
        print(f"dataset {result.dataset}: {result.ingest.frames} frames, landmark error "
              f"{result.ingest.residual_px:.2f} px median")
    for split, m in result.train.metrics.items():
        if m:
            print(f"{split}: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f} over {int(m['frames'])} frames")
    if result.refine is not None and result.refine.timesteps:
        n = len(result.refine.timesteps)
        print(f"held-out poses refined on {n} frame(s): photometric loss {sum(result.refine.loss_before) / n:.4f} -> "
              f"{sum(result.refine.loss_after) / n:.4f}, PSNR {result.psnr_after_refine:.2f} dB")
    print(f"wrote {result.train.out / 'avatar'} ({result.train.iterations} iterations)")
    return 0
