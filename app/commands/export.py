"""Export an avatar or project as an mp4 video, PNG frames, or splat files."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from app.cli import CommandError
from app.commands import add_head_arguments, head_arg
from app.progress import progress_bar
from engine.export.camera_paths import CameraPath
from engine.export.video import RENDERERS, ExportCancelled, VideoJob, VideoSettings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("avatar", metavar="AVATAR", help="project (.dap), avatar folder, point_cloud.ply, GaussianAvatars output folder, or 'demo'")
    add_head_arguments(p)
    out = p.add_argument_group("outputs (one or more)")
    out.add_argument("--video", metavar="OUT.mp4", help="H.264 mp4 to write")
    out.add_argument("--frames", metavar="DIR", help="folder to write PNG frames into")
    out.add_argument("--splats", metavar="OUT.ply", help="standard world-space 3DGS ply at the current expression")
    out.add_argument("--gaussianavatars", metavar="DIR", help="animatable GaussianAvatars folder (ply + FLAME params)")
    motion = p.add_argument_group("motion")
    motion.add_argument("--sequence", metavar="SEQ.npz", help="FLAME sequence to play (flame_param.npz layout)")
    cam = motion.add_mutually_exclusive_group()
    cam.add_argument("--orbit", action="store_true", help="camera circles the head once")
    cam.add_argument("--dolly", action="store_true", help="camera moves toward the head")
    motion.add_argument("--expr", nargs="*", default=[], metavar="NAME=VALUE", help="held expression, e.g. smile=0.8")
    motion.add_argument("--duration", type=float, default=4.0, help="seconds when one expression is held (default 4)")
    motion.add_argument("--distance", type=float, default=None, help="camera distance in metres (default: fit the head)")
    motion.add_argument("--cam-pitch", type=float, default=0.0, help="camera elevation in degrees")
    enc = p.add_argument_group("video")
    enc.add_argument("--fps", type=float, default=25.0, help="frames per second (default 25)")
    enc.add_argument("--size", type=int, nargs="+", default=[512], metavar="PX", help="frame size: S or W H (even)")
    enc.add_argument("--crf", type=int, default=18, help="H.264 quality, 0 (lossless) .. 51 (default 18)")
    enc.add_argument("--side-by-side", action="store_true", help="original | edited (projects with layers)")
    enc.add_argument("--mask", metavar="SELECTION", help="overlay a project's named selection")
    enc.add_argument("--renderer", choices=RENDERERS, default="auto",
                     help="gl (EGL), fast (numba CPU), raster, or auto (gl on a hardware OpenGL driver, else fast)")


def _load(args: argparse.Namespace) -> tuple[object, object, object, object]:
    """(edited avatar, original avatar, the layers' pose offset, project or None)."""
    from engine.avatar.demo import load_demo_avatar
    from engine.avatar.files import load_avatar
    from engine.project.project_file import PROJECT_SUFFIX, load_project

    if args.avatar == "demo":
        avatar = load_demo_avatar()
        return avatar, avatar, None, None
    if Path(args.avatar).suffix == PROJECT_SUFFIX:
        project = load_project(args.avatar, head=head_arg(args))
        return project.composed_avatar(), project.avatar, project.pose_offset(), project
    if not Path(args.avatar).exists():
        raise CommandError(f"{args.avatar}: no such avatar, project or file")
    avatar = load_avatar(args.avatar, head=head_arg(args))
    return avatar, avatar, None, None


@contextlib.contextmanager
def _ctrl_c_cancels() -> Iterator[threading.Event]:
    """Ctrl-C sets the returned event (the export stops cleanly after the current frame)."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = signal.signal(signal.SIGINT, lambda *_: event.set())
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def _settings(args: argparse.Namespace, project: object) -> VideoSettings:
    if len(args.size) not in (1, 2) or min(args.size) <= 0:
        raise CommandError("--size takes one or two positive numbers")
    width, height = (args.size[0], args.size[0]) if len(args.size) == 1 else args.size
    if (args.side_by_side or args.mask) and project is None:
        raise CommandError("--side-by-side and --mask need a project (.dap) as AVATAR")
    return VideoSettings(width=width, height=height, fps=args.fps, crf=args.crf, duration_s=args.duration,
                         side_by_side=args.side_by_side, mask_overlay=bool(args.mask), renderer=args.renderer)


def _job(args: argparse.Namespace, avatar, original, offset, project) -> VideoJob:
    from app.commands.render import parse_named_values
    from engine.avatar.posing import Pose, apply_pose
    from engine.export.video import load_sequence

    kind = "orbit" if args.orbit else "dolly" if args.dolly else "fixed"
    path = CameraPath(kind, pitch_deg=args.cam_pitch, distance=args.distance)
    if args.sequence:
        sequence = load_sequence(args.sequence, avatar)
    elif args.expr or kind != "fixed":
        sequence = apply_pose(avatar, Pose(expressions=parse_named_values(args.expr, "--expr")))
    else:
        sequence = None
    mask = None
    if args.mask:
        if args.mask not in project.selections:
            raise CommandError(f"project has no selection {args.mask!r}; it has {', '.join(project.selections) or 'none'}")
        mask = project.selections[args.mask].float()
        if mask.shape[0] != avatar.gaussians.count:
            raise CommandError(f"selection {args.mask!r} has {mask.shape[0]} entries; the avatar has {avatar.gaussians.count} Gaussians")
    return VideoJob(avatar, sequence, path, original if args.side_by_side else None, mask, offset)


def run(args: argparse.Namespace) -> int:
    from engine.export.splat_export import export_gaussianavatars, export_standard_ply
    from engine.export.video import export_frames, export_video

    if not (args.video or args.frames or args.splats or args.gaussianavatars):
        raise CommandError("nothing to export: give --video, --frames, --splats and/or --gaussianavatars")
    avatar, original, offset, project = _load(args)
    job = _job(args, avatar, original, offset, project)
    if args.splats:
        params = job.sequence.frame(0) if job.sequence is not None else None
        print(f"wrote {export_standard_ply(avatar, args.splats, params, offset)}")
    if args.gaussianavatars:
        print(f"wrote {export_gaussianavatars(avatar, args.gaussianavatars, job.sequence, offset)}")
    for kind, target, fn in (("video", args.video, export_video), ("frames", args.frames, export_frames)):
        if not target:
            continue
        settings = _settings(args, project)
        with _ctrl_c_cancels() as stop, progress_bar(f"export {kind}") as progress:
            try:
                result = fn(job, target, settings, progress=progress, cancel=stop.is_set)
            except ExportCancelled:
                print(f"dynamicavatars export: cancelled; {target} was not written")
                return 130
        per_frame = (result.render_s + result.encode_s) / max(1, result.frames)
        print(f"wrote {result.path} ({result.frames} frames, {result.width}x{result.height}, "
              f"{result.renderer} renderer, {per_frame:.3f} s/frame)")
    return 0
