"""Mouth corners of the demo avatar smiling, beside the head mesh, for checking by eye.

    .venv/bin/python scripts/demo_mouth_corners.py [--avatar FOLDER] [--out out/demo_mouth_corners.png]

Renders, at 512 px from the front and 30° to each side, a full smile and a full smile with the jaw open
(0.3 rad) of: --avatar when given, the demo avatar (load_demo_avatar()) and the demo head mesh as the
synthetic dataset draws it. Writes one PNG of mouth crops (3× enlarged; rows: pose × picture, columns:
views; the green squares are the windows engine/data/mouth_corners.py measures) and prints, per render,
the dark share at the image-left and image-right mouth corner.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.avatar.demo import load_demo_avatar
from engine.avatar.files import load_avatar
from engine.avatar.posing import apply_pose
from engine.data.mesh_render import MeshRenderer
from engine.data.mouth_corners import (
    SMILE_POSES,
    SMILE_YAWS,
    CornerDarkness,
    corner_camera,
    corner_dark_share,
    mouth_corner_darkness,
)


def crop(image: torch.Tensor, d: CornerDarkness) -> np.ndarray:
    """The mouth region of image [H, W, 3] with the measured windows outlined in green; [80, 112, 3] uint8."""
    a = (image.clamp(0, 1).numpy() * 255).astype(np.uint8).copy()
    h = d.half
    for x, y in d.corners:
        a[[y - h - 1, y + h + 1], x - h - 1: x + h + 2] = (0, 255, 0)
        a[y - h - 1: y + h + 2, [x - h - 1, x + h + 1]] = (0, 255, 0)
    cx, cy = (d.corners[0][0] + d.corners[1][0]) // 2, (d.corners[0][1] + d.corners[1][1]) // 2
    return a[cy - 40: cy + 40, cx - 56: cx + 56]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatar", type=Path, default=None, help="an avatar folder to draw beside the demo avatar")
    ap.add_argument("--out", type=Path, default=Path("out/demo_mouth_corners.png"))
    args = ap.parse_args()
    demo = load_demo_avatar()
    avatars = {"demo": demo} if args.avatar is None else {"avatar": load_avatar(args.avatar), "demo": demo}
    head = demo.head
    rest = head(head.neutral_params())[0]
    rows = []
    with MeshRenderer() as mesh, torch.no_grad():
        for pose_name, pose in SMILE_POSES.items():
            found: dict[str, list[np.ndarray]] = {name: [] for name in (*avatars, "mesh")}
            for yaw in SMILE_YAWS:
                for name, avatar in avatars.items():
                    d = mouth_corner_darkness(avatar, pose, mesh, yaw)
                    found[name].append(crop(d.image, d))
                    print(f"{pose_name:10s} yaw {yaw:+4.0f}  {name:8s}  dark {d.dark[0]:.3f} {d.dark[1]:.3f}")
                verts = head(apply_pose(demo, pose))[0]
                drawn = mesh.render(verts, head.faces, head.face_labels, corner_camera(head, yaw, 512), rest_verts=rest)
                found["mesh"].append(crop(drawn.rgb, d))
                dark = [corner_dark_share(drawn.rgb, drawn.labels, c, d.half) for c in d.corners]
                print(f"{pose_name:10s} yaw {yaw:+4.0f}  {'mesh':8s}  dark {dark[0]:.3f} {dark[1]:.3f}")
            rows += [np.concatenate(found[name], axis=1) for name in found]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.kron(np.concatenate(rows, axis=0), np.ones((3, 3, 1), dtype=np.uint8))).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
