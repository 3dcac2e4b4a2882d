"""How the demo avatar looks where it used to look wrong: the mouth corners of a smile.

Prints the worst dark-pixel share at a mouth corner (engine/data/mouth_corners.py: both corners, views at yaw
-30, 0 and 30 degrees) of the demo avatar smiling, and smiling with the jaw open 0.3 rad.

Usage: python bench/demo_look.py [--quick] [--size PX]   (last stdout line: one JSON object of figures)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from engine.avatar.demo import load_demo_avatar
from engine.data.mesh_render import MeshRenderer
from engine.data.mouth_corners import SMILE_POSES, worst_corner_darkness


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the same figures (they take ~20 s); kept for the bench convention")
    ap.add_argument("--size", type=int, default=512, help="render size in pixels")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    avatar = load_demo_avatar()
    with MeshRenderer() as renderer:
        dark = {name: worst_corner_darkness(avatar, pose, renderer, size=args.size) for name, pose in SMILE_POSES.items()}
    print(json.dumps({"avatar": "demo", "size": args.size, "quick": args.quick,
                      "mouth_corner_dark_share_smile": round(dark["smile"], 4),
                      "mouth_corner_dark_share_smile_jaw": round(dark["smile_jaw"], 4),
                      "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
