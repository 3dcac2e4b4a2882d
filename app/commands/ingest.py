"""Make a tracked dataset from a video, a folder of images or one photo (landmarks, foreground, FLAME fit)."""

from __future__ import annotations

import argparse

from app.errors import CommandError
from app.progress import progress_bar
from engine.track.config import TrackConfig
from engine.track.ingest import IngestConfig, ingest
from engine.track.landmarks import LandmarkerUnavailable
from engine.track.sources import FrameSelection


def add_ingest_arguments(p: argparse.ArgumentParser) -> None:
    """The options `ingest` and `from-video` share."""
    d, t = IngestConfig(), TrackConfig()
    p.add_argument("--start", type=float, default=0.0, help="first second to take (image number for a folder)")
    p.add_argument("--end", type=float, default=None, help="second to stop before (default: the end)")
    p.add_argument("--stride", type=int, default=1, help="keep every N-th frame of the range")
    p.add_argument("--max-frames", type=int, default=None, help="take at most this many frames")
    p.add_argument("--size", type=int, default=d.size, help="longer side of the dataset's images in pixels")
    p.add_argument("--crop", choices=("auto", "none"), default=d.crop,
                   help="auto: one square crop around the face for the whole clip; none: whole frames")
    p.add_argument("--holdout", type=float, default=d.holdout,
                   help="later fraction of the frames held out for evaluation (the test split)")
    p.add_argument("--no-masks", action="store_true", help="do not segment the foreground (keep the background)")
    p.add_argument("--photometric", type=int, default=t.photometric_iters, metavar="STEPS",
                   help="steps per chunk of the final photometric tracking pass (0: landmarks only)")
    p.add_argument("--flame", default=None, help="FLAME model file/folder (default: the demo head)")


def ingest_config(args: argparse.Namespace) -> IngestConfig:
    """IngestConfig from the shared options (CommandError for bad values)."""
    if not 0 <= args.holdout < 1:
        raise CommandError(f"--holdout must be in [0, 1), got {args.holdout:g}")
    if args.size < 16:
        raise CommandError(f"--size must be at least 16 pixels, got {args.size}")
    if args.photometric < 0:
        raise CommandError(f"--photometric must be 0 or more, got {args.photometric}")
    try:
        selection = FrameSelection(args.start, args.end, args.stride, args.max_frames)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    track = TrackConfig(photometric_iters=args.photometric)
    return IngestConfig(selection, args.size, args.crop, args.holdout, not args.no_masks, track)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="a video (mp4, mov, webm, …), a folder of images, or one photo")
    p.add_argument("--out", required=True, help="dataset folder to write (VHAP / GaussianAvatars layout)")
    add_ingest_arguments(p)


def run(args: argparse.Namespace) -> int:
    config = ingest_config(args)
    with progress_bar("ingest") as progress:
        try:
            result = ingest(args.input, args.out, config, head=args.flame, progress=progress)
        except LandmarkerUnavailable as exc:
            raise CommandError(str(exc)) from None
    per_frame = result.tracking_seconds / max(1, result.frames)
    print(f"wrote {result.dataset}: {result.frames} frames (face found in {result.found}), landmark error "
          f"{result.residual_px:.2f} px median, focal {result.focal:.0f} px, tracking {per_frame:.2f} s/frame, "
          f"{result.seconds:.0f} s in all")
    return 0
