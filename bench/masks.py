"""Mask warping benchmark: exact lift-and-render versus the mapping network, against ground truth.

On a synthetic dataset of the demo head (cached: generated once per dataset config and demo head),
with the demo avatar or (--avatar) one trained on that dataset by the modeling stage.
The ground-truth label region of each component group (lips, eyes, brows, hair) at one frame of
the frontal training camera is the painted mask M0.
- Exact: lift M0 onto the avatar posed at that frame (edge-aware votes; unseen Gaussians take the
  weight of the nearest seen one of their component within 1 cm, else the component's mean weight;
  the seen ones' weights then fitted so the selection rendered at that view reproduces M0
  (fit_to_view); threshold 0.5), render the selection at each evaluated frame. `exact_votes_only`
  is the same without the fit.
- Components, multi-view (`components_multiview`): the exact selection fitted further to the groups'
  label regions at 24 training frames (6 with --quick) at once (fit_to_views, as `masks lift
  --fit-frames`): what a component selection reaches when the dataset's label maps are at hand.
- Selection upper bound (`selection_upper_bound`): the exact selection fitted to the groups' label
  regions at 24 (--quick: 6) of the evaluated frames themselves and scored on those frames: about
  the best any per-Gaussian selection of this avatar draws there (the avatar's Gaussians, not the
  way the selection was made, set this limit; with --quick's 15 fitting steps it is only a rough
  figure; the fit is not run to convergence, so it is a bound only roughly). `exact_at_upper_bound_frames`
  and `components_multiview_at_upper_bound_frames`: those selections scored on the same frames.
- Mapping network: trained on exact lift-and-render masks of every component region of the
  reference label map, at the network-training samples = every other frame of the training
  sequence (interleaved) x a lattice of camera poses every 10° of azimuth and elevation around the
  head over the training cameras' range, seen from the head's frame (20° with --quick;
  mapping_data.lattice_samples; at 128 px), then asked for the evaluated frames.
- Oracle: the avatar's own triangle labels rendered directly (what ticking the components draws;
  fitted selections can beat it, since they may take in the Gaussians of neighbouring triangles
  that draw a part's outline). `exact_vs_oracle` compares the exact masks with it instead of
  the ground truth: how faithfully a selection made at one frame follows the avatar elsewhere,
  apart from how well the avatar's Gaussians draw the mesh's outlines.
Evaluated frames (all at the dataset's resolution: 512 px, 256 px with --quick): held-out =
training-sequence frames the network never saw (odd frames x training cameras; every frame x the
held-out cameras); reported separately: the held-out-expression sequence (test split), whose frames
the network reads at the time of the training-sequence frame with the nearest FLAME parameters
(expression, jaw, eyes; the head's pose is on the network's pose axes). IoU per group is Σ intersection / Σ union over frames. Also
prints the FCI figure: how far component labels voted from the training label maps agree with the
triangle labels (by opacity weight). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402,F401  (before torch: sets OMP_WAIT_POLICY=PASSIVE, see engine/__init__.py)
import torch  # noqa: E402

from engine.avatar.demo import load_demo_avatar
from engine.avatar.files import load_avatar
from engine.data.frames import FrameLoader, LoadedFrame
from engine.data.synth import SynthConfig, generate
from engine.data.vhap_format import AvatarDataset, read_dataset
from engine.head.components import COMPONENTS, labels_of
from engine.render.splats import Splats
from engine.semantics.fci import agreement, dataset_label_views, triangle_labels, vote_labels, voted_labels
from engine.semantics.lift import MaskView, fit_to_view, fit_to_views, lift_filled, lift_many, rest_points
from engine.semantics.mapping_data import (
    LATTICE_STEP_DEG,
    StillHeads,
    TimePose,
    build_mapping_data,
    camera_orbit,
    flame_keys,
    lattice_samples,
    predict_at,
)
from engine.semantics.mapping_net import (
    MappingNetConfig,
    MaskMappingNet,
    train_mapping_net,
)
from engine.semantics.mask_render import MASK_LEVEL, render_label_map, render_weights
from engine.semantics.region_fit import label_region, spread

GROUPS = ("lips", "eyes", "brows", "hair")
NET_SIZE = 128  # resolution of the network's training samples
ROOT = Path(__file__).resolve().parents[1]


def group_mask(labels: torch.Tensor, group: str) -> torch.Tensor:
    return label_region(labels, labels_of([group]))


def cached_dataset(cfg: SynthConfig, cache: Path) -> Path:
    """A synthetic dataset for cfg, generated once per (config, demo head, generator code)."""
    h = hashlib.sha1(repr(cfg).encode())
    for rel in ("resources/demo_head/FLAME_NEUTRAL.npz", "engine/data/synth.py", "engine/data/mesh_render.py"):
        h.update((ROOT / rel).read_bytes())
    out = cache / f"synth-{h.hexdigest()[:16]}"
    if not (out / "transforms_train.json").is_file():
        generate(out, cfg)
    return out


def add(acc: dict, name: str, masks: torch.Tensor, gt: torch.Tensor) -> None:
    for i, g in enumerate(GROUPS):
        a = acc.setdefault(name, {}).setdefault(g, [0, 0])
        a[0] += int((masks[i] & gt[i]).sum())
        a[1] += int((masks[i] | gt[i]).sum())


def scores(acc: dict) -> dict:
    return {k: {g: v[0] / max(1, v[1]) for g, v in d.items()} for k, d in acc.items()}


class Bench:
    """The dataset, the avatar posed at its frames, the reference view and the (t, p) normalisation."""

    def __init__(self, root: Path, avatar: Path | None = None) -> None:
        self.ds: AvatarDataset = read_dataset(root)
        self.avatar = load_demo_avatar() if avatar is None else load_avatar(avatar)
        self.params, self.ts = self.ds.flame_params(None), self.ds.timesteps(None)
        self.train_ts = self.ds.timesteps("train")
        self.net_ts = set(self.train_ts[::2])  # times the network trains on; the others are held out
        self.train_cams = set(self.ds.camera_indices("train"))
        self.loader = FrameLoader(capacity=0)
        self._splats: dict[int, Splats] = {}
        train = self.ds.frames("train")
        front = min(train, key=lambda r: abs(camera_orbit(r.camera)[0]))
        cands = [self.loader.load(r) for r in train if r.camera_index == front.camera_index and r.timestep in self.net_ts]
        self.ref = max(cands, key=lambda f: min(int(group_mask(f.labels, g).sum()) for g in GROUPS))
        self.m0 = torch.stack([group_mask(self.ref.labels, g).float() for g in GROUPS])  # [G, H, W]
        self.rest = rest_points(self.avatar)
        self.heads = StillHeads(self.avatar, lambda t: self.params.frame(self.ts.index(t)))
        self.tp = TimePose.of_dataset(self.ds, sorted(self.net_ts), self.heads)

    def splats_at(self, t: int) -> Splats:
        if t not in self._splats:
            with torch.no_grad():
                self._splats[t] = self.avatar.splats(self.params.frame(self.ts.index(t)))
        return self._splats[t]


def train_net(b: Bench, steps: int, step_deg: float = LATTICE_STEP_DEG) -> tuple[MaskMappingNet, dict]:
    """The network, trained on every component region of the reference label map at net times x a lattice
    of poses over the training cameras' range (TimePose.lattice)."""
    ref = b.ref
    comp = torch.stack([(ref.labels == c).float() for c in range(len(COMPONENTS)) if bool((ref.labels == c).any())])
    samples, azimuths, elevations = lattice_samples(b.tp, b.heads, sorted(b.net_ts), ref.camera.resized(NET_SIZE, NET_SIZE),
                                                    step_deg)
    t1 = time.perf_counter()
    data, _ = build_mapping_data(b.splats_at(ref.record.timestep), ref.camera, comp, samples, b.rest,
                                 labels=b.avatar.gaussians.labels)
    data_s = time.perf_counter() - t1
    cfg = MappingNetConfig(grid_t=len(b.net_ts), grid_p=azimuths, grid_e=elevations, steps=steps)
    t2 = time.perf_counter()
    net, losses = train_mapping_net(data, cfg)
    info = {"samples": len(samples), "masks": comp.shape[0], "data_s": data_s, "train_s": time.perf_counter() - t2,
            "steps": steps, "loss": losses[-1]}
    return net, info


