"""The renderers a view can draw with, behind one small interface, and the choice among them.

"gsplat" (CUDA), "gl" (moderngl through EGL: any GPU, or Mesa's llvmpipe), "cpu" (the engine's numba
inference rasterizer, engine/render/fast_view.py, which deforms the bound Gaussians itself) and "torch"
(the pure-PyTorch reference: slow). "auto" takes gsplat with CUDA, else OpenGL unless its driver is a
software one, where the CPU rasterizer is several times faster.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import torch

from engine.avatar.gaussians import BoundGaussians
from engine.io.images import to_uint8
from engine.render.camera import Camera
from engine.render.splats import Splats, rgb_to_dc

log = logging.getLogger(__name__)

PIXEL_STAGES = ("bin", "composite", "draw", "readback", "raster")
"""Timing stages whose cost grows with the picture's pixels (the others are per Gaussian or per frame)."""

AbortFn = Callable[[], bool]


@dataclass
class Posed:
    """What a backend draws: the composed Gaussians on one posed mesh. World-space splats are made on first
    use (not every backend needs them: the CPU rasterizer deforms the bound Gaussians itself)."""

    gaussians: BoundGaussians  # the composed Gaussians, on the backend's device
    faces: torch.Tensor  # [F, 3] long, the head's triangles
    verts: torch.Tensor  # [V, 3] posed vertices
    _splats: Splats | None = field(default=None, repr=False)

    @property
    def splats(self) -> Splats:
        if self._splats is None:
            with torch.no_grad():
                self._splats = self.gaussians.deform(self.verts, self.faces)
        return self._splats


class Backend(Protocol):
    """Draws posed Gaussians. attach() is called whenever the composed Gaussians change."""

    name: str
    note: str  # why a fallback was taken, or ""
    device: torch.device

    def attach(self, gaussians: BoundGaussians, faces: torch.Tensor) -> None: ...

    def draw(self, posed: Posed, camera: Camera, background: tuple[float, float, float],
             colours: np.ndarray | None, abort: AbortFn | None) -> tuple[np.ndarray | None, dict[str, float]]: ...

    def release(self) -> None: ...

    def fork(self) -> "Backend":
        """A backend drawing on the same device and context with attach() state of its own (a comparison's
        second side); self when attach() keeps no state."""
        ...


def choose_backend(preference: str = "auto") -> tuple[str, str]:
    """(backend, note) for a preference, before trying it: gsplat with CUDA, else OpenGL, else "cpu"/"torch"."""
    if preference in ("auto", "gsplat") and torch.cuda.is_available():
        return "gsplat", "CUDA"
    if preference == "gsplat":
        return "cpu", "gsplat needs CUDA; using the CPU rasterizer"
    if preference in ("auto", "gl"):
        return "gl", ""
    if preference in ("cpu", "torch"):
        return preference, ""
    raise ValueError(f"unknown viewport backend {preference!r}; choose auto, gl, gsplat, cpu or torch")


class CpuBackend:
    """The numba inference rasterizer: deform, project, sort and composite fused (abort between bands)."""

    device = torch.device("cpu")

    def __init__(self, note: str = "") -> None:
        self.name, self.note = "cpu", note
        self._renderer = None

    def attach(self, gaussians: BoundGaussians, faces: torch.Tensor) -> None:
        from engine.render.fast_view import FastAvatarRenderer

        self._renderer = FastAvatarRenderer(gaussians, faces)

    def draw(self, posed: Posed, camera: Camera, background: tuple[float, float, float],
             colours: np.ndarray | None, abort: AbortFn | None) -> tuple[np.ndarray | None, dict[str, float]]:
        assert self._renderer is not None, "attach() first"
        frame = self._renderer.render(posed.verts, camera, background, colors=colours, abort=abort)
        return (None if frame is None else frame.image), dict(self._renderer.last_timings)

    def release(self) -> None:
        self._renderer = None

    def fork(self) -> "CpuBackend":
        return CpuBackend(self.note)


class GLBackend:
    """moderngl splats through EGL; raises when no OpenGL context can be had."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        from engine.render.gl_splats import GLSplatRenderer, is_software_renderer

        self.name, self.note = "gl", ""
        self._gl = GLSplatRenderer(64, 64)
        self.software = is_software_renderer(self._gl.ctx)

    def attach(self, gaussians: BoundGaussians, faces: torch.Tensor) -> None:
        pass

    def draw(self, posed: Posed, camera: Camera, background: tuple[float, float, float],
             colours: np.ndarray | None, abort: AbortFn | None) -> tuple[np.ndarray | None, dict[str, float]]:
        self._gl.resize(camera.width, camera.height)
        image = self._gl.render(posed.splats, camera, background, colors=colours)
        return image, {k: v for k, v in self._gl.last_timings.items() if k != "total"}

    def release(self) -> None:
        self._gl.release()

    def fork(self) -> "GLBackend":
        return self  # attach() keeps nothing: both sides share the one context


class RasterBackend:
    """engine.render.rasterize.render: the "torch" reference, or "gsplat" on CUDA."""

    def __init__(self, name: str) -> None:
        self.name, self.note = name, ""
        self.device = torch.device("cuda" if name == "gsplat" else "cpu")

    def attach(self, gaussians: BoundGaussians, faces: torch.Tensor) -> None:
        pass

    def draw(self, posed: Posed, camera: Camera, background: tuple[float, float, float],
             colours: np.ndarray | None, abort: AbortFn | None) -> tuple[np.ndarray | None, dict[str, float]]:
        from engine.render.rasterize import render

        t = time.perf_counter()
        splats = posed.splats
        if colours is not None:
            splats = replace(splats, sh=rgb_to_dc(torch.from_numpy(colours))[:, None, :].to(splats.sh))
        with torch.no_grad():
            rgb = render(splats, camera.to(splats.means.device), background, backend=self.name).rgb
        return to_uint8(rgb), {"raster": 1000 * (time.perf_counter() - t)}

    def release(self) -> None:
        pass

    def fork(self) -> "RasterBackend":
        return self


def make_backend(preference: str = "auto") -> Backend:
    """The backend for a preference; "auto" and "gl" fall back to the CPU rasterizer (see the module doc)."""
    name, note = choose_backend(preference)
    if name == "gl":
        try:
            gl = GLBackend()
        except Exception as exc:  # no EGL / no OpenGL 3.3: the CPU rasterizer still works
            log.warning("no OpenGL context (%s); using the CPU rasterizer", exc)
            return CpuBackend(f"no OpenGL context ({exc})")
        if preference == "auto" and gl.software:
            gl.release()
            return CpuBackend("software OpenGL (llvmpipe): the CPU rasterizer is faster")
        return gl
    if name == "cpu":
        return CpuBackend(note)
    backend = RasterBackend(name)
    backend.note = note
    return backend
