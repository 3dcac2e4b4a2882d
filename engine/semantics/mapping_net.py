"""The paper's mask-mapping network M(t, p, M0) -> M(t, p), as a learned warp.

A learned feature grid on the time–pose plane (t, p both normalised to [0, 1]; the pose p is the
camera's azimuth around the head, in the head's frame (mapping_data.head_frame), with an optional
second pose axis e, its elevation; every grid node holds a small feature map, code x f' x f') is
read by bilinear (with e: trilinear) interpolation into z(t, p, e). A small conv decoder turns z
into fields over the target image: a dense backward displacement (where
each target pixel was in the reference view at (t0, p0)), a foreground logit (is there head at
this pixel at all) and a residual logit. The reference mask M0 is warped by the displacement with
bilinear sampling at the output resolution, so thin parts (eyes, brows, lips) keep their shape;
residual fields adjust the warped mask's logit (occlusion, parts the reference did not see).
Every mask painted at the same reference view shares the same warp, so one network carries any
mask drawn there. Each grid node also holds the fields themselves (displacement and foreground),
added to the decoder's output and set to the mean of the training samples nearest to the node: the
exact warps at the nodes, which training leaves as they are (letting Adam move them blurred them:
held-out-camera lips 0.60 -> 0.35); the learned grid and decoder add what the warp misses.

Training data come from the modeling stage (engine.semantics.mapping_data): masks lifted at the
reference view and rendered exactly at many (t, p, e), plus the exact backward displacement (the
reference-view position of the Gaussians seen at each target pixel). The modeling stage renders any
pose, so the samples sit on a lattice of poses ~10° apart over the training cameras' range
(mapping_data.TimePose.lattice): 2D warps interpolate well over 10°, not over the 30°+ between a
rig's cameras; every node has samples of its own. Loss: Dice + BCE on masks, BCE on the
foreground, L1 on the displacement where the target shows the head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class MappingNetConfig:
    """Size and training of the mapping network."""

    size: int = 128  # training resolution of masks (predictions may be asked at any size)
    field_size: int = 64  # resolution of each grid node's feature map and of the decoded fields
    grid_t: int = 8  # feature-grid nodes along time
    grid_p: int = 6  # feature-grid nodes along camera azimuth
    grid_e: int = 1  # feature-grid nodes along camera elevation (1: the time–azimuth plane alone)
    code: int = 8  # channels of each grid node's feature map
    code_size: int = 16  # resolution of each node's feature map (the decoder works at field_size)
    channels: int = 32  # decoder channels
    steps: int = 400  # optimiser steps
    batch: int = 8  # (t, p) samples per step (all masks of a sample are used)
    lr: float = 1e-2  # Adam learning rate (cosine-annealed to 0)
    flow_weight: float = 10.0  # weight of the L1 displacement loss (normalised image units)
    fg_weight: float = 0.5  # weight of the foreground BCE
    seed: int = 0  # initialisation and batch sampling


def identity_grid(height: int, width: int, like: Tensor) -> Tensor:
    """[1, H, W, 2] normalised (x, y) pixel-centre coordinates in [-1, 1] (grid_sample, align_corners=False)."""
    ys = (torch.arange(height, dtype=like.dtype, device=like.device) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=like.dtype, device=like.device) + 0.5) / width * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)[None]


class MaskMappingNet(nn.Module):
    """M(t, p, M0): reference masks [B, S, h, w] + (t, p, e) [B] in [0, 1] -> mask probabilities [B, S, H, W]."""

    def __init__(self, config: MappingNetConfig = MappingNetConfig()) -> None:
        super().__init__()
        self.config = config
        c, f, fc = config.channels, config.field_size, config.code_size
        gen = torch.Generator().manual_seed(config.seed)
        nodes = (config.grid_e, config.grid_p, config.grid_t)
        # one low-resolution feature map per grid node: [grid_e, grid_p, grid_t, code, f', f']
        self.grid = nn.Parameter(0.1 * torch.randn(*nodes, config.code, fc, fc, generator=gen))
        # per node, the fields themselves (displacement x, y and foreground logit), set from the samples at
        # the node (init_fields): the decoder adds to them
        self.base: Tensor
        self.register_buffer("base", torch.zeros(*nodes, 3, f, f))
        self.dec = nn.Sequential(
            nn.Conv2d(config.code, c, 3, padding=1), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1), nn.SiLU(),
            nn.Conv2d(c, 5, 3, padding=1),  # flow (2), foreground, residual bias, residual gain
        )
        nn.init.zeros_(self.dec[-1].weight)
        nn.init.zeros_(self.dec[-1].bias)
        self.gain = nn.Parameter(torch.tensor(6.0))  # logit scale of the warped mask

    def _read(self, g: Tensor, t: Tensor, p: Tensor, e: Tensor) -> Tensor:
        """[B, C, f, f] interpolated read of a node tensor g [grid_e, grid_p, grid_t, C, f, f] at t, p, e [B] in [0, 1]."""

        def corners(x: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
            pos = x.clamp(0, 1).to(g) * (n - 1)
            i0 = pos.floor().long().clamp(max=max(0, n - 2))
            return i0, (i0 + 1).clamp(max=n - 1), (pos - i0).clamp(0, 1)[:, None, None, None]

        (t0, t1, wt), (p0, p1, wp), (e0, e1, we) = (corners(x, n) for x, n in zip((t, p, e), g.shape[2::-1]))

        def plane(ei: Tensor) -> Tensor:
            return (1 - wp) * ((1 - wt) * g[ei, p0, t0] + wt * g[ei, p0, t1]) + wp * ((1 - wt) * g[ei, p1, t0] + wt * g[ei, p1, t1])

        return plane(e0) if g.shape[0] == 1 else (1 - we) * plane(e0) + we * plane(e1)

    def fields(self, t: Tensor, p: Tensor, e: Tensor) -> Tensor:
        """[B, 5, f, f] fields at (t, p, e): displacement x, y (normalised units), foreground logit,
        residual bias and residual gain of the mask logit (the node fields plus the decoded code)."""
        f = self.config.field_size
        code = F.interpolate(self._read(self.grid, t, p, e), size=(f, f), mode="bilinear", align_corners=False)
        return self.dec(code) + F.pad(self._read(self.base, t, p, e), (0, 0, 0, 0, 0, 2))

    @torch.no_grad()
    def init_fields(self, t: Tensor, p: Tensor, e: Tensor, flow: Tensor, foreground: Tensor) -> None:
        """Start each grid node's fields at the mean of the samples nearest to it.

        t, p, e [K] in [0, 1]; flow [K, H, W, 2] backward displacement; foreground [K, H, W] alpha.
        Nodes no sample is nearest to keep zero fields: train on a lattice that covers every node
        (mapping_data.lattice_samples).
        """
        cfg, f = self.config, self.config.field_size
        fl = F.interpolate(flow.permute(0, 3, 1, 2), size=(f, f), mode="area")
        fg = F.interpolate(foreground[:, None], size=(f, f), mode="area").clamp(0.02, 0.98)
        target = torch.cat([fl, torch.logit(fg)], dim=1)  # [K, 3, f, f]
        ti, pi, ei = ((x.clamp(0, 1) * (n - 1)).round().long() for x, n in ((t, cfg.grid_t), (p, cfg.grid_p), (e, cfg.grid_e)))
        node = (ei * cfg.grid_p + pi) * cfg.grid_t + ti  # [K] flat index into (grid_e, grid_p, grid_t)
        nodes = cfg.grid_e * cfg.grid_p * cfg.grid_t
        total = torch.zeros(nodes, *target.shape[1:]).index_add_(0, node, target)
        count = torch.bincount(node, minlength=nodes).clamp(min=1)
        self.base.copy_((total / count[:, None, None, None]).view_as(self.base))

    def forward(self, m0: Tensor, t: Tensor, p: Tensor, e: Tensor | None = None,
                size: tuple[int, int] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """m0 [B, S, h, w] in [0, 1], t, p, e [B] (e default 0) -> (mask probs [B, S, H, W], fg logits [B, H, W], flow [B, H, W, 2]).

        (H, W) = size, default (config.size, config.size). M0 is sampled at its own resolution.
        Mask logit = (gain + residual gain)·(2·warped − 1) + residual bias, times the foreground
        probability: the residual fields (shared by all masks of the view) say where the warped
        reference is not to be trusted (surfaces the reference view did not see).
        """
        assert m0.ndim == 4, f"m0 must be [B, S, h, w], got {tuple(m0.shape)}"
        h, w = size or (self.config.size, self.config.size)
        e = torch.zeros_like(t) if e is None else e
        f = F.interpolate(self.fields(t, p, e), size=(h, w), mode="bilinear", align_corners=False)  # [B, 5, H, W]
        flow = f[:, :2].permute(0, 2, 3, 1)  # [B, H, W, 2]
        where = identity_grid(h, w, m0) + flow
        warped = F.grid_sample(m0.to(flow), where, mode="bilinear", padding_mode="zeros", align_corners=False)  # [B, S, H, W]
        logits = (self.gain + f[:, None, 4]) * (2 * warped - 1) + f[:, None, 3]
        probs = torch.sigmoid(logits) * torch.sigmoid(f[:, None, 2])
        return probs, f[:, 2], flow


def resize_masks(masks: Tensor, size: int) -> Tensor:
    """[..., H, W] float masks -> [..., size, size] by area averaging (bilinear when enlarging)."""
    lead = masks.shape[:-2]
    x = masks.float().reshape(-1, 1, *masks.shape[-2:])
    if masks.shape[-1] >= size:
        y = F.interpolate(x, size=(size, size), mode="area")
    else:
        y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return y.reshape(*lead, size, size)


@dataclass(frozen=True)
class MappingData:
    """Training samples of the modeling stage for one reference view (t0, p0).

    K samples (t, p), S masks painted at the reference. The sample tensors share one size (h, w);
    the reference masks may be at any size (the reference camera's).
    """

    m0: Tensor  # [S, H0, W0] reference masks in [0, 1]
    targets: Tensor  # [K, S, h, w] exact lift-and-render of each mask at each sample, in [0, 1]
    foreground: Tensor  # [K, h, w] rendered alpha at each sample, in [0, 1]
    flow: Tensor  # [K, h, w, 2] backward displacement to the reference view (normalised units)
    t: Tensor  # [K] normalised time in [0, 1]
    p: Tensor  # [K] normalised camera azimuth in [0, 1]
    e: Tensor  # [K] normalised camera elevation in [0, 1]

    def __post_init__(self) -> None:
        k, s = self.targets.shape[:2]
        assert self.m0.shape[0] == s, f"m0 has {self.m0.shape[0]} masks, targets [K, S, h, w] have S={s}"
        assert self.foreground.shape[0] == k and self.flow.shape[:3] == (k, *self.targets.shape[2:]), (
            f"foreground [K, h, w] / flow [K, h, w, 2] must match targets {tuple(self.targets.shape)}"
        )
        assert self.t.shape == self.p.shape == self.e.shape == (k,), f"t, p and e must be [K={k}]"


def _mask_loss(probs: Tensor, target: Tensor) -> Tensor:
    """Dice + BCE, both per mask and averaged (probs, target [B, S, H, W])."""
    p = probs.clamp(1e-5, 1 - 1e-5)
    bce = F.binary_cross_entropy(p, target)
    inter = (p * target).sum((2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((2, 3)) + target.sum((2, 3)) + 1)
    return bce + dice.mean()


def train_mapping_net(
    data: MappingData,
    config: MappingNetConfig = MappingNetConfig(),
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[MaskMappingNet, list[float]]:
    """Fit a MaskMappingNet to data; returns it (eval mode) and the loss per step."""
    k = data.targets.shape[0]
    gen = torch.Generator().manual_seed(config.seed)
    net = MaskMappingNet(config)
    net.init_fields(data.t, data.p, data.e, data.flow, data.foreground)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, config.steps))
    size = config.size
    m0 = resize_masks(data.m0, size)[None]  # [1, S, size, size]
    targets = resize_masks(data.targets, size)  # [K, S, size, size]
    fg = resize_masks(data.foreground, size)  # [K, size, size]
    flow = F.interpolate(data.flow.permute(0, 3, 1, 2), size=(size, size), mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
    solid = (fg > 0.5).float()
    losses: list[float] = []
    for step in range(config.steps):
        if cancel is not None and cancel():
            break
        ki = torch.randint(0, k, (min(config.batch, k),), generator=gen)
        probs, fg_logit, pred_flow = net(m0.expand(len(ki), -1, -1, -1), data.t[ki], data.p[ki], data.e[ki])
        flow_err = ((pred_flow - flow[ki]).abs().sum(-1) * solid[ki]).sum() / solid[ki].sum().clamp(min=1)
        loss = (_mask_loss(probs, targets[ki]) + config.fg_weight * F.binary_cross_entropy_with_logits(fg_logit, solid[ki])
                + config.flow_weight * flow_err)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress is not None and step % 25 == 0:
            progress(step / config.steps, f"mapping network step {step}: loss {losses[-1]:.4f}")
    net.eval()
    return net, losses


def predict_masks(net: MaskMappingNet, m0: Tensor, t: float, p: float, e: float, out_size: tuple[int, int]) -> Tensor:
    """[S, H, W] probabilities of S masks at (t, p, e) from reference masks m0 [S, h, w], at out_size (H, W).

    The reference masks are warped at their own resolution into the output grid (give them at the
    output resolution or finer for the sharpest result).
    """
    assert m0.ndim == 3, f"m0 must be [S, h, w], got {tuple(m0.shape)}"
    with torch.no_grad():
        probs, _, _ = net(m0.float()[None], *(torch.tensor([float(x)]) for x in (t, p, e)), size=out_size)
    return probs[0]