def label_views(b: Bench, records: list) -> list[MaskView]:
    """The groups' label regions at these frames, as views to fit to (or score on)."""
    views = []
    for r in records:
        f = b.loader.load(r)
        views.append(MaskView(b.splats_at(r.timestep), f.camera, torch.stack([group_mask(f.labels, g).float() for g in GROUPS])))
    return views


def fit_to_frames(views: list[MaskView], start: torch.Tensor, steps: int) -> torch.Tensor:
    """[N, G] the weights start [N, G] fitted to the views' masks at once."""
    seen = torch.zeros(start.shape[0], dtype=torch.bool)
    for v in views:
        seen |= lift_many(v.splats, v.camera, v.masks).seen.any(dim=1)
    return fit_to_views(views, start, seen, steps)


def score_views(views: list[MaskView], weights: torch.Tensor) -> dict[str, float]:
    """IoU per group of the binary selection weights >= 0.5 rendered at the views, against their masks."""
    acc: dict = {}
    for v in views:
        add(acc, "s", render_weights(v.splats, v.camera, (weights >= 0.5).float()).permute(2, 0, 1) >= MASK_LEVEL, v.masks.bool())
    return scores(acc)["s"]


def evaluate(b: Bench, selected: torch.Tensor, voted: torch.Tensor, net: MaskMappingNet, held: list,
             expr: list, extra: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """(IoU per method and frame kind, seconds per method) over held-out and held-out-expression frames.

    selected, voted [N, G]: the exact method's selection with and without fit_to_view; extra: more
    per-Gaussian weights [N, G] to render and score by name."""
    test_keys, test_ts = flame_keys(b.ds.flame_params("test")), b.ds.timesteps("test")
    acc: dict[str, dict] = {}
    times = {"exact": 0.0, "net": 0.0}
    for split, records in (("", held), ("expr_", expr)):
        for r in records:
            f: LoadedFrame = b.loader.load(r)
            gt = torch.stack([group_mask(f.labels, g) for g in GROUPS])
            s = b.splats_at(r.timestep)
            t3 = time.perf_counter()
            exact = render_weights(s, f.camera, selected).permute(2, 0, 1) >= MASK_LEVEL
            times["exact"] += time.perf_counter() - t3
            add(acc, split + "exact_votes_only", render_weights(s, f.camera, voted).permute(2, 0, 1) >= MASK_LEVEL, gt)
            for name, w in extra.items():
                add(acc, split + name, render_weights(s, f.camera, w).permute(2, 0, 1) >= MASK_LEVEL, gt)
            t = b.tp.t(r.timestep) if split == "" else b.tp.t(r.timestep, test_keys[test_ts.index(r.timestep)])
            t4 = time.perf_counter()
            pred = predict_at(net, b.tp, b.m0, t, b.heads.relative(f.camera, r.timestep), b.ref.camera) >= 0.5
            times["net"] += time.perf_counter() - t4
            lm = render_label_map(s, f.camera, b.avatar.gaussians.labels, len(COMPONENTS))
            add(acc, split + "exact", exact, gt)
            add(acc, split + "mapping_net", pred, gt)
            oracle = torch.stack([group_mask(lm, g) for g in GROUPS])
            add(acc, split + "oracle", oracle, gt)
            add(acc, split + "exact_vs_oracle", exact, oracle)
            add(acc, split + "mapping_net_vs_exact", pred, exact)
            if split == "":
                kind = ("time" if r.timestep not in b.net_ts else "") + ("pose" if r.camera_index not in b.train_cams else "")
                add(acc, f"mapping_net_{kind}", pred, gt)
                add(acc, f"exact_{kind}", exact, gt)
    return scores(acc), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small dataset and network (under a minute once cached)")
    ap.add_argument("--data", type=Path, default=None, help="existing synthetic dataset (default: cached generated one)")
    ap.add_argument("--avatar", type=Path, default=None,
                    help="a saved avatar to evaluate instead of the demo avatar (e.g. one trained on --data)")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                    / "dynamicavatars" / "bench-masks", help="where generated datasets are kept")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # small convs: one thread is faster than two fighting the renderer's
    cfg = SynthConfig(size=256, train_frames=12, test_frames=4, train_cameras=5, heldout_cameras=2) if args.quick \
        else SynthConfig(size=512, train_frames=32, test_frames=8, train_cameras=6, heldout_cameras=2)
    t_start = time.perf_counter()
    root = args.data or cached_dataset(cfg, args.cache)
    b = Bench(root, args.avatar)
    t0 = time.perf_counter()
    lifted, filled = lift_filled(b.splats_at(b.ref.record.timestep), b.ref.camera, b.m0, b.rest,
                                 b.avatar.gaussians.labels)  # [N, G]
    lift_ms = 1000 * (time.perf_counter() - t0)
    fitted = fit_to_view(b.splats_at(b.ref.record.timestep), b.ref.camera, b.m0, filled, lifted.seen)
    fit_ms = 1000 * (time.perf_counter() - t0) - lift_ms
    selected, voted = (fitted >= 0.5).float(), (filled >= 0.5).float()
    t_mv = time.perf_counter()
    count, steps = (6, 15) if args.quick else (24, 30)
    many = fit_to_frames(label_views(b, spread(b.ds.frames("train"), count)), fitted, steps)
    multiview_s = time.perf_counter() - t_mv
    extra = {"components_multiview": (many >= 0.5).float()}
    net, info = train_net(b, *((80, 20.0) if args.quick else (1500, LATTICE_STEP_DEG)))
    held = [r for r in b.ds.frames("train") if r.timestep not in b.net_ts] + list(b.ds.frames("val"))
    expr = list(b.ds.frames("test"))
    if args.quick:
        held, expr = held[::2], expr[::3]
    iou, times = evaluate(b, selected, voted, net, held, expr, extra)
    t_up = time.perf_counter()
    own = label_views(b, spread(held, 6 if args.quick else 24))
    iou["selection_upper_bound"] = score_views(own, fit_to_frames(own, fitted, 15 if args.quick else 40))
    iou["exact_at_upper_bound_frames"] = score_views(own, selected)
    iou["components_multiview_at_upper_bound_frames"] = score_views(own, many)
    upper_s = time.perf_counter() - t_up
    t5 = time.perf_counter()
    views = dataset_label_views(b.avatar, b.ds, "train", stride=3 if args.quick else 1)
    fci_labels, seen = voted_labels(vote_labels(b.avatar, views))
    opacity = torch.sigmoid(b.avatar.gaussians.opacity_logit)
    vote_agree = agreement(fci_labels, triangle_labels(b.avatar), opacity, seen)
    seen_share = float((opacity * seen).sum() / opacity.sum())
    vote_s = time.perf_counter() - t5
    n = len(held) + len(expr)
    print(f"dataset {root} ({cfg.size}px), reference frame t={b.ref.record.timestep} cam={b.ref.record.camera_index}, "
          f"{len(held)} held-out frames + {len(expr)} held-out-expression frames, {b.avatar.gaussians.count} Gaussians")
    for k in iou:
        print(f"IoU {k:44s} " + "  ".join(f"{g} {iou[k][g]:.3f}" for g in GROUPS))
    print(f"components fitted at {count} training frames: {multiview_s:.1f} s; upper bound (fitted to and scored at "
          f"{len(own)} held-out frames): {upper_s:.1f} s")
    print(f"exact: lift {lift_ms:.0f} ms (4 masks, one render), fit to the painted view {fit_ms:.0f} ms, "
          f"render {1000 * times['exact'] / n:.1f} ms per frame (4 masks)")
    print(f"mapping net: {info['samples']} training samples ({info['data_s']:.1f} s to render), {info['masks']} masks each; "
          f"trained {info['train_s']:.1f} s ({info['steps']} steps, final loss {info['loss']:.4f}); "
          f"{1000 * times['net'] / n:.1f} ms per frame (4 masks)")
    print(f"FCI: labels voted from {len(views)} training label maps agree with the triangle labels for "
          f"{100 * vote_agree:.1f}% of seen Gaussians by opacity; seen: {100 * seen_share:.1f}% of the opacity ({vote_s:.1f} s)")
    out = {
        "fci_vote_agreement": round(vote_agree, 4),
        "fci_seen_share": round(seen_share, 4),
        "iou_exact_min": round(min(iou["exact"].values()), 4),
        "iou_mapping_net_min": round(min(iou["mapping_net"].values()), 4),
        "iou_oracle_min": round(min(iou["oracle"].values()), 4),
        "iou_exact_expr_min": round(min(iou["expr_exact"].values()), 4),
        "iou_components_multiview_min": round(min(iou["components_multiview"].values()), 4),
        "iou_selection_upper_bound_min": round(min(iou["selection_upper_bound"].values()), 4),
        "iou_mapping_net_expr_min": round(min(iou["expr_mapping_net"].values()), 4),
        **{f"iou_{k}_{g}": round(iou[k][g], 4) for k in iou for g in GROUPS},
        "avatar": str(args.avatar) if args.avatar else "demo",
        "exact_ms_per_frame": round(1000 * times["exact"] / n, 2),
        "mapping_net_ms_per_frame": round(1000 * times["net"] / n, 2),
        "lift_ms": round(lift_ms, 1),
        "fit_ms": round(fit_ms, 1),
        "components_multiview_s": round(multiview_s, 1),
        "mapping_net_train_s": round(info["train_s"], 2),
        "mapping_net_samples": info["samples"],
        "size": cfg.size,
        "heldout_frames": len(held),
        "heldout_expression_frames": len(expr),
        "seconds_total": round(time.perf_counter() - t_start, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
