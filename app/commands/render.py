"""Render an avatar at an expression, pose and camera to a PNG."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from app.cli import CommandError
from app.commands import add_head_arguments, load_avatar_arg
from engine.avatar.posing import Pose
from engine.io.images import save_png
from engine.render.rasterize import resolve_device
from engine.view import FramePipeline, SessionState, framing_camera

BACKENDS = ("auto", "gl", "cpu", "torch", "gsplat")


def parse_named_values(items: list[str], what: str) -> dict[str, float]:
    """{'smile': 0.8} from ['smile=0.8']."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise CommandError(f"{what} must look like NAME=VALUE, got {item!r}") from None
        if not sep or not name.strip():
            raise CommandError(f"{what} must look like NAME=VALUE, got {item!r}")
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--avatar", default="demo",
                   help="avatar folder, point_cloud.ply, GaussianAvatars output folder, or 'demo' (default)")
    add_head_arguments(p, device=True)
    p.add_argument("--expr", nargs="*", default=[], metavar="NAME=VALUE", help="expression weights, e.g. smile=0.8")
    p.add_argument("--frame", type=int, default=0, help="frame of the avatar's own FLAME sequence")
    p.add_argument("--jaw", type=float, default=0.0, help="jaw opening in radians")
    p.add_argument("--yaw", type=float, default=0.0, help="head yaw in degrees")
    p.add_argument("--pitch", type=float, default=0.0, help="head pitch in degrees")
    p.add_argument("--roll", type=float, default=0.0, help="head roll in degrees")
    p.add_argument("--gaze", type=float, nargs=2, default=(0.0, 0.0), metavar=("X", "Y"), help="eye gaze in degrees")
    p.add_argument("--cam-yaw", type=float, default=0.0, help="camera orbit yaw in degrees")
    p.add_argument("--cam-pitch", type=float, default=0.0, help="camera orbit pitch in degrees")
    p.add_argument("--distance", type=float, default=None, help="camera distance in metres (default: frame the head)")
    p.add_argument("--fov", type=float, default=22.0, help="vertical field of view in degrees")
    p.add_argument("--size", type=int, nargs="+", default=[512], metavar="PX", help="image size: S or W H")
    p.add_argument("--background", type=float, nargs=3, default=(1.0, 1.0, 1.0), metavar=("R", "G", "B"))
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="renderer, as the viewport's (auto: gsplat with CUDA, else OpenGL on a GPU, else the CPU rasterizer)")
    p.add_argument("--out", required=True, help="PNG file to write")


def run(args: argparse.Namespace) -> int:
    """The viewport's own path: a session state (avatar, frame, pose, camera, background) -> one frame."""
    device = resolve_device(args.device)
    avatar = load_avatar_arg(args)
    pose = Pose(
        expressions=parse_named_values(args.expr, "--expr"),
        jaw=args.jaw, yaw=args.yaw, pitch=args.pitch, roll=args.roll, gaze_x=args.gaze[0], gaze_y=args.gaze[1],
    )
    if len(args.size) not in (1, 2) or min(args.size) <= 0:
        raise CommandError("--size takes one or two positive numbers")
    width, height = (args.size[0], args.size[0]) if len(args.size) == 1 else args.size
    start = time.perf_counter()
    state = SessionState()
    state.set_avatar(avatar)
    state.set_frame(args.frame)
    state.set_pose(pose)
    framed = framing_camera(avatar, args.fov, width / height, avatar.frame_params(args.frame))
    state.set_camera(replace(framed, yaw=args.cam_yaw, pitch=args.cam_pitch, distance=args.distance or framed.distance))
    state.set_view_options(background=tuple(args.background))
    pipeline = FramePipeline("gsplat" if device.type == "cuda" else args.backend)  # gsplat draws on CUDA
    try:
        frame = pipeline.render(state.request(1, width, height))
    finally:
        pipeline.release()
    assert frame is not None
    save_png(args.out, frame.image)
    print(f"wrote {args.out} ({width}x{height}, {frame.gaussians} Gaussians, {frame.backend} renderer, "
          f"{1000 * (time.perf_counter() - start):.0f} ms)")
    return 0
