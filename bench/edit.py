""""make the lips blue" on the demo avatar with the procedural editor: K keyframes vs all frames.

The demo avatar gets a talking FLAME sequence (engine.data.synth.talking_sequence); candidates are its
frames × an orbit of cameras. Over held-out (expression, camera) pairs (another sequence, cameras between
the orbit's) it prints: the lips' mean Oklab colour distance to the target (×100) before and after;
PSNR between before and after renders outside the rendered lips mask dilated by 2 px (target ≥ 35 dB);
Gaussians changed outside the selection (target 0); edit quality = PSNR inside the mask against the
procedural 2D edit of the held-out view; wall time. Then the same with every visible frame edited.

    .venv/bin/python bench/edit.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.avatar.avatar import Avatar  # noqa: E402
from engine.avatar.demo import load_demo_avatar  # noqa: E402
from engine.data.synth import talking_sequence  # noqa: E402
from engine.edit.colour_space import srgb_to_oklab  # noqa: E402
from engine.edit.discriminator import DiscriminatorConfig  # noqa: E402
from engine.edit.editors import EditorSettings, make_editor  # noqa: E402
from engine.edit.keyframes import orbit_cameras  # noqa: E402
from engine.edit.layers import compose  # noqa: E402
from engine.edit.run import EditConfig, run_edit  # noqa: E402
from engine.edit.views import crop_camera, dilate, render_view  # noqa: E402
from engine.head.components import labels_of  # noqa: E402
from engine.prompting import refine  # noqa: E402


def held_out_views(avatar: Avatar, pairs: int, size: int) -> list[tuple]:
    seq = talking_sequence(avatar.head, pairs, 0.37, True)
    cams = orbit_cameras(avatar, 5, size, yaw_range=50.0, offset=0.5)
    return [(seq.frame(i), cams[i % len(cams)]) for i in range(pairs)]


def measure(avatar: Avatar, sel: torch.Tensor, held: list[tuple], target_rgb: torch.Tensor, size: int,
            plan: object, before: list | None = None) -> dict:
    """Renders (full view and lips crop) of every held-out pair, and the figures against `before`."""
    editor = make_editor(EditorSettings())
    goal = srgb_to_oklab(target_rgb[None])[0]
    shots, dist, psnr_out, psnr_in = [], [], [], []
    for n, (params, cam) in enumerate(held):
        verts = avatar.posed_vertices(params).float()
        rgb, mask = render_view(avatar, verts, cam, sel.float())
        pts = avatar.gaussians.subset(sel).deform(verts, avatar.head.faces).means
        crop_rgb, crop_mask = render_view(avatar, verts, crop_camera(cam, pts, size), sel.float())
        shots.append((rgb, mask, crop_rgb, crop_mask))
        lips = crop_rgb[crop_mask > 0.5]
        if lips.shape[0]:
            dist.append(100 * float((srgb_to_oklab(lips).mean(0) - goal).norm()))
        if before is not None:
            b_rgb, b_mask, b_crop, b_cmask = before[n]
            keep = dilate((b_mask > 0.02).float(), 2) == 0
            mse = float(((rgb - b_rgb) ** 2)[keep].mean())
            psnr_out.append(100.0 if mse <= 1e-10 else -10 * math.log10(mse))
            ref = editor.edit(b_crop, b_cmask, plan).image
            inside = b_cmask > 0.5
            mse_in = float(((crop_rgb - ref) ** 2)[inside].mean()) if bool(inside.any()) else 0.0
            psnr_in.append(100.0 if mse_in == 0 else -10 * math.log10(mse_in))
    mean = lambda xs: sum(xs) / max(1, len(xs))  # noqa: E731
    return {"shots": shots, "distance": mean(dist), "psnr_outside": mean(psnr_out) if psnr_out else None,
            "psnr_inside": mean(psnr_in) if psnr_in else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small avatar and few views (under a minute)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    q = args.quick
    count, size, frames, cams, k, pairs = (6000, 64, 4, 4, 3, 8) if q else (40_000, 128, 12, 8, 8, 20)
    avatar = load_demo_avatar(count)
    avatar.params = talking_sequence(avatar.head, frames, 0.0, False)
    plan = refine("make the lips blue").plan
    sel = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(["lips"])))
    target = torch.tensor(plan.colour, dtype=torch.float32) / 255
    held = held_out_views(avatar, pairs, 2 * size)
    before = measure(avatar, sel, held, target, size, plan)
    disc = DiscriminatorConfig(steps=40 if q else 120, size=64)
    common = dict(size=size, orbit_cameras=cams, max_timesteps=frames, passes=12 if q else 20, min_steps=20,
                  max_steps=None, disc=disc)
    out: dict = {"gaussians": avatar.gaussians.count, "selected": int(sel.sum()), "pairs": pairs, "quick": q}
    for label, all_frames in (("keyframes", False), ("all_frames", True)):
        start = time.perf_counter()
        result = run_edit(avatar, sel, plan, make_editor(EditorSettings()),
                          EditConfig(keyframes=k, all_frames=all_frames, **common))
        seconds = time.perf_counter() - start
        edited = Avatar(avatar.head, compose(avatar.gaussians, [result.layer]), avatar.params, avatar.name)
        changed_outside = int((~sel[result.layer.indices]).sum())
        base_out, new_out = avatar.gaussians.subset(~sel), edited.gaussians.subset(~sel)
        changed_outside += 0 if new_out.equal(base_out) else 1
        after = measure(edited, sel, held, target, size, plan, before["shots"])
        out.update({f"views_{label}": len(result.views), f"coverage_{label}": round(result.keyframes.coverage, 3),
                    f"seconds_{label}": round(seconds, 1), f"psnr_inside_{label}_db": round(after["psnr_inside"], 2),
                    f"psnr_outside_{label}_db": round(after["psnr_outside"], 2),
                    f"lips_color_distance_after_{label}": round(after["distance"], 2),
                    f"gaussians_changed_outside_{label}": changed_outside})
        print(f"{label}: {len(result.views)} views, coverage {result.keyframes.coverage:.2f}, {seconds:.1f} s; "
              f"lips distance {before['distance']:.2f} -> {after['distance']:.2f}; PSNR outside "
              f"{after['psnr_outside']:.2f} dB; edit PSNR inside {after['psnr_inside']:.2f} dB; "
              f"changed outside {changed_outside}", flush=True)
    out.update({"psnr_outside_db": out["psnr_outside_keyframes_db"],
                "gaussians_changed_outside": out["gaussians_changed_outside_keyframes"],
                "lips_color_distance_before": round(before["distance"], 2),
                "lips_color_distance_after": out["lips_color_distance_after_keyframes"],
                "quality_gap_db": round(out["psnr_inside_all_frames_db"] - out["psnr_inside_keyframes_db"], 2),
                "speedup": round(out["seconds_all_frames"] / max(1e-9, out["seconds_keyframes"]), 2)})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
