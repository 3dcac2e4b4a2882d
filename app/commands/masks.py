"""Label an avatar's Gaussians from a dataset (FCI), lift a mask onto them, or render a selection as masks.

Actions:
- label: vote the dataset's label maps (or a face parser's) onto the Gaussians, fuse them with the
  triangle labels (engine.semantics.fci.identify) and save the avatar with the fused labels.
- lift: lift a painted mask, or the dataset's label region of some components, at one frame onto the
  avatar posed at that frame; unseen Gaussians take their component's weight (fill_unseen), seen ones
  are fitted so the selection drawn at that view is the mask (fit_to_view; with --fit-frames, drawn at
  more training frames too is their label region: fit_to_views); save the avatar and its
  selection.npz (the GUI loads it with the avatar).
- render: render a selection as binary mask PNGs ({timestep:05d}_{camera:02d}.png) at every frame of a
  split; with --components, report the IoU against the dataset's label regions. --method net uses the
  paper's mapping network instead of rendering the Gaussians: trained on exact renders of the
  selection at the training frames, it warps the mask the selection was lifted from (saved by lift).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from app.cli import CommandError
from app.commands import add_head_arguments, component_names, load_avatar_arg

if TYPE_CHECKING:
    import numpy as np

    from engine.avatar.avatar import Avatar
    from engine.data.vhap_format import AvatarDataset, FrameRecord
    from engine.head.params import FlameParams


def _action(actions: argparse._SubParsersAction, name: str, run: Callable[[argparse.Namespace], int], summary: str,
            description: str) -> argparse.ArgumentParser:
    """A sub-parser for one action, with the arguments every action takes (AVATAR, --flame, --dataset)."""
    p = actions.add_parser(name, help=summary, description=description)
    p.add_argument("avatar", metavar="AVATAR", help="avatar folder, point_cloud.ply, or 'demo'")
    add_head_arguments(p)
    p.add_argument("--dataset", required=True, metavar="DS", help="dataset folder (VHAP / GaussianAvatars layout)")
    p.set_defaults(_action=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    label = _action(actions, "label", run_label, "vote component labels from the dataset onto the Gaussians (FCI)",
                    "Vote the dataset's label maps (or a face parser's) onto the avatar's Gaussians, fuse them "
                    "with the triangle labels, save the avatar.")
    label.add_argument("--split", default="train", help="split whose frames vote (default train)")
    label.add_argument("--stride", type=int, default=1, metavar="N", help="use every N-th frame (default 1)")
    label.add_argument("--size", type=int, default=None, metavar="PX", help="vote at most PX pixels on a side")
    label.add_argument("--parser", default=None, metavar="PATH",
                       help="SegFormer face-parser checkpoint folder: parse the images instead of reading label maps")
    label.add_argument("--out", required=True, help="folder to write the relabelled avatar to")

    lift = _action(actions, "lift", run_lift, "lift a mask at one frame onto the Gaussians and save the selection",
                   "Lift a painted mask or the dataset's label region of some components at one frame onto the "
                   "avatar; save the avatar and OUT/selection.npz.")
    lift.add_argument("--timestep", type=int, required=True, metavar="T", help="the frame's timestep index")
    lift.add_argument("--camera", type=int, required=True, metavar="C", help="the frame's camera index")
    what = lift.add_mutually_exclusive_group(required=True)
    what.add_argument("--mask", metavar="PNG", help="painted mask the size of that camera's image (white = selected)")
    what.add_argument("--components", nargs="+", metavar="NAME",
                      help="take the dataset's label region of these components or groups (e.g. lips, eyes)")
    lift.add_argument("--threshold", type=float, default=0.5, help="a Gaussian is selected from this weight (0..1)")
    lift.add_argument("--fit-steps", type=int, default=None, metavar="N",
                      help="steps fitting the weights so the selection drawn at this view is the mask "
                           "(default: engine.semantics.lift.FIT_STEPS; 0: votes only)")
    lift.add_argument("--fit-frames", type=int, default=0, metavar="N",
                      help="with --components: also fit to the components' label regions at N training frames at "
                           "once (multi-view least squares; sharper outlines everywhere, slower)")
    lift.add_argument("--out", required=True, help="folder to write the avatar and its selection.npz to")

    render = _action(actions, "render", run_render, "render a selection as binary mask PNGs at every frame of a split",
                     "Render a selection as binary mask PNGs at every frame of a split; with --components, print "
                     "the IoU against the dataset's label regions.")
    render.add_argument("--split", default="val", help="split to render (default val)")
    render.add_argument("--selection", default=None, metavar="FILE",
                        help="selection npz (default: selection.npz in the avatar's folder)")
    render.add_argument("--components", nargs="+", default=None, metavar="NAME",
                        help="compare with the dataset's label region of these components or groups (IoU)")
    render.add_argument("--out", required=True, metavar="DIR", help="folder to write the mask PNGs into")
    render.add_argument("--method", choices=("exact", "net"), default="exact",
                        help="exact (default): render the selected Gaussians; net: the mapping network, trained "
                             "here, warps the mask the selection was lifted from (a selection made by 'masks lift')")
    render.add_argument("--net-steps", type=int, default=400, metavar="N",
                        help="mapping-network training steps (--method net; default 400)")
    render.add_argument("--net-pose-step", type=float, default=None, metavar="DEG",
                        help="spacing of the poses the mapping network trains at, in degrees of azimuth and "
                             "elevation around the head (--method net; default 10; coarser is faster)")


def run(args: argparse.Namespace) -> int:
    return int(args._action(args) or 0)


# ---- shared ---------------------------------------------------------------------------------------
def _load_dataset(path: str) -> AvatarDataset:
    from engine.data.vhap_format import read_dataset

    return read_dataset(path)  # DatasetError (a ValueError) names the folder or file and the problem


def _split(dataset: AvatarDataset, split: str) -> tuple[FrameRecord, ...]:
    records = dataset.frames(split)
    if not records:
        raise CommandError(f"{dataset.root}: split {split!r} has no frames; splits: {', '.join(dataset.splits)}")
    return records


def _wanted(items: list[str]) -> tuple[str, list[int]]:
    """('lips, eyes', label indices) from component or group names (comma or space separated)."""
    from engine.head.components import labels_of

    names = component_names(items)
    try:
        return ", ".join(names), labels_of(names)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _label_map(record: FrameRecord) -> Tensor:
    """[H, W] long label map of a frame at the dataset's size."""
    from engine.data.frames import load_labels

    if record.label_path is None:
        raise CommandError(f"{record.image_path}: the dataset has no label map for this frame")
    return load_labels(record.label_path)


