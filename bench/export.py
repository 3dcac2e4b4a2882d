"""Seconds per exported video frame at 512² for the demo avatar, split into render and encode.

The demo avatar talks (smile and jaw oscillate) while the camera orbits; frames go through
engine.export.video.export_video to an H.264 mp4 (crf 18, preset medium) in a temporary folder.
`render` includes posing the avatar (FLAME + binding), reported separately as `pose`. Runs with the
OpenGL renderer (EGL) when available, and with the rasterizer for comparison unless --gl-only.

    .venv/bin/python bench/export.py --quick
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402,F401  (before torch: sets the OpenMP wait policy, see engine/__init__.py)


def talking_sequence(avatar: Avatar, frames: int) -> FlameParams:  # noqa: F821
    """The avatar's neutral frame repeated, with smile and jaw oscillating (one cycle per 25 frames)."""
    import torch

    p = avatar.head.neutral_params(frames)
    t = torch.arange(frames, dtype=torch.float32) / 25.0
    expr = p.expr.clone()
    names = avatar.head.expression_names
    expr[:, names.index("smile") if "smile" in names else 0] = 0.5 + 0.5 * torch.sin(2 * math.pi * t)
    jaw = p.jaw_pose.clone()
    jaw[:, 0] = 0.12 * (1 + torch.sin(2 * math.pi * t + 1.0))
    return p.with_values(expr=expr, jaw_pose=jaw)


def run_one(avatar, frames: int, renderer: str, size: int) -> dict[str, float | str]:
    from engine.export.camera_paths import CameraPath
    from engine.export.video import VideoJob, VideoSettings, export_video

    job = VideoJob(avatar, talking_sequence(avatar, frames), CameraPath("orbit", sweep_deg=60.0))
    settings = VideoSettings(width=size, height=size, fps=25.0, renderer=renderer)
    with tempfile.TemporaryDirectory() as tmp:
        r = export_video(job, Path(tmp) / "bench.mp4", settings)
        mb = (Path(tmp) / "bench.mp4").stat().st_size / 1e6
    n = r.frames
    return {"renderer": r.renderer, "frames": n, "s_per_frame": (r.render_s + r.encode_s) / n,
            "render_s_per_frame": r.render_s / n, "pose_s_per_frame": r.pose_s / n,
            "encode_s_per_frame": r.encode_s / n, "mp4_mb": mb}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 frames per renderer (under a minute)")
    parser.add_argument("--frames", type=int, default=50, help="frames per run without --quick")
    parser.add_argument("--size", type=int, default=512, help="square frame size in pixels")
    parser.add_argument("--gl-only", action="store_true", help="skip the rasterizer run")
    args = parser.parse_args()
    import torch

    from engine.avatar.demo import load_demo_avatar

    torch.set_num_threads(2)
    avatar = load_demo_avatar()
    with torch.no_grad():
        avatar.splats(avatar.frame_params(0))  # warm-up: the first posing pays one-off costs (~1 s)
    frames = 8 if args.quick else args.frames
    runs = [run_one(avatar, frames, "auto", args.size)]
    if not args.gl_only and runs[0]["renderer"] == "gl":
        runs.append(run_one(avatar, max(2, frames // 4), "raster", args.size))
    for r in runs:
        print(f"{r['renderer']:>6}: {r['frames']} frames at {args.size}², {r['s_per_frame']:.3f} s/frame "
              f"(render {r['render_s_per_frame']:.3f} of which pose {r['pose_s_per_frame']:.3f}, "
              f"encode {r['encode_s_per_frame']:.4f}), mp4 {r['mp4_mb']:.2f} MB")
    best = runs[0]
    summary = {"bench": "export", "size": [args.size, args.size], "gaussians": avatar.gaussians.count,
               "renderer": best["renderer"], "frames": best["frames"],
               "s_per_frame": round(best["s_per_frame"], 4),
               "render_s_per_frame": round(best["render_s_per_frame"], 4),
               "pose_s_per_frame": round(best["pose_s_per_frame"], 4),
               "encode_s_per_frame": round(best["encode_s_per_frame"], 4)}
    if len(runs) > 1:
        summary["raster_s_per_frame"] = round(runs[1]["s_per_frame"], 4)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
