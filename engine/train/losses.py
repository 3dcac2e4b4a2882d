"""Photometric losses and metrics: L1, SSIM, PSNR, and GaussianAvatars' regularisers."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.data.frames import LoadedFrame, one_hot_labels
from engine.data.vhap_format import FrameRecord
from engine.io.images import psnr


@functools.lru_cache(maxsize=4)
def _window(size: int, sigma: float, channels: int, dtype: torch.dtype, device: str) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = (g / g.sum()).to(dtype)
    w = (g[:, None] @ g[None, :])[None, None]
    return w.expand(channels, 1, size, size).contiguous().to(device)


def ssim(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of two images [H, W, C] in [0, 1] (Gaussian window, as 3DGS). Differentiable."""
    assert a.shape == b.shape and a.ndim == 3, f"images must be [H, W, C] alike, got {tuple(a.shape)} {tuple(b.shape)}"
    c = a.shape[2]
    x, y = a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None]
    w = _window(window, sigma, c, a.dtype, str(a.device))
    pad = window // 2
    mu_x, mu_y = F.conv2d(x, w, padding=pad, groups=c), F.conv2d(y, w, padding=pad, groups=c)
    sxx = F.conv2d(x * x, w, padding=pad, groups=c) - mu_x**2
    syy = F.conv2d(y * y, w, padding=pad, groups=c) - mu_y**2
    sxy = F.conv2d(x * y, w, padding=pad, groups=c) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).mean()


def photometric_loss(render: Tensor, target: Tensor, lambda_dssim: float) -> tuple[Tensor, Tensor, Tensor]:
    """(total, l1, 1 − ssim) for images [H, W, 3]: (1 − λ)·L1 + λ·(1 − SSIM)."""
    l1 = (render - target).abs().mean()
    dssim = 1.0 - ssim(render, target)
    return (1 - lambda_dssim) * l1 + lambda_dssim * dssim, l1, dssim


def position_regulariser(xyz: Tensor, threshold: float) -> Tensor:
    """mean(relu(‖μ'‖ − threshold)) over local positions [N, 3]."""
    return F.relu(xyz.norm(dim=-1) - threshold).mean()


def scale_regulariser(log_scale: Tensor, threshold: float) -> Tensor:
    """mean(relu(exp(s') − threshold)) over local log-scales [N, 3]."""
    return F.relu(torch.exp(log_scale) - threshold).mean()


def label_loss(rendered: Tensor, labels: Tensor) -> Tensor:
    """Mean per-pixel L1 / 2 between rendered component channels [H, W, C] (one-hot features
    composited like colour) and a label map [H, W] (COMPONENTS index, -1 = background: all zero);
    0 where they agree, 1 where a pixel is drawn wholly as another part."""
    target = one_hot_labels(labels, rendered.shape[-1]).to(rendered.dtype)
    return 0.5 * (rendered - target).abs().sum(dim=-1).mean()


def flame_prior(deltas: dict[str, Tensor]) -> Tensor:
    """Sum over FLAME keys of the mean over rows of ‖Δ‖² (deltas: key -> [T, D] refined − tracked values:
    radians for rotations, scene units for translation, coefficients for expression)."""
    total = torch.zeros(())
    for value in deltas.values():
        total = total.to(value) + value.pow(2).sum(dim=-1).mean()
    return total


def mean_scores(frames: Sequence[FrameRecord], load: Callable[[FrameRecord], LoadedFrame],
                render_rgb: Callable[[LoadedFrame], Tensor], with_ssim: bool = True) -> dict[str, float]:
    """{"psnr", "ssim" (with_ssim), "frames"}: the mean PSNR (dB) and SSIM of render_rgb(frame) [H, W, 3], clamped
    to [0, 1], against each loaded frame's image [H, W, 3], and how many frames; {} for none."""
    psnrs, ssims = [], []
    for record in frames:
        frame = load(record)
        rgb = render_rgb(frame).clamp(0, 1)
        psnrs.append(psnr(rgb, frame.image))
        if with_ssim:
            ssims.append(float(ssim(rgb, frame.image)))
    if not psnrs:
        return {}
    scores = {"psnr": sum(psnrs) / len(psnrs)}
    if with_ssim:
        scores["ssim"] = sum(ssims) / len(ssims)
    return scores | {"frames": float(len(psnrs))}
