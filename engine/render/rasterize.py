"""The rasterizer interface: render(splats, camera, ...) -> RenderResult, with a backend choice.

Backends
- "torch": pure-PyTorch projection + tile compositing (engine/render/torch_raster.py), the reference.
- "cpu": the same projection, compositing by numba kernels (engine/render/cpu_raster.py); the default
  on CPU. Needs numba.
- "gsplat": gsplat.rasterization (CUDA only; engine/render/gsplat_backend.py).
- "auto": "gsplat" when CUDA is available and the splats live on a CUDA device, else "cpu", else
  "torch" when numba cannot be imported.

All backends composite the same way: 3DGS front-to-back alpha blending (alpha = min(0.99,
o·exp(−½ dᵀ conic d)), alphas < 1/255 skipped, a pixel stops before the Gaussian that would take its
transmittance to <= 1e-4), colours from SH (+0.5, clamped at 0), depth = alpha-weighted camera z.

Densification: RenderResult.means2d is the projected-centre tensor actually used to composite; when it
requires grad, render() calls retain_grad() on it, so after loss.backward() `result.means2d.grad` [N, 2]
holds dL/d(pixel position). 3DGS / GaussianAvatars thresholds (2e-4) are for NDC positions: multiply the
x column by W/2 and the y column by H/2 first, as gsplat's strategies do.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from engine.render.camera import Camera
from engine.render.projection import project, sh_to_rgb
from engine.render.splats import Splats

BACKENDS = ("auto", "torch", "cpu", "gsplat")


@dataclass(frozen=True)
class RenderResult:
    """One rendered view."""

    rgb: Tensor  # [H, W, 3] in [0, 1] (for colours in [0, 1]), composited over the background
    alpha: Tensor  # [H, W] accumulated opacity
    depth: Tensor  # [H, W] alpha-weighted camera z divided by alpha (0 where alpha == 0)
    features: Tensor | None  # [H, W, C] extra channels composited like colour, no background; None if not asked
    means2d: Tensor  # [N, 2] projected centres in pixels; .grad is filled by backward (densification)
    radii: Tensor  # [N] int32 screen radius in pixels (3.33 sigma, larger axis), 0 = culled


@functools.lru_cache(maxsize=1)
def numba_available() -> bool:
    """True when the numba fast path can be imported."""
    try:
        import engine.render.cpu_raster  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend ("torch", "cpu" or "gsplat") that `backend` means for tensors on `device`."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown render backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if device.type == "cuda" and torch.cuda.is_available():
            return "gsplat"
        return "cpu" if numba_available() else "torch"
    if backend == "gsplat" and not (device.type == "cuda" and torch.cuda.is_available()):
        raise RuntimeError("the gsplat backend needs CUDA and splats on a CUDA device")
    if backend == "cpu" and not numba_available():
        raise RuntimeError("the cpu backend needs numba, which failed to import; use backend='torch'")
    return backend


def available_devices() -> list[str]:
    """Devices work can run on here: "cpu", then each CUDA device ("cuda", "cuda:1", ...)."""
    return ["cpu"] + [f"cuda:{i}" if i else "cuda" for i in range(torch.cuda.device_count())]


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device named ("cpu", "cuda", "cuda:N"); raises ValueError saying what is missing.

    CUDA work (training, edits, rendering) runs through gsplat; this machine check is the one place
    that refuses "cuda" where torch sees no GPU.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}: use cpu or cuda ({exc})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} asked for, but CUDA is not available here "
                             f"(torch {torch.__version__}: torch.cuda.is_available() is False): use --device cpu, "
                             "or run on a machine with an NVIDIA GPU and a CUDA build of torch")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) "
                             "are here")
    elif dev.type != "cpu":
        raise ValueError(f"device {str(device)!r} is not supported: use cpu or cuda")
    return dev


def _background(background: Tensor | tuple[float, float, float], like: Tensor) -> Tensor:
    bg = torch.as_tensor(background, dtype=like.dtype, device=like.device)
    assert bg.shape == (3,), f"background must be [3], got {tuple(bg.shape)}"
    return bg


def render(
    splats: Splats,
    camera: Camera,
    background: Tensor | tuple[float, float, float] = (1.0, 1.0, 1.0),  # [3]
    features: Tensor | None = None,  # [N, C] extra per-Gaussian channels composited like colour
    backend: str = "auto",
) -> RenderResult:
    """Render `splats` through `camera`; differentiable w.r.t. every Splats field and `features`."""
    n = splats.count
    if features is not None:
        assert features.ndim == 2 and features.shape[0] == n, f"features must be [N, C], got {tuple(features.shape)}"
    which = resolve_backend(backend, splats.means.device)
    bg = _background(background, splats.means)
    if which == "gsplat":
        from engine.render.gsplat_backend import render_gsplat

        img, alpha, means2d, radii = render_gsplat(splats, camera, features)
    else:
        img, alpha, means2d, radii = _render_cpu_or_torch(splats, camera, features, which)
    rgb = img[..., :3] + (1.0 - alpha)[..., None] * bg
    has = alpha > 0
    depth = torch.where(has, img[..., 3] / torch.where(has, alpha, torch.ones_like(alpha)), torch.zeros_like(alpha))
    feats = img[..., 4:] if features is not None else None
    return RenderResult(rgb=rgb, alpha=alpha, depth=depth, features=feats, means2d=means2d, radii=radii)


def _render_cpu_or_torch(
    splats: Splats, camera: Camera, features: Tensor | None, which: str
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Image [H, W, 3 + 1 + C] (rgb, z, features; no background), alpha [H, W], means2d [N, 2], radii [N]."""
    proj = project(splats.means, splats.quats, splats.scales, camera)
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()
    cam_pos = camera.cam_to_world[:3, 3]
    rgb = sh_to_rgb(splats.sh, splats.means, cam_pos)
    channels = [rgb, proj.depths[:, None]] + ([features.to(rgb.dtype)] if features is not None else [])
    colors = torch.cat(channels, dim=-1)
    args = (means2d, proj.conics, colors, splats.opacities, proj.depths, proj.valid, camera.width, camera.height)
    if which == "cpu":
        from engine.render.cpu_raster import composite_cpu

        img, alpha = composite_cpu(*args)
    else:
        from engine.render.torch_raster import composite_torch

        img, alpha = composite_torch(*args)
    return img, alpha, means2d, proj.radii.max(dim=-1).values
