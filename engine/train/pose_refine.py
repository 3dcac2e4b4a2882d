"""Photometric refinement of per-frame FLAME parameters against a trained, frozen avatar.

Analysis by synthesis, the last stage photometric trackers run: for each frame, the head rotation,
translation, neck, jaw, eyes and expression are moved so the avatar's render matches the frame's own
image and foreground mask; the Gaussians stay as trained. A frame the avatar was not trained on (a
held-out later time range of a monocular clip) has only the tracker's parameters; this gives it the
parameters the avatar itself explains the image with. Only that frame's image and mask are used.

Each frame starts from its tracked parameters plus the previous refined frame's correction (frames
are taken in time order; a tracker's error drifts slowly), renders at half resolution for the first
half of the steps and at full resolution after, and keeps a quadratic prior toward the tracked values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.avatar.files import load_avatar, save_avatar
from engine.data.frames import FrameLoader, LoadedFrame, fit_size, resize_float
from engine.data.vhap_format import AvatarDataset
from engine.head.model import HeadModel
from engine.head.params import FRAME_KEYS, FlameParams
from engine.render.rasterize import render
from engine.train.losses import flame_prior, mean_scores

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]


@dataclass(frozen=True)
class PoseRefineConfig:
    """How to refine one frame's FLAME parameters against a frozen avatar."""

    iters: int = 40  # Adam steps per frame (the first half at half resolution)
    resolution: int = 256  # longer image side rendered at in the second half (the first half: half of it)
    lr_pose: float = 3e-3  # lr of head rotation, neck, jaw and eyes (radians)
    lr_translation: float = 3e-4  # lr of translation (scene units, metres for FLAME)
    lr_expr: float = 3e-2  # lr of expression coefficients
    lambda_mask: float = 0.0  # weight of |alpha − mask| beside the colour L1 (0 = colour alone)
    lambda_prior: float = 1e-2  # weight of the squared distance from the tracked values (engine.train.losses.flame_prior)
    warm_start: bool = True  # start each frame from the previous frame's correction
    keys: tuple[str, ...] = FRAME_KEYS  # which FLAME fields are refined (engine.head.params.FRAME_KEYS; the rest stay)
    backend: str = "auto"  # rasterizer backend (engine.render.rasterize.BACKENDS)


@dataclass(frozen=True)
class FrameRefinement:
    """One frame's refinement."""

    params: FlameParams  # [1] refined parameters
    loss_before: float  # photometric loss at full resolution with the starting (tracked) parameters
    loss_after: float  # ... with the refined parameters
    correction: dict[str, Tensor]  # key -> [1, D] refined − tracked


@dataclass(frozen=True)
class RefineResult:
    """A refinement of some of an avatar's timesteps."""

    params: FlameParams  # every row of the avatar's sequence; refined rows replaced
    timesteps: list[int]  # the dataset timesteps refined (in order)
    loss_before: list[float]  # per refined timestep
    loss_after: list[float]  # per refined timestep
    cancelled: bool  # stopped by the cancel callback (the frames done so far are in params)


def _lrs(config: PoseRefineConfig) -> dict[str, float]:
    return {"expr": config.lr_expr, "translation": config.lr_translation,
            **{k: config.lr_pose for k in ("rotation", "neck_pose", "jaw_pose", "eyes_pose")}}


def frame_loss(avatar: Avatar, params: FlameParams, frame: LoadedFrame, lambda_mask: float,
               backend: str = "auto") -> Tensor:
    """Scalar mean |render − image| (+ lambda_mask · mean |alpha − mask| when the frame has a mask) of the
    avatar posed by params [1] through the frame's camera, over white."""
    assert params.frames == 1, f"params must be one frame, got {params.frames}"
    result = render(avatar.splats(params), frame.camera, (1.0, 1.0, 1.0), backend=backend)
    loss = (result.rgb - frame.image).abs().mean()
    if lambda_mask and frame.mask is not None:
        loss = loss + lambda_mask * (result.alpha - frame.mask).abs().mean()
    return loss