def _listing(values: list[int]) -> str:
    """'0-5, 8, 10-12' for sorted distinct ints."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _find_frame(dataset: AvatarDataset, timestep: int, camera: int) -> FrameRecord:
    """The frame (of any split) at a timestep and camera; CommandError listing the valid ones."""
    at_t = [r for records in dataset.splits.values() for r in records if r.timestep == timestep]
    if not at_t:
        raise CommandError(f"{dataset.root}: no timestep {timestep}; timesteps: {_listing(dataset.timesteps(None))}")
    for r in at_t:
        if r.camera_index == camera:
            return r
    cams = sorted({r.camera_index for r in at_t})
    raise CommandError(f"{dataset.root}: no camera {camera} at timestep {timestep}; cameras: {_listing(cams)}")


# ---- label ----------------------------------------------------------------------------------------
def run_label(args: argparse.Namespace) -> int:
    from app.progress import progress_bar
    from engine.avatar.avatar import Avatar
    from engine.avatar.files import save_avatar
    from engine.semantics.fci import dataset_label_views, identify, triangle_labels, vote_labels

    if args.stride < 1 or (args.size is not None and args.size < 1):
        raise CommandError("--stride and --size must be positive")
    dataset = _load_dataset(args.dataset)
    _split(dataset, args.split)
    parser = None
    if args.parser:
        from engine.semantics.face_parser import FaceParser

        parser = FaceParser.from_path(args.parser)
    avatar = load_avatar_arg(args)
    start = time.perf_counter()
    views = dataset_label_views(avatar, dataset, args.split, args.size, args.stride, parser)
    cam = views[0].camera
    source = f"face-parser maps ({args.parser})" if parser else "label maps"
    print(f"voting {len(views)} {source} of split {args.split!r} ({cam.width}x{cam.height}) "
          f"onto {avatar.gaussians.count:,} Gaussians")
    with progress_bar("masks label") as progress:
        votes = vote_labels(avatar, views, progress=progress, total=len(views))
    print(f"voted {len(views)} frames in {time.perf_counter() - start:.1f} s")
    tri = triangle_labels(avatar)
    fused = identify(tri, votes)
    before = avatar.gaussians.labels
    out = save_avatar(Avatar(avatar.head, avatar.gaussians.replace(labels=fused.labels), avatar.params, avatar.name,
                             dataset=avatar.dataset),
                      args.out)
    for line in label_summary(votes, tri, before, fused.labels, torch.sigmoid(avatar.gaussians.opacity_logit)):
        print(line)
    print(f"wrote {out}")
    return 0


def label_summary(votes: Tensor, tri: Tensor, before: Tensor, after: Tensor, opacity: Tensor) -> list[str]:
    """Report lines: seen share, vote agreement, changed labels, per-component counts.

    votes [N, L]; tri, before, after [N] long labels (triangle, the avatar's, fused); opacity [N].
    """
    from engine.head.components import COMPONENTS
    from engine.semantics.fci import agreement, voted_labels

    voted, seen = voted_labels(votes)
    seen_share = float((opacity * seen).sum() / opacity.sum().clamp(min=1e-12))
    lines = [
        f"seen: {int(seen.sum()):,} of {seen.numel():,} Gaussians, {100 * seen_share:.1f}% of the opacity",
        (f"voted labels agree with the triangle labels for {100 * agreement(voted, tri, opacity, seen):.1f}% "
         f"of the seen Gaussians (by opacity)"),
        f"changed label: {int((after != before).sum()):,} Gaussians",
        f"{'component':16s} {'before':>8s} {'after':>8s}",
    ]
    n = len(COMPONENTS)
    was, now = torch.bincount(before.clamp(0, n - 1), minlength=n), torch.bincount(after.clamp(0, n - 1), minlength=n)
    lines += [f"{name:16s} {int(was[i]):8,d} {int(now[i]):8,d}"
              for i, name in enumerate(COMPONENTS) if was[i] or now[i]]
    return lines


# ---- lift -----------------------------------------------------------------------------------------
def run_lift(args: argparse.Namespace) -> int:
    from app.progress import progress_bar
    from engine.avatar.files import save_avatar
    from engine.io.images import read_mask_png
    from engine.semantics.fci import timestep_params
    from engine.semantics.lift import FIT_STEPS, MaskView, fit_to_views, lift_filled, rest_points
    from engine.semantics.region_fit import label_region, region_views
    from engine.semantics.selection import SELECTION_FILE, Selection, save_selection

    if not 0.0 <= args.threshold <= 1.0:
        raise CommandError(f"--threshold must be in [0, 1], got {args.threshold}")
    if args.fit_steps is not None and args.fit_steps < 0:
        raise CommandError(f"--fit-steps must be 0 or more, got {args.fit_steps}")
    if args.fit_frames < 0 or (args.fit_frames and not args.components):
        raise CommandError("--fit-frames needs --components (the other frames' masks are the dataset's label regions)"
                           if args.fit_frames > 0 else f"--fit-frames must be 0 or more, got {args.fit_frames}")
    wanted = _wanted(args.components) if args.components else None
    dataset = _load_dataset(args.dataset)
    record = _find_frame(dataset, args.timestep, args.camera)
    w, h = record.camera.width, record.camera.height
    where = f"timestep {record.timestep}, camera {record.camera_index}"
    if wanted is None:
        mask = read_mask_png(args.mask)
        if tuple(mask.shape) != (h, w):
            raise CommandError(f"{args.mask}: mask is {mask.shape[1]}x{mask.shape[0]}, but the image at {where} "
                               f"({record.image_path.name}) is {w}x{h}")
        source = args.mask
    else:
        mask = label_region(_label_map(record), wanted[1]).float()
        if not bool(mask.any()):
            raise CommandError(f"{record.label_path}: no pixel is labelled {wanted[0]}")
        source = f"the {wanted[0]} region"
    avatar = load_avatar_arg(args)
    start = time.perf_counter()
    params = timestep_params(avatar, dataset)
    with torch.no_grad():
        splats = avatar.splats(params[record.timestep])
    lifted, weights = lift_filled(splats, record.camera, mask, rest_points(avatar), avatar.gaussians.labels)
    steps = FIT_STEPS if args.fit_steps is None else args.fit_steps
    views, free = [MaskView(splats, record.camera, mask[None])], lifted.seen
    if args.fit_frames:
        assert wanted is not None
        more, seen_there = region_views(avatar, dataset, wanted[1], args.fit_frames,
                                        skip=(record.timestep, record.camera_index), params=params)
        views, free = views + more, free | seen_there
    with progress_bar("masks lift") as progress:
        weights = fit_to_views(views, weights[:, None], free, steps, progress=progress)[:, 0]
    selection = Selection(weights.detach().cpu().clamp(0.0, 1.0), args.threshold)
    out = save_avatar(avatar, args.out)
    reference = {"reference_mask": mask.float(), "reference_timestep": torch.tensor(record.timestep),
                 "reference_camera": torch.tensor(record.camera_index)}  # what `render --method net` warps
    save_selection(selection, out / SELECTION_FILE, reference)
    seen = int(lifted.seen.sum())
    print(f"lifted {source} ({int((mask >= 0.5).sum()):,} px) at {where} ({w}x{h}) onto {avatar.gaussians.count:,} "
          f"Gaussians: {seen:,} seen, {avatar.gaussians.count - seen:,} filled by component; fitted at "
          f"{len(views)} view{'s' if len(views) > 1 else ''} ({1000 * (time.perf_counter() - start):.0f} ms)")
    print(f"selected {int(selection.mask.sum()):,} Gaussians (weight >= {args.threshold:g})")
    print(f"wrote {out} and {out / SELECTION_FILE}")
    return 0


# ---- render ---------------------------------------------------------------------------------------
def _selection_file(args: argparse.Namespace) -> Path:
    from engine.semantics.selection import SELECTION_FILE

    if args.selection:
        return Path(args.selection)
    if args.avatar == "demo":
        raise CommandError("the demo avatar has no folder to read selection.npz from: pass --selection FILE")
    p = Path(args.avatar)
    return (p if p.is_dir() else p.parent) / SELECTION_FILE


def run_render(args: argparse.Namespace) -> int:
    from app.progress import progress_bar
    from engine.io.images import save_png
    from engine.semantics.fci import timestep_params
    from engine.semantics.mask_render import render_mask
    from engine.semantics.region_fit import label_region
    from engine.semantics.selection import read_selection

    wanted = _wanted(args.components) if args.components else None
    dataset = _load_dataset(args.dataset)
    records = _split(dataset, args.split)
    if wanted is not None and records[0].label_path is None:
        raise CommandError(f"{dataset.root}: split {args.split!r} has no label maps to compare with")
    selection_file = _selection_file(args)
    avatar = load_avatar_arg(args)
    selection, extras = read_selection(selection_file, avatar.gaussians.count)  # FileFormatError on a count mismatch
    params = timestep_params(avatar, dataset)
    weights = selection.mask.float()  # [N]: render the selected set, as the GUI shows it
    net = _mapping_net(args, avatar, dataset, params, selection_file, extras, weights) if args.method == "net" else None
    out = Path(args.out)
    start = time.perf_counter()
    inter = union = pixels = 0
    splats, posed_at = None, None
    with progress_bar("masks render") as progress:
        for i, r in enumerate(records):
            if net is not None:
                mask = net(r)
            else:
                if posed_at != r.timestep:
                    with torch.no_grad():
                        splats, posed_at = avatar.splats(params[r.timestep]), r.timestep
                mask = render_mask(splats, r.camera, weights)  # [H, W] bool
            save_png(out / f"{r.timestep:05d}_{r.camera_index:02d}.png", mask.to(torch.uint8) * 255)
            pixels += int(mask.sum())
            if wanted is not None:
                gt = label_region(_label_map(r), wanted[1])
                inter, union = inter + int((mask & gt).sum()), union + int((mask | gt).sum())
            progress((i + 1) / len(records), f"{i + 1}/{len(records)} masks")
    how = "by the mapping network" if net is not None else f"of {int(selection.mask.sum()):,} selected Gaussians"
    print(f"wrote {len(records)} masks of split {args.split!r} to {out} ({how}, {pixels / len(records):.0f} px per mask; "
          f"{time.perf_counter() - start:.1f} s)")
    if wanted is not None:
        score = inter / union if union else 1.0
        print(f"IoU {wanted[0]}: {score:.3f} (Σ intersection / Σ union over {len(records)} frames)")
    return 0


NET_TIMES = 16  # at most this many timesteps of the training sequence train the mapping network (every k-th)
NET_SIZE = 128  # resolution of its training samples


def _mapping_net(args: argparse.Namespace, avatar: Avatar, dataset: AvatarDataset, params: dict[int, FlameParams],
                 selection_file: Path, extras: dict[str, np.ndarray], selected: Tensor) -> Callable[[FrameRecord], Tensor]:
    """Train the mapping network on the selection (selected [N]; extras: those saved with it) and return
    frame -> [H, W] bool mask."""
    from app.progress import progress_bar
    from engine.semantics.mapping_data import (
        LATTICE_STEP_DEG,
        StillHeads,
        TimePose,
        build_mapping_data,
        flame_keys,
        lattice_samples,
        predict_at,
    )
    from engine.semantics.mapping_net import MappingNetConfig, train_mapping_net

    if args.net_steps < 1:
        raise CommandError(f"--net-steps must be 1 or more, got {args.net_steps}")
    step = LATTICE_STEP_DEG if args.net_pose_step is None else args.net_pose_step
    if not 1.0 <= step <= 90.0:
        raise CommandError(f"--net-pose-step must be between 1 and 90 degrees, got {step:g}")
    if "reference_mask" not in extras:
        raise CommandError(f"{selection_file}: no reference mask to warp (the mapping network carries the mask a "
                           "selection was lifted from: make it with 'dynamicavatars masks lift', or use --method exact)")
    m0 = torch.from_numpy(extras["reference_mask"]).float()
    ref = _find_frame(dataset, int(extras["reference_timestep"]), int(extras["reference_camera"]))
    if tuple(m0.shape) != (ref.camera.height, ref.camera.width):
        raise CommandError(f"{selection_file}: reference mask is {m0.shape[-1]}x{m0.shape[0]}, the image of timestep "
                           f"{ref.timestep}, camera {ref.camera_index} is {ref.camera.width}x{ref.camera.height}")
    _split(dataset, "train")  # a clear error when the split is empty
    sequence = dataset.timesteps("train")
    trained = sorted(set(sequence[:: max(1, math.ceil(len(sequence) / NET_TIMES))]))
    heads = StillHeads(avatar, params.__getitem__)
    tp = TimePose.of_dataset(dataset, trained, heads)
    start = time.perf_counter()
    samples, azimuths, elevations = lattice_samples(tp, heads, trained, ref.camera.resized(NET_SIZE, NET_SIZE),
                                                    step)
    config = MappingNetConfig(grid_t=len(trained), grid_p=azimuths, grid_e=elevations, steps=args.net_steps)
    with torch.no_grad():
        posed = avatar.splats(params[ref.timestep])
    with progress_bar("mapping network") as progress:
        data, _ = build_mapping_data(posed, ref.camera, m0[None], samples, selected=selected[:, None],
                                     progress=lambda f, text: progress(0.2 * f, text))
        net, losses = train_mapping_net(data, config, progress=lambda f, text: progress(0.2 + 0.8 * f, text))
    print(f"mapping network: trained on {len(trained)} timesteps of split 'train' x {azimuths * elevations} poses "
          f"({config.steps} steps, final loss {losses[-1]:.4f}; {time.perf_counter() - start:.1f} s)")
    keys, every = flame_keys(dataset.flame_params(None)), dataset.timesteps(None)

    def predict(r: FrameRecord) -> Tensor:
        t = tp.t(r.timestep) if r.timestep in tp.sequence else tp.t(r.timestep, keys[every.index(r.timestep)])
        return predict_at(net, tp, m0[None], t, heads.relative(r.camera, r.timestep), ref.camera)[0] >= 0.5

    return predict
