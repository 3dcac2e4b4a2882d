"""Mask warping benchmark: exact lift-and-render versus the mapping network, against ground truth.

On a synthetic dataset of the demo head: the ground-truth label region of each component group
(lips, eyes, brows, hair) at one training frame (frontal camera) is the painted mask M0. Exact:
lift M0 onto the demo avatar (posed with the dataset's FLAME parameters), render it at every
held-out frame (val: held-out cameras; test: held-out expressions). Mapping network: trained on
exact renders at the training frames, then asked for the same held-out frames. IoU is accumulated
over all held-out frames per group (Σ intersection / Σ union). Also printed: the IoU of the
avatar's own triangle labels rendered exactly ("oracle"), the best any selection of its Gaussians
can be expected to reach. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch

from engine.avatar.demo import load_demo_avatar
from engine.data.frames import FrameLoader
from engine.data.synth import SynthConfig, generate
from engine.data.vhap_format import read_dataset
from engine.head.components import labels_of
from engine.semantics.lift import lift_mask
from engine.semantics.mapping_net import MappingData, MappingNetConfig, camera_azimuth, predict_masks, train_mapping_net
from engine.semantics.mask_render import MASK_LEVEL, render_label_map, render_weights

GROUPS = ("lips", "eyes", "brows", "hair")


def group_mask(labels: torch.Tensor, group: str) -> torch.Tensor:
    return torch.isin(labels, torch.tensor(labels_of([group])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small dataset and network (under a minute)")
    ap.add_argument("--data", type=Path, default=None, help="existing synthetic dataset (default: generate one)")
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = SynthConfig(size=128, train_frames=8, test_frames=4, train_cameras=5, heldout_cameras=2) if args.quick \
        else SynthConfig(size=256, train_frames=16, test_frames=6, train_cameras=6, heldout_cameras=2)
    tmp = tempfile.TemporaryDirectory()
    root = args.data or generate(Path(tmp.name) / "synth", cfg)
    ds = read_dataset(root)
    avatar = load_demo_avatar()
    params = ds.flame_params(None)
    ts = ds.timesteps(None)
    loader = FrameLoader(capacity=0)
    splats = {}
    with torch.no_grad():
        for i, t in enumerate(ts):
            splats[t] = avatar.splats(params.frame(i))
    train = ds.frames("train")
    front = min(train, key=lambda r: abs(camera_azimuth(r.camera)))
    candidates = [r for r in train if r.camera_index == front.camera_index]
    loaded = [loader.load(r) for r in candidates]
    ref = max(loaded, key=lambda f: min(int(group_mask(f.labels, g).sum()) for g in GROUPS))
    m0 = torch.stack([group_mask(ref.labels, g).float() for g in GROUPS])  # [G, H, W]

    t0 = time.perf_counter()
    weights = torch.stack([lift_mask(splats[ref.record.timestep], ref.camera, m).weights for m in m0], 1)  # [N, G]
    lift_ms = 1000 * (time.perf_counter() - t0) / len(GROUPS)
    selected = (weights >= 0.5).float()

    heldout = [loader.load(r) for r in ds.frames("val") + ds.frames("test")]
    azimuths = [camera_azimuth(r.camera) for r in train + ds.frames("val")]
    lo, hi = min(azimuths), max(azimuths)
    norm_p = lambda cam: (camera_azimuth(cam) - lo) / max(1e-6, hi - lo)  # noqa: E731
    norm_t = lambda t: ts.index(t) / max(1, len(ts) - 1)  # noqa: E731

    # training data for the network: exact renders at every training frame
    t1 = time.perf_counter()
    train_frames = [loader.load(r) for r in train]
    targets = torch.stack([render_weights(splats[f.record.timestep], f.camera, selected).permute(2, 0, 1) for f in train_frames])
    render_ms = 1000 * (time.perf_counter() - t1) / len(train_frames)
    data = MappingData(m0, targets.clamp(0, 1), torch.tensor([norm_t(f.record.timestep) for f in train_frames]),
                       torch.tensor([norm_p(f.camera) for f in train_frames]))
    net_cfg = MappingNetConfig(steps=150 if args.quick else 600)
    t2 = time.perf_counter()
    net, losses = train_mapping_net(data, net_cfg)
    train_s = time.perf_counter() - t2

    acc = {k: {g: [0, 0] for g in GROUPS} for k in ("exact", "net", "oracle")}
    times = {"exact": 0.0, "net": 0.0}
    for f in heldout:
        gt = torch.stack([group_mask(f.labels, g) for g in GROUPS])
        t3 = time.perf_counter()
        exact = render_weights(splats[f.record.timestep], f.camera, selected).permute(2, 0, 1) >= MASK_LEVEL
        times["exact"] += time.perf_counter() - t3
        t4 = time.perf_counter()
        pred = predict_masks(net, m0, norm_t(f.record.timestep), norm_p(f.camera), tuple(gt.shape[1:])) >= 0.5
        times["net"] += time.perf_counter() - t4
        lm = render_label_map(splats[f.record.timestep], f.camera, avatar.gaussians.labels, 13)
        oracle = torch.stack([group_mask(lm, g) for g in GROUPS])
        for name, m in (("exact", exact), ("net", pred), ("oracle", oracle)):
            for i, g in enumerate(GROUPS):
                acc[name][g][0] += int((m[i] & gt[i]).sum())
                acc[name][g][1] += int((m[i] | gt[i]).sum())
    iou = {k: {g: v[0] / max(1, v[1]) for g, v in d.items()} for k, d in acc.items()}
    n = len(heldout)
    print(f"dataset {root} ({cfg.size}px), reference frame t={ref.record.timestep} cam={ref.record.camera_index}, "
          f"{n} held-out frames, {avatar.gaussians.count} Gaussians")
    for k in ("exact", "net", "oracle"):
        print(f"IoU {k:7s} " + "  ".join(f"{g} {iou[k][g]:.3f}" for g in GROUPS))
    print(f"exact: lift {lift_ms:.1f} ms per mask, render {1000 * times['exact'] / n:.1f} ms per frame (4 masks)")
    print(f"mapping net: trained {train_s:.1f} s ({net_cfg.steps} steps, final loss {losses[-1]:.4f}), "
          f"{1000 * times['net'] / n:.1f} ms per frame (4 masks); training renders {render_ms:.1f} ms each")
    out = {
        "iou_exact_min": round(min(iou["exact"].values()), 4),
        "iou_mapping_net_min": round(min(iou["net"].values()), 4),
        "iou_oracle_min": round(min(iou["oracle"].values()), 4),
        **{f"iou_exact_{g}": round(iou["exact"][g], 4) for g in GROUPS},
        **{f"iou_mapping_net_{g}": round(iou["net"][g], 4) for g in GROUPS},
        **{f"iou_oracle_{g}": round(iou["oracle"][g], 4) for g in GROUPS},
        "exact_ms_per_frame": round(1000 * times["exact"] / n, 2),
        "mapping_net_ms_per_frame": round(1000 * times["net"] / n, 2),
        "lift_ms_per_mask": round(lift_ms, 2),
        "mapping_net_train_s": round(train_s, 2),
        "size": cfg.size,
        "heldout_frames": n,
    }
    tmp.cleanup()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
