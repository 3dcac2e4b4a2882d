"""The viewport's render thread: always renders the newest session state, drops stale requests.

FramePipeline (no Qt) turns a RenderRequest into a Frame: FLAME forward, Gaussian deform (cached
while pose, frame and layers stay the same, so orbiting only re-projects), overlay colours, then one
backend: "gl" (moderngl, headless EGL: any GPU or Mesa llvmpipe), "gsplat" (CUDA) or "cpu" (the
engine's rasterizer) when no OpenGL context can be had. RenderThread owns the pipeline (and so its
EGL context) on one QThread; submit() replaces the pending request, so a fast slider drag renders
only the latest value. RenderController watches the SessionModel, submits requests, refines a
still picture at full resolution after interaction stops, and counts frames per second.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal

from app.session import CameraState, SessionModel, ViewOptions, posed_params
from app.workers import user_message
from engine.avatar.avatar import Avatar
from engine.avatar.binding import local_to_world, triangle_frames
from engine.avatar.gaussians import BoundGaussians
from engine.avatar.posing import Pose
from engine.edit.layers import EditLayer, compose
from engine.head.components import COLOURS, COMPONENTS
from engine.head.params import FlameParams
from engine.render.camera import Camera
from engine.render.fast_view import FastAvatarRenderer
from engine.render.splats import SH_C0, Splats, rgb_to_dc

log = logging.getLogger(__name__)

COMPONENT_RGB = np.array([COLOURS[name] for name in COMPONENTS], dtype=np.float32) / 255.0  # [L, 3]
COMPONENT_TINT = 0.7  # weight of the component colour over the splat colour in the component overlay
WIRE_RGB = np.array([120, 230, 255], dtype=np.float32)  # wireframe colour, 0-255
WIRE_ALPHA = 0.55
CPU_INTERACTIVE_SIDE = 256  # longest image side while interacting with the reference ("torch") rasterizer


@dataclass(frozen=True)
class RenderRequest:
    """Everything one frame depends on (a snapshot of the session plus the image size)."""

    serial: int  # increases with every request
    avatar: Avatar
    sequence: FlameParams  # [T] frames
    pose: Pose
    frame: int
    layers: tuple[EditLayer, ...]
    camera: CameraState
    width: int  # image size in pixels
    height: int
    view: ViewOptions = field(default_factory=ViewOptions)
    overlay_colors: np.ndarray | None = None  # [N, 3] rgb or [N, 4] rgba per Gaussian
    overlay_opacity: float = 0.5
    issued: float = field(default_factory=time.perf_counter)  # perf_counter() when requested


@dataclass(frozen=True)
class Frame:
    """One finished picture."""

    serial: int
    image: np.ndarray  # [H, W, 3] uint8, top row first
    camera: Camera  # the camera it was rendered with (width x height of image)
    backend: str  # "gl", "gsplat", "cpu" or "torch"
    gaussians: int  # Gaussians drawn (before culling)
    timings: dict[str, float]  # milliseconds per stage; "total" is their sum
    latency_ms: float  # from the request to finished pixels


def choose_backend(preference: str = "auto") -> tuple[str, str]:
    """(backend, note): gsplat with CUDA, else OpenGL through EGL, else the engine's CPU rasterizer.

    "auto" falls back from "gl" to "cpu" in FramePipeline when the OpenGL driver is a software one
    (Mesa llvmpipe): there the CPU inference path (engine/render/fast_view.py) is several times faster.
    """
    if preference in ("auto", "gsplat") and torch.cuda.is_available():
        return "gsplat", "CUDA"
    if preference == "gsplat":
        return "cpu", "gsplat needs CUDA; using the CPU rasterizer"
    if preference in ("auto", "gl"):
        return "gl", ""
    if preference in ("cpu", "torch"):
        return preference, ""
    raise ValueError(f"unknown viewport backend {preference!r}; choose auto, gl, gsplat, cpu or torch")


class _Posable:
    """One avatar with its layers composed, and the pose-independent tensors of its Gaussians cached."""

    def __init__(self, avatar: Avatar, layers: tuple[EditLayer, ...], device: torch.device) -> None:
        self.avatar, self.layers = avatar, layers
        g: BoundGaussians = compose(avatar.gaussians, list(layers)).to(device)
        self.gaussians = g
        # FLAME forward on the device; nn.Module.to() moves in place, so a GPU copy must not touch the shared head
        head = avatar.head if device.type == "cpu" else copy.deepcopy(avatar.head).to(device)
        self.posing = avatar if device.type == "cpu" else Avatar(head, g, avatar.params.to(device), avatar.name)
        self.head = head
        self.local_scales = torch.exp(g.log_scale)  # [N, 3]
        self.opacities = torch.sigmoid(g.opacity_logit)  # [N]
        self.base_rgb = np.clip(0.5 + SH_C0 * g.sh[:, 0].cpu().numpy(), 0.0, 1.0).astype(np.float32)  # [N, 3]

    def matches(self, avatar: Avatar, layers: tuple[EditLayer, ...]) -> bool:
        return avatar is self.avatar and len(layers) == len(self.layers) and all(
            a is b for a, b in zip(layers, self.layers))

    def splats(self, verts: torch.Tensor) -> Splats:
        """World Gaussians on posed vertices [V, 3]: BoundGaussians.deform with the pose-independent tensors cached."""
        g = self.gaussians
        rot, centroid, k = triangle_frames(verts, self.head.faces)
        means, quats, scales = local_to_world(g.binding, g.xyz, g.rotation, self.local_scales, rot, centroid, k)
        return Splats(means, quats, scales, self.opacities, g.sh)


class FramePipeline:
    """RenderRequest -> Frame on one thread (the one that created it, which owns the GL context)."""

    def __init__(self, backend: str = "auto") -> None:
        self.backend, self.note = choose_backend(backend)
        self.device = torch.device("cuda" if self.backend == "gsplat" else "cpu")
        self._gl = None
        if self.backend == "gl":
            try:
                from engine.render.gl_splats import GLSplatRenderer, is_software_renderer

                self._gl = GLSplatRenderer(64, 64)
                if backend == "auto" and is_software_renderer(self._gl.ctx):
                    self.release()
                    self.backend, self.note = "cpu", "software OpenGL (llvmpipe): the CPU rasterizer is faster"
            except Exception as exc:  # no EGL / no OpenGL 3.3: the CPU rasterizer still works
                log.warning("no OpenGL context (%s); using the CPU rasterizer", exc)
                self.backend, self.note = "cpu", f"no OpenGL context ({exc})"
        self._posable: _Posable | None = None
        self._geom_key: tuple | None = None
        self._geom: tuple[Splats | None, torch.Tensor] | None = None
        self._fast: FastAvatarRenderer | None = None  # "cpu": bound Gaussians deformed + drawn in numba

    def release(self) -> None:
        if self._gl is not None:
            self._gl.release()
            self._gl = None

    def geometry(self, req: RenderRequest, timings: dict[str, float]) -> tuple[Splats | None, torch.Tensor, _Posable]:
        """(splats, posed vertices [V, 3], posable), recomputed only when avatar, layers, sequence, frame or pose changed.

        splats is None for the "cpu" backend: its renderer deforms the bound Gaussians itself.
        """
        if self._posable is None or not self._posable.matches(req.avatar, req.layers):
            t = time.perf_counter()
            self._posable, self._geom_key = _Posable(req.avatar, req.layers, self.device), None
            if self.backend == "cpu":
                self._fast = FastAvatarRenderer(self._posable.gaussians, self._posable.head.faces)
            timings["compose"] = 1000 * (time.perf_counter() - t)
        key = (req.avatar, req.sequence, req.frame, req.pose, req.layers)
        if self._geom is None or self._geom_key is None or not _same_key(key, self._geom_key):
            posable = self._posable
            with torch.no_grad():
                t0 = time.perf_counter()
                params = posed_params(req.avatar, req.sequence, req.pose, req.frame, req.layers).to(self.device)
                verts = posable.posing.posed_vertices(params)
                t1 = time.perf_counter()
                splats = posable.splats(verts) if self._fast is None else None
                t2 = time.perf_counter()
            timings.update(flame=1000 * (t1 - t0), deform=1000 * (t2 - t1))
            self._geom, self._geom_key = (splats, verts), key
        splats, verts = self._geom
        return splats, verts, self._posable

    def render(self, req: RenderRequest) -> Frame:
        timings: dict[str, float] = {}
        splats, verts, posable = self.geometry(req, timings)
        camera = req.camera.camera(req.width, req.height)
        colors = self._colors(req, posable)
        bg = tuple(float(c) for c in req.view.background)
        t = time.perf_counter()
        if self._gl is not None:
            self._gl.resize(req.width, req.height)
            image = self._gl.render(splats, camera, bg, colors=colors)
            timings.update({k: v for k, v in self._gl.last_timings.items() if k != "total"})
        elif self._fast is not None:
            image = self._fast.render(verts, camera, bg, colors=colors).image
            timings.update(self._fast.last_timings)
        else:
            image = self._raster(splats, camera, bg, colors)
            timings["raster"] = 1000 * (time.perf_counter() - t)
        if req.view.wireframe:
            t = time.perf_counter()
            image = draw_wireframe(image, verts.cpu(), posable.head.faces.cpu(), camera)
            timings["wireframe"] = 1000 * (time.perf_counter() - t)
        timings["total"] = sum(timings.values())
        return Frame(req.serial, image, camera, self.backend, posable.gaussians.count, timings,
                     1000 * (time.perf_counter() - req.issued))

    def _colors(self, req: RenderRequest, posable: _Posable) -> np.ndarray | None:
        """[N, 3] colours replacing the splats' own, or None (no overlay)."""
        base = posable.base_rgb
        out = None
        if req.view.components:
            labels = posable.gaussians.labels.cpu().numpy().clip(0, len(COMPONENTS) - 1)
            out = (1 - COMPONENT_TINT) * base + COMPONENT_TINT * COMPONENT_RGB[labels]
        overlay = req.overlay_colors
        if overlay is not None and overlay.shape[0] == base.shape[0]:
            a = float(req.overlay_opacity)
            if overlay.shape[1] == 4:  # per-Gaussian alpha
                a = a * overlay[:, 3:4]
            out = (1 - a) * (base if out is None else out) + a * overlay[:, :3]
        return None if out is None else np.ascontiguousarray(out, dtype=np.float32)

    def _raster(self, splats: Splats, camera: Camera, bg: tuple[float, float, float],
                colors: np.ndarray | None) -> np.ndarray:
        from engine.render.rasterize import render

        if colors is not None:
            sh = rgb_to_dc(torch.from_numpy(colors))[:, None, :].to(splats.sh)
            splats = replace(splats, sh=sh)
        backend = {"gsplat": "gsplat", "torch": "torch"}.get(self.backend, "auto")
        with torch.no_grad():
            rgb = render(splats, camera.to(splats.means.device), bg, backend=backend).rgb
        return (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def _same_key(a: tuple, b: tuple) -> bool:
    """Keys (avatar, sequence, frame, pose, layers) are equal: objects by identity, values by ==."""
    return (a[0] is b[0] and a[1] is b[1] and a[2] == b[2] and a[3] == b[3]
            and len(a[4]) == len(b[4]) and all(x is y for x, y in zip(a[4], b[4])))


def draw_wireframe(image: np.ndarray, verts: torch.Tensor, faces: torch.Tensor, camera: Camera) -> np.ndarray:
    """A copy of image [H, W, 3] uint8 with the edges of the triangles facing the camera drawn over it.

    verts: [V, 3] posed vertices; faces: [F, 3] long. Each edge is sampled once per pixel of its length.
    """
    w2c = camera.world_to_cam.to(torch.float32)
    v = verts.to(torch.float32)
    cam_v = v @ w2c[:3, :3].T + w2c[:3, 3]  # [V, 3]
    z = cam_v[:, 2].clamp(min=1e-6)
    uv = torch.stack([camera.fx * cam_v[:, 0] / z + camera.cx, camera.fy * cam_v[:, 1] / z + camera.cy], 1)
    tri = v[faces]
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    facing = ((camera.position.to(torch.float32) - tri.mean(1)) * normal).sum(-1) > 0
    front = faces[facing & (cam_v[faces, 2] > camera.near).all(1)]
    edges = torch.cat([front[:, [0, 1]], front[:, [1, 2]], front[:, [2, 0]]]).sort(dim=1).values
    edges = torch.unique(edges, dim=0).numpy()
    p = uv.numpy()
    a, b = p[edges[:, 0]], p[edges[:, 1]]
    steps = np.clip(np.ceil(np.abs(b - a).max(1)), 1, 4096).astype(np.int64)
    owner = np.repeat(np.arange(len(edges)), steps)
    frac = (np.arange(owner.size) - np.repeat(np.cumsum(steps) - steps, steps)) / steps[owner]
    pts = a[owner] + (b - a)[owner] * frac[:, None]
    x, y = np.floor(pts[:, 0]).astype(np.int64), np.floor(pts[:, 1]).astype(np.int64)
    h, w = image.shape[:2]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    out = image.copy()
    sel = out[y[inside], x[inside]].astype(np.float32)
    out[y[inside], x[inside]] = ((1 - WIRE_ALPHA) * sel + WIRE_ALPHA * WIRE_RGB).astype(np.uint8)
    return out


class RenderThread(QThread):
    """Owns a FramePipeline; renders the newest submitted request, skipping any that were replaced."""

    frameReady = Signal(object)  # Frame
    failed = Signal(str)  # a message for the status bar
    backendReady = Signal(str, str)  # backend, note (why a fallback was taken, or "")

    def __init__(self, backend: str = "auto", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("render")
        self._preference = backend
        self._cond = threading.Condition()
        self._pending: RenderRequest | None = None
        self._stopping = False
        self.backend = ""
        self.dropped = 0  # requests replaced before they were rendered

    def submit(self, request: RenderRequest) -> None:
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            self._pending = request
            self._cond.notify()

    def stop(self, timeout_ms: int = 10_000) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self.wait(timeout_ms)

    def run(self) -> None:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        torch.set_num_threads(1)  # the GL driver (llvmpipe) needs the other core; FLAME+deform is ~10 ms
        pipeline = FramePipeline(self._preference)
        self.backend = pipeline.backend
        self.backendReady.emit(pipeline.backend, pipeline.note)
        try:
            while True:
                with self._cond:
                    while self._pending is None and not self._stopping:
                        self._cond.wait()
                    if self._stopping:
                        return
                    request, self._pending = self._pending, None
                try:
                    frame = pipeline.render(request)
                except Exception as exc:  # shown in the status bar; the next request may well work
                    log.exception("render failed")
                    self.failed.emit(user_message(exc))
                else:
                    self.frameReady.emit(frame)
        finally:
            pipeline.release()


class RenderController(QObject):
    """Submits the model's state to the render thread whenever it changes; counts delivered frames.

    interactive_side: longest image side while things change; still_side: the longest side of the
    picture rendered once nothing changed for `settle_ms` (0 or <= interactive_side: no refinement).
    """

    frameReady = Signal(object)  # Frame, in the GUI thread
    fpsChanged = Signal(float)
    backendReady = Signal(str, str)
    failed = Signal(str)

    def __init__(self, model: SessionModel, backend: str = "auto", interactive_side: int = 512,
                 still_side: int = 960, settle_ms: int = 250, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.interactive_side, self.still_side = interactive_side, still_side
        self._size = (640, 480)
        self._serial = 0
        self._times: deque[float] = deque(maxlen=30)
        self.last_frame: Frame | None = None
        self.fps = 0.0
        self.thread = RenderThread(backend)
        self.thread.frameReady.connect(self._on_frame, Qt.ConnectionType.QueuedConnection)
        self.thread.failed.connect(self.failed, Qt.ConnectionType.QueuedConnection)
        self.thread.backendReady.connect(self._on_backend, Qt.ConnectionType.QueuedConnection)
        self._settle = QTimer(self, singleShot=True, interval=settle_ms)
        self._settle.timeout.connect(lambda: self.request(still=True))
        model.changed.connect(self.request)
        self.thread.start()

    @property
    def backend(self) -> str:
        return self.thread.backend

    @property
    def latest_serial(self) -> int:
        """Serial of the newest request (a frame with it shows the current state)."""
        return self._serial

    def set_viewport_size(self, width: int, height: int) -> None:
        """The viewport's size in device pixels."""
        if (width, height) != self._size and width > 0 and height > 0:
            self._size = (width, height)
            self.request()

    def render_size(self, still: bool = False) -> tuple[int, int]:
        w, h = self._size
        side = self.still_side if still and self.still_side > self.interactive_side else self.interactive_side
        scale = min(1.0, side / max(w, h))
        return max(1, round(w * scale)), max(1, round(h * scale))

    def request(self, still: bool = False) -> None:
        m = self.model
        if m.avatar is None or m.sequence is None:
            return
        self._serial += 1
        width, height = self.render_size(still)
        self.thread.submit(RenderRequest(
            self._serial, m.avatar, m.sequence, m.pose, m.frame, m.shown_layers, m.camera, width, height,
            m.view_options, m.overlay_colors, m.overlay_opacity))
        if not still and self.still_side > self.interactive_side:
            self._settle.start()

    def _on_backend(self, backend: str, note: str) -> None:
        if backend == "torch":  # seconds per frame at full size: keep the reference rasterizer small
            self.interactive_side = min(self.interactive_side, CPU_INTERACTIVE_SIDE)
            self.still_side = min(self.still_side, 2 * CPU_INTERACTIVE_SIDE)
        self.backendReady.emit(backend, note)
        self.request()

    def _on_frame(self, frame: Frame) -> None:
        now = time.perf_counter()
        self._times.append(now)
        if len(self._times) >= 2 and now - self._times[0] > 0:
            recent = [t for t in self._times if now - t < 2.0]
            span = recent[-1] - recent[0] if len(recent) >= 2 else 0.0
            self.fps = (len(recent) - 1) / span if span > 0 else 0.0
            self.fpsChanged.emit(self.fps)
        self.last_frame = frame
        self.frameReady.emit(frame)

    def shutdown(self) -> None:
        self._settle.stop()
        self.thread.stop()
