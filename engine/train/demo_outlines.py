"""Fitting the demo avatar's Gaussians to its head's own label renders (the label loss, geometry only).

The procedural demo Gaussians (engine/avatar/demo.py) are sampled over the head's triangles and sized
to cover them, so every part's outline is blurred outward by a Gaussian's size plus the rasterizer's
0.3 px² dilation: the lids' Gaussians hide the edge of each eye, the lips' spill over the mouth
opening. This fit moves, scales, turns and fades the Gaussians (colours and labels stay) so the
avatar's label render matches the head's, on synthetic renders of the head (engine/data/synth.py):
- the label loss (engine/train/losses.py: rendered component channels against the label map);
- an L1 coverage term against the frames' foreground masks (else parting two parts by a gap would be
  cheaper than drawing one of them: the label loss charges half for a gap, all for a wrong part);
- the look kept: L1 to what the Gaussians drew before the fit, at the pixels where that render's
  labels already agreed with the head's, a penalty on growing and an anchor on the positions;
- the eyeballs' Gaussians keep their positions and turns (their iris and pupil are painted by
  position); they may still change size and opacity.
One frame per step, at the resolutions of the datasets given (several sizes: the dilation is in pixels).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.avatar.demo import OUTLINE_FIELDS
from engine.avatar.gaussians import BoundGaussians
from engine.data.frames import FrameLoader, LoadedFrame
from engine.data.synth import Cancel, Cancelled, Progress
from engine.data.vhap_format import AvatarDataset
from engine.head.components import COMPONENTS, LABEL
from engine.render.rasterize import RenderResult, render
from engine.render.splats import Splats
from engine.semantics.mask_render import label_map
from engine.train.losses import label_loss

FROZEN_PLACE = ("left_eye", "right_eye")  # components whose Gaussians keep position and rotation


@dataclass(frozen=True)
class OutlineFitConfig:
    steps: int = 1500
    lr_xyz: float = 2e-3  # Adam learning rates of the local position (triangle-scale units), log-scale,
    lr_log_scale: float = 5e-3  # rotation quaternion and opacity logit
    lr_rotation: float = 1e-3
    lr_opacity: float = 2e-2
    w_coverage: float = 1.0  # L1 of the rendered coverage against the foreground mask
    w_look: float = 1.0  # L1 to the unfitted render where its labels were right
    w_growth: float = 1.0  # squared growth of the log-scales
    w_anchor: float = 0.1  # squared move of the local positions
    seed: int = 0


@dataclass
class _Target:
    """What one frame is fitted to: the head's labels and mask, and the unfitted avatar's look there."""

    frame: LoadedFrame
    verts: Tensor  # [V, 3] the head posed at the frame
    look: Tensor  # [H, W, 3] the unfitted Gaussians' render over white
    agree: Tensor  # [H, W, 1] 1 where that render's labels matched the head's


def _draw(splats: Splats, frame: LoadedFrame, onehot: Tensor) -> RenderResult:
    """The splats' colour (over white), coverage and component channels (onehot [N, C]) at the frame."""
    light = replace(splats, sh=splats.sh[:, :1])  # the demo's colours are degree 0
    return render(light, frame.camera, (1.0, 1.0, 1.0), features=onehot)


def _target(avatar: Avatar, frame: LoadedFrame, verts: Tensor, onehot: Tensor) -> _Target:
    """The frame's target, the head posed there as verts [V, 3]."""
    with torch.no_grad():
        out = _draw(avatar.gaussians.deform(verts, avatar.head.faces), frame, onehot)
    assert out.features is not None
    return _Target(frame, verts, out.rgb, (label_map(out.features) == frame.labels).float()[..., None])


def fit_outlines(
    avatar: Avatar,
    datasets: list[AvatarDataset],
    config: OutlineFitConfig = OutlineFitConfig(),
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> BoundGaussians:
    """avatar's Gaussians with their geometry (OUTLINE_FIELDS) fitted to the label maps and masks of the
    datasets' training frames (which must have both); the avatar itself is left as it was."""
    g = avatar.gaussians
    onehot = torch.nn.functional.one_hot(g.labels, len(COMPONENTS)).to(g.xyz)
    loader = FrameLoader(capacity=0)
    pool = [(d, r) for d, ds in enumerate(datasets) for r in ds.frames("train")]
    if not pool:
        raise ValueError("fit_outlines needs datasets with training frames")
    start = {k: getattr(g, k).detach().clone() for k in OUTLINE_FIELDS}
    fitted = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    lrs = {"xyz": config.lr_xyz, "rotation": config.lr_rotation, "log_scale": config.lr_log_scale,
           "opacity_logit": config.lr_opacity}
    opt = torch.optim.Adam([{"params": [fitted[k]], "lr": lrs[k]} for k in OUTLINE_FIELDS])
    placed = torch.isin(g.labels, torch.tensor([LABEL[c] for c in FROZEN_PLACE]))  # [N] keep xyz and rotation
    rng = random.Random(config.seed)
    targets: dict[int, _Target] = {}
    params = [(ds.flame_params(None), ds.timesteps(None)) for ds in datasets]  # read once per dataset
    verts: dict[tuple[int, int], Tensor] = {}  # (dataset, timestep) -> the head posed there [V, 3], for every camera
    for step in range(config.steps):
        if cancel is not None and cancel():
            raise Cancelled("outline fit cancelled")
        i = rng.randrange(len(pool))
        if i not in targets:
            d, record = pool[i]
            frame = loader.load(record)
            if frame.labels is None or frame.mask is None:
                raise ValueError(f"{datasets[d].root}: frame {record.timestep} has no label map or mask to fit "
                                 "outlines to")
            key = (d, record.timestep)
            if key not in verts:
                flame, timesteps = params[d]
                with torch.no_grad():
                    verts[key] = avatar.posed_vertices(flame.frame(timesteps.index(record.timestep)))
            targets[i] = _target(avatar, frame, verts[key], onehot)
        t = targets[i]
        out = _draw(g.replace(**fitted).deform(t.verts, avatar.head.faces), t.frame, onehot)
        assert out.features is not None and t.frame.mask is not None and t.frame.labels is not None
        loss = (label_loss(out.features, t.frame.labels)
                + config.w_coverage * (out.alpha - t.frame.mask).abs().mean()
                + config.w_look * ((out.rgb - t.look).abs() * t.agree).mean()
                + config.w_growth * torch.relu(fitted["log_scale"] - start["log_scale"]).pow(2).mean()
                + config.w_anchor * (fitted["xyz"] - start["xyz"]).pow(2).sum(1).mean())
        opt.zero_grad()
        loss.backward()
        for k in ("xyz", "rotation"):
            assert fitted[k].grad is not None
            fitted[k].grad[placed] = 0
        opt.step()
        if progress is not None:
            progress((step + 1) / config.steps, f"outline fit: step {step + 1}/{config.steps}, loss {loss.item():.5f}")
    return g.replace(**{k: v.detach() for k, v in fitted.items()})
