"""Inference-only CPU splat rendering for the viewport: no autograd, float32 compositing, fused kernels.

Same image as engine.render.rasterize.render (backends "torch" / "cpu": same projection, culling, SH
colours and compositing rule; the tests hold it above 40 dB PSNR of them on real scenes), but built for
latency: projection + culling + SH colours run in one numba pass, records are gathered in depth order
before binning (contiguous reads while compositing), and each tile composites in float32, whole pixel rows
at a time in SIMD, and stops once all its pixels are spent (engine/render/fast_kernels.py).

Two entry points:
- FastSplatRenderer.render(splats, camera, ...): any world-space Splats.
- FastAvatarRenderer(gaussians, faces).render(verts, camera, ...): bound Gaussians on a posed mesh. The
  pose-independent work (local covariances, opacities, SH with trailing all-zero bands dropped) is done once;
  each frame computes the triangle frames and deforms + projects every Gaussian in one fused pass, so the
  torch deform (engine/avatar/gaussians.py) is skipped entirely.
Both return a FastFrame (uint8 image, float rgb and alpha) and keep per-stage milliseconds in last_timings.
Given `abort` (a function), render() composites in bands of tile rows and returns None as soon as abort()
is true between two bands (a viewer drops a picture the user has already moved past).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from engine.render import fast_kernels as fk
from engine.render.camera import Camera
from engine.render.constants import TILE
from engine.render.splats import Splats

BANDS = 4  # bands of tile rows composited between two abort() checks


class BoundTensors(Protocol):
    """What FastAvatarRenderer reads of bound Gaussians (engine.avatar.gaussians.BoundGaussians has it)."""

    binding: Tensor  # [N] long triangle index
    xyz: Tensor  # [N, 3] position in the triangle's frame
    rotation: Tensor  # [N, 4] local rotation (w, x, y, z)
    log_scale: Tensor  # [N, 3]
    opacity_logit: Tensor  # [N]
    sh: Tensor  # [N, K, 3]

    @property
    def count(self) -> int: ...


@dataclass(frozen=True)
class FastFrame:
    """One rendered view (top row first)."""

    image: np.ndarray  # [H, W, 3] uint8: rgb clamped to [0, 1], ·255, rounded
    rgb: np.ndarray  # [H, W, 3] float32 composited over the background
    alpha: np.ndarray  # [H, W] float32 accumulated opacity
    visible: int  # Gaussians that touch at least one pixel


def _f32(t: Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())


def _camera_arrays(camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(w2c [4, 4] float64, camera centre [3] float64, (fx, fy, cx, cy, width, height, near, far) float64)."""
    w2c = camera.world_to_cam.detach().to("cpu", torch.float64)
    pos = torch.linalg.inv(w2c)[:3, 3]
    cam = np.array([camera.fx, camera.fy, camera.cx, camera.cy, camera.width, camera.height,
                    camera.near, camera.far], dtype=np.float64)
    return np.ascontiguousarray(w2c.numpy()), pos.numpy().copy(), cam


def _effective_coefficients(sh: np.ndarray) -> int:
    """Number of leading SH coefficients that matter (trailing bands that are all zero are dropped)."""
    for n_coef in (1, 4, 9):
        if n_coef >= sh.shape[1]:
            break
        if not np.any(sh[:, n_coef:]):
            return n_coef
    return int(sh.shape[1])


def _colour_override(colors: np.ndarray | Tensor | None, n: int) -> np.ndarray:
    """[N, 3] float32 colours, or an empty [0, 3] array meaning "use the SH colours"."""
    if colors is None:
        return np.zeros((0, 3), dtype=np.float32)
    arr = _f32(colors) if isinstance(colors, Tensor) else np.ascontiguousarray(colors, dtype=np.float32)
    if arr.shape != (n, 3):
        raise ValueError(f"colors must be [N, 3] = [{n}, 3], got {tuple(arr.shape)}")
    return arr