def _half(frame: LoadedFrame) -> LoadedFrame:
    """The frame at half size (area-averaged pixels, camera to match)."""
    h, w = frame.image.shape[:2]
    size = (max(1, w // 2), max(1, h // 2))
    mask = None if frame.mask is None else resize_float(frame.mask[..., None], size)[..., 0]
    return replace(frame, camera=frame.camera.resized(*size), image=resize_float(frame.image, size), mask=mask,
                   labels=None)


def refine_frame(avatar: Avatar, tracked: FlameParams, frame: LoadedFrame, config: PoseRefineConfig = PoseRefineConfig(),
                 start: dict[str, Tensor] | None = None) -> FrameRefinement:
    """Refine one frame's parameters tracked [1] against the frame's image and mask, Gaussians frozen.

    start: key -> [1, D] correction to begin from (default none). The avatar is left unchanged."""
    assert tracked.frames == 1, f"tracked must be one frame, got {tracked.frames}"
    frozen = replace(avatar, gaussians=avatar.gaussians.detach_clone())
    lrs = _lrs(config)
    unknown = set(config.keys) - set(FRAME_KEYS)
    assert not unknown, f"keys must be FLAME per-frame fields {FRAME_KEYS}, got {sorted(unknown)}"
    delta = {k: torch.nn.Parameter(start[k].clone() if start and k in start else torch.zeros_like(getattr(tracked, k)))
             for k in config.keys}
    optimizer = torch.optim.Adam([{"params": [delta[k]], "lr": lrs[k]} for k in config.keys])
    posed = lambda: tracked.with_values(**{k: getattr(tracked, k) + delta[k] for k in config.keys})  # noqa: E731
    with torch.no_grad():
        before = float(frame_loss(frozen, tracked, frame, config.lambda_mask, config.backend))
    coarse = _half(frame)
    for i in range(config.iters):
        target = coarse if i < config.iters // 2 else frame
        optimizer.zero_grad(set_to_none=True)
        loss = frame_loss(frozen, posed(), target, config.lambda_mask, config.backend)
        loss = loss + config.lambda_prior * flame_prior(delta)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        refined = posed()
        after = float(frame_loss(frozen, refined, frame, config.lambda_mask, config.backend))
    if not after <= before:  # never hand back something worse than the start
        return FrameRefinement(tracked, before, before, {k: torch.zeros_like(v) for k, v in delta.items()})
    return FrameRefinement(refined, before, after, {k: v.detach().clone() for k, v in delta.items()})


def refine_timesteps(avatar: Avatar, dataset: AvatarDataset, timesteps: list[int],
                     config: PoseRefineConfig = PoseRefineConfig(), progress: Progress | None = None,
                     cancel: Cancel | None = None) -> RefineResult:
    """Refine the avatar's parameters at some of the dataset's timesteps (rows of the avatar's sequence follow
    dataset.timesteps(None), as a trained avatar's do), each against its first camera's frame."""
    every = dataset.timesteps(None)
    if avatar.params.frames != len(every):
        raise ValueError(f"avatar {avatar.name!r} has {avatar.params.frames} frames of FLAME parameters, the dataset "
                         f"{dataset.root} has {len(every)} timesteps: refine an avatar trained on this dataset")
    records = {}
    for split in dataset.splits:
        for f in dataset.frames(split):
            records.setdefault(f.timestep, f)
    loader = FrameLoader(capacity=0)
    rows = {k: getattr(avatar.params, k).clone() for k in FRAME_KEYS}
    before, after, done = [], [], []
    previous: dict[str, Tensor] | None = None
    tell = progress or (lambda f, m: None)
    for n, t in enumerate(sorted(timesteps)):
        if cancel is not None and cancel():
            break
        tell(n / max(1, len(timesteps)), f"refining poses: frame {n + 1}/{len(timesteps)}")
        record = records[t]
        frame = loader.load(record, fit_size(record.camera.width, record.camera.height, config.resolution))
        row = every.index(t)
        tracked = avatar.params.frame(row)
        result = refine_frame(avatar, tracked, frame, config, previous if config.warm_start else None)
        previous = result.correction
        for k in FRAME_KEYS:
            rows[k][row] = getattr(result.params, k)[0]
        before.append(result.loss_before)
        after.append(result.loss_after)
        done.append(t)
    tell(1.0, f"refined poses of {len(done)} frame(s)")
    return RefineResult(avatar.params.with_values(**rows), done, before, after, len(done) < len(timesteps))


@torch.no_grad()
def mean_psnr(avatar: Avatar, dataset: AvatarDataset, split: str, resolution: int, backend: str = "auto") -> float:
    """Mean PSNR (dB) of the avatar with its own per-timestep parameters over a split's frames (what Trainer.evaluate
    measures of a trainer: engine.train.losses.mean_scores); NaN for none."""
    every = dataset.timesteps(None)
    loader = FrameLoader(capacity=0)
    load = lambda record: loader.load(record, fit_size(record.camera.width, record.camera.height, resolution))
    posed = lambda frame: avatar.splats(avatar.params.frame(every.index(frame.record.timestep)))
    rgb = lambda frame: render(posed(frame), frame.camera, (1.0, 1.0, 1.0), backend=backend).rgb
    return mean_scores(dataset.frames(split), load, rgb, with_ssim=False).get("psnr", math.nan)


def refine_avatar_folder(folder: str | Path, dataset: AvatarDataset, split: str = "test",
                         config: PoseRefineConfig = PoseRefineConfig(), head: HeadModel | str | None = None,
                         progress: Progress | None = None, cancel: Cancel | None = None) -> RefineResult:
    """Refine the parameters of a split's timesteps (default the held-out ones) of the avatar saved in `folder`
    (trained on `dataset`) and write them into the folder's FLAME parameters (Gaussians untouched)."""
    if not dataset.frames(split):
        raise ValueError(f"dataset {dataset.root} has no {split!r} frames to refine")
    avatar = load_avatar(folder, head)
    result = refine_timesteps(avatar, dataset, dataset.timesteps(split), config, progress, cancel)
    if result.timesteps:
        save_avatar(replace(avatar, params=result.params), folder)
    return result
