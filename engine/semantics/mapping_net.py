"""The paper's mask-mapping network M(t, p, M0) -> M(t, p).

A learned feature grid on the time–pose plane (t, p both normalised to [0, 1]; p is the camera's
azimuth around the head) is read by bilinear interpolation into a code z(t, p). A small conv
encoder reads the reference mask M0 (painted at (t0, p0)), z modulates its features (FiLM), and a
decoder produces the mask at (t, p). It is trained on masks rendered from the modeling stage
(exact lift-and-render of selections at many (t, p)); exact lift-and-render stays the default and
the yardstick for it. Grid cells no training sample touches are pulled toward their neighbours by
a total-variation term, so unseen times/poses interpolate instead of keeping their random start.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.render.camera import Camera


@dataclass(frozen=True)
class MappingNetConfig:
    """Size and training of the mapping network."""

    size: int = 64  # output masks are size x size
    m0_size: int = 32  # the reference mask is resized to this before the encoder
    grid_t: int = 16  # feature-grid nodes along time
    grid_p: int = 12  # feature-grid nodes along camera azimuth
    code: int = 16  # feature-grid channels
    channels: int = 32  # conv channels
    steps: int = 500  # optimiser steps
    batch: int = 24  # samples per step
    lr: float = 3e-3  # Adam learning rate
    tv_weight: float = 1e-2  # total-variation weight on the feature grid
    seed: int = 0  # initialisation and batch sampling


def camera_azimuth(camera: Camera, target: Tensor | None = None) -> float:
    """Camera azimuth in degrees around world +y (0 = in front, on +z), seen from target ([3], default origin)."""
    pos = camera.position.double()
    if target is not None:
        pos = pos - target.double()
    return math.degrees(math.atan2(float(pos[0]), float(pos[2])))


class MaskMappingNet(nn.Module):
    """M(t, p, M0): reference masks [B, 1, m0, m0] + (t, p) [B] in [0, 1] -> mask logits [B, size, size]."""

    def __init__(self, config: MappingNetConfig = MappingNetConfig()) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        gen = torch.Generator().manual_seed(config.seed)
        self.grid = nn.Parameter(0.01 * torch.randn(1, config.code, config.grid_p, config.grid_t, generator=gen))
        self.enc = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.SiLU(), nn.Conv2d(c, c, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1), nn.SiLU(),
        )
        self.film = nn.Sequential(nn.Linear(config.code, 2 * c), nn.SiLU(), nn.Linear(2 * c, 2 * c))
        self.dec = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1), nn.SiLU())
        self.head = nn.Conv2d(c + 1, 1, 3, padding=1)

    def code_at(self, t: Tensor, p: Tensor) -> Tensor:
        """[B, code] bilinear read of the feature grid at t [B], p [B] in [0, 1]."""
        xy = torch.stack([t.clamp(0, 1) * 2 - 1, p.clamp(0, 1) * 2 - 1], dim=-1)[None, :, None, :]  # [1, B, 1, 2]
        out = F.grid_sample(self.grid, xy.to(self.grid), mode="bilinear", align_corners=True)  # [1, code, B, 1]
        return out[0, :, :, 0].T

    def forward(self, m0: Tensor, t: Tensor, p: Tensor) -> Tensor:
        """m0 [B, 1, m0_size, m0_size] in [0, 1], t [B], p [B] -> logits [B, size, size]."""
        cfg = self.config
        assert m0.ndim == 4 and m0.shape[1] == 1, f"m0 must be [B, 1, H, W], got {tuple(m0.shape)}"
        feat = self.enc(m0)
        scale, shift = self.film(self.code_at(t, p)).chunk(2, dim=-1)
        feat = feat * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        feat = F.interpolate(self.dec(feat), size=(cfg.size, cfg.size), mode="bilinear", align_corners=False)
        up = F.interpolate(m0, size=(cfg.size, cfg.size), mode="bilinear", align_corners=False)
        return self.head(torch.cat([feat, up], dim=1))[:, 0]

    def grid_tv(self) -> Tensor:
        g = self.grid
        return (g[..., 1:, :] - g[..., :-1, :]).pow(2).mean() + (g[..., :, 1:] - g[..., :, :-1]).pow(2).mean()


def resize_masks(masks: Tensor, size: int) -> Tensor:
    """[B, H, W] float masks -> [B, 1, size, size] by area averaging (bilinear when enlarging)."""
    x = masks.float()[:, None]
    mode = "area" if masks.shape[-1] >= size else "bilinear"
    return F.interpolate(x, size=(size, size), mode=mode) if mode == "area" else F.interpolate(x, size=(size, size), mode=mode, align_corners=False)


@dataclass(frozen=True)
class MappingData:
    """Training pairs: S reference masks and their renders at K (t, p) samples."""

    m0: Tensor  # [S, H, W] reference masks (at (t0, p0))
    targets: Tensor  # [K, S, H, W] masks at each sample
    t: Tensor  # [K] normalised time in [0, 1]
    p: Tensor  # [K] normalised camera azimuth in [0, 1]


def train_mapping_net(
    data: MappingData,
    config: MappingNetConfig = MappingNetConfig(),
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[MaskMappingNet, list[float]]:
    """Fit a MaskMappingNet to data; returns it (eval mode) and the loss per step."""
    k, s = data.targets.shape[:2]
    assert data.m0.shape[0] == s, f"m0 has {data.m0.shape[0]} masks, targets have {s}"
    gen = torch.Generator().manual_seed(config.seed)
    net = MaskMappingNet(config)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    m0 = resize_masks(data.m0, config.m0_size)  # [S, 1, m, m]
    targets = resize_masks(data.targets.reshape(k * s, *data.targets.shape[2:]), config.size)[:, 0].reshape(k, s, config.size, config.size)
    losses = []
    for step in range(config.steps):
        if cancel is not None and cancel():
            break
        ki = torch.randint(0, k, (config.batch,), generator=gen)
        si = torch.randint(0, s, (config.batch,), generator=gen)
        logits = net(m0[si], data.t[ki], data.p[ki])
        loss = F.binary_cross_entropy_with_logits(logits, targets[ki, si]) + config.tv_weight * net.grid_tv()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        if progress is not None and step % 50 == 0:
            progress(step / config.steps, f"mapping network step {step}: loss {losses[-1]:.4f}")
    net.eval()
    return net, losses


def predict_masks(net: MaskMappingNet, m0: Tensor, t: float, p: float, out_size: tuple[int, int]) -> Tensor:
    """[S, H, W] probabilities of S masks at (t, p) from references m0 [S, h, w], resized to out_size (H, W)."""
    cfg = net.config
    ref = resize_masks(m0, cfg.m0_size)
    n = ref.shape[0]
    with torch.no_grad():
        logits = net(ref, torch.full((n,), float(t)), torch.full((n,), float(p)))
        logits = F.interpolate(logits[:, None], size=out_size, mode="bilinear", align_corners=False)[:, 0]
    return torch.sigmoid(logits)