class _Rasterizer:
    """Per-Gaussian records -> image; holds the per-frame scratch buffers (reused while N does not grow)."""

    def __init__(self) -> None:
        from engine.render.cpu_raster import configure_threads

        configure_threads()
        self.params = np.empty((0, fk.P_STRIDE), dtype=np.float32)
        self.rects = np.empty((0, 4), dtype=np.int32)
        self.last_timings: dict[str, float] = {}

    def buffers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(params [N, 11] float32, rects [N, 4] int32) scratch for n Gaussians."""
        if self.params.shape[0] < n:
            self.params = np.empty((n, fk.P_STRIDE), dtype=np.float32)
            self.rects = np.empty((n, 4), dtype=np.int32)
        return self.params[:n], self.rects[:n]

    def finish(self, n: int, camera: Camera, background: tuple[float, float, float], t_start: float,
               abort: Callable[[], bool] | None = None) -> FastFrame | None:
        """Sort, bin and composite the first n records (already projected); fills last_timings.

        None when abort() turned true between two bands of tile rows (see the module docstring).
        """
        params, rects = self.params[:n], self.rects[:n]
        t0 = time.perf_counter()
        visible = np.flatnonzero(rects[:, 2] > rects[:, 0])  # culled records have no rectangle; the rest z > near > 0
        order = fk.depth_order(np.ascontiguousarray(params[:, 10]).view(np.uint32), visible)
        sorted_params = np.empty((order.shape[0], fk.P_STRIDE), dtype=np.float32)
        sorted_rects = np.empty((order.shape[0], 4), dtype=np.int32)
        fk.gather_sorted(order, params, rects, sorted_params, sorted_rects)
        t1 = time.perf_counter()
        w, h = camera.width, camera.height
        n_tx, n_ty = (w + TILE - 1) // TILE, (h + TILE - 1) // TILE
        offsets, flat = fk.bin_tiles(sorted_rects, TILE, n_tx, n_ty)
        t2 = time.perf_counter()
        rgb = np.empty((h, w, 3), dtype=np.float32)
        alpha = np.empty((h, w), dtype=np.float32)
        image = np.empty((h, w, 3), dtype=np.uint8)
        bg = np.asarray(background, dtype=np.float32)
        assert bg.shape == (3,), f"background must be 3 floats, got {tuple(bg.shape)}"
        rows = np.linspace(0, n_ty, (BANDS if abort is not None else 1) + 1).round().astype(int)
        for first, last in zip(rows[:-1], rows[1:]):
            if abort is not None and abort():
                return None
            fk.composite(sorted_params, sorted_rects, offsets, flat, w, h, TILE, first * n_tx, last * n_tx, bg,
                         rgb, alpha, image)
        t3 = time.perf_counter()
        self.last_timings = {"project": 1000 * (t0 - t_start), "sort": 1000 * (t1 - t0),
                             "bin": 1000 * (t2 - t1), "composite": 1000 * (t3 - t2)}
        return FastFrame(image=image, rgb=rgb, alpha=alpha, visible=int(order.shape[0]))


class FastSplatRenderer:
    """Renders world-space Splats (inference only; gradients are not tracked)."""

    def __init__(self) -> None:
        self._raster = _Rasterizer()

    @property
    def last_timings(self) -> dict[str, float]:
        """Milliseconds of the last render per stage: project, sort, bin, composite."""
        return self._raster.last_timings

    def render(self, splats: Splats, camera: Camera, background: tuple[float, float, float] = (1.0, 1.0, 1.0),
               colors: np.ndarray | Tensor | None = None) -> FastFrame:
        """splats seen by camera over background; colors [N, 3] replaces the SH colours when given."""
        t = time.perf_counter()
        n = splats.count
        own = _colour_override(colors, n)
        means, quats, scales = _f32(splats.means), _f32(splats.quats), _f32(splats.scales)
        cov = np.empty((n, 6), dtype=np.float32)
        fk.local_covariances(quats, scales, cov)
        w2c, pos, cam = _camera_arrays(camera)
        params, rects = self._raster.buffers(n)
        sh = _f32(splats.sh)
        fk.project_world(means, cov, _f32(splats.opacities), sh, sh.shape[1], own, w2c, pos, cam, params, rects)
        frame = self._raster.finish(n, camera, background, t)
        assert frame is not None
        return frame


class FastAvatarRenderer:
    """Renders one set of bound Gaussians on posed meshes of its head (inference only).

    gaussians: the avatar's BoundGaussians (edit layers already composed; any object with its tensors, see
    BoundTensors); faces [F, 3] long: the head's triangles. The Gaussians are read once here: make a new
    renderer when they change.
    """

    def __init__(self, gaussians: BoundTensors, faces: Tensor) -> None:
        assert faces.ndim == 2 and faces.shape[1] == 3, f"faces must be [F, 3], got {tuple(faces.shape)}"
        self.count = gaussians.count
        self.n_faces = int(faces.shape[0])
        self._faces = np.ascontiguousarray(faces.detach().cpu().numpy(), dtype=np.int64)
        self._binding = np.ascontiguousarray(gaussians.binding.detach().cpu().numpy(), dtype=np.int64)
        if self.count and (self._binding.min() < 0 or self._binding.max() >= self.n_faces):
            raise ValueError(f"FastAvatarRenderer: binding refers to triangles outside 0..{self.n_faces - 1}")
        self._xyz = _f32(gaussians.xyz)
        self._cov_local = np.empty((self.count, 6), dtype=np.float32)
        fk.local_covariances(_f32(gaussians.rotation), _f32(torch.exp(gaussians.log_scale.detach())), self._cov_local)
        self._opacities = _f32(torch.sigmoid(gaussians.opacity_logit.detach()))
        sh = _f32(gaussians.sh)
        self._sh = np.ascontiguousarray(sh[:, : _effective_coefficients(sh)])
        self._frames = np.empty((self.n_faces, 22), dtype=np.float64)
        self._raster = _Rasterizer()

    @property
    def last_timings(self) -> dict[str, float]:
        """Milliseconds of the last render per stage: project (deform included), sort, bin, composite."""
        return self._raster.last_timings

    def render(self, verts: Tensor, camera: Camera, background: tuple[float, float, float] = (1.0, 1.0, 1.0),
               colors: np.ndarray | Tensor | None = None, abort: Callable[[], bool] | None = None) -> FastFrame | None:
        """The Gaussians on posed vertices verts [V, 3] seen by camera; colors [N, 3] replaces SH colours.

        None only when abort is given and turned true (see the module docstring).
        """
        assert verts.ndim == 2 and verts.shape[1] == 3, f"verts must be [V, 3], got {tuple(verts.shape)}"
        t = time.perf_counter()
        own = _colour_override(colors, self.count)
        w2c, pos, cam = _camera_arrays(camera)
        fk.face_frames(np.ascontiguousarray(verts.detach().to("cpu", torch.float64).numpy()), self._faces, w2c,
                       self._frames)
        params, rects = self._raster.buffers(self.count)
        fk.project_bound(self._binding, self._xyz, self._cov_local, self._opacities, self._sh, self._sh.shape[1],
                         own, self._frames, w2c, pos, cam, params, rects)
        return self._raster.finish(self.count, camera, background, t, abort)
