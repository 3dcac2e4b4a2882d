"""ViewRequest -> Frame: FLAME forward, Gaussians on the posed mesh, overlay colours, one backend, wireframe;
a before/after comparison draws two sets of layers on either side of a divider.

Two caches make interaction cheap: the avatar with its edit layers composed (rebuilt only when the avatar
or a layer changes) and the posed mesh (recomputed only when the sequence, frame, pose or layers change,
so orbiting the camera only re-projects). Backends: engine/view/backends.py.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from engine.avatar.avatar import Avatar
from engine.avatar.gaussians import BoundGaussians
from engine.edit.layers import EditLayer, compose, composed_origin
from engine.render.camera import Camera
from engine.render.splats import SH_C0
from engine.view.backends import PIXEL_STAGES, AbortFn, Backend, Posed, make_backend
from engine.view.overlays import (
    column_window, draw_wireframe, highlight_selection, join_split, overlay_colours, split_column,
)
from engine.view.posing import posed_params
from engine.view.request import Frame, ViewRequest


class Composed:
    """One avatar with its layers composed on a device, and what every frame reads of it."""

    def __init__(self, avatar: Avatar, layers: tuple[EditLayer, ...], device: torch.device) -> None:
        self.avatar, self.layers = avatar, layers
        self.gaussians: BoundGaussians = compose(avatar.gaussians, list(layers)).to(device)
        # FLAME forward on the device; nn.Module.to() moves in place, so a GPU copy must not touch the shared head
        head = avatar.head if device.type == "cpu" else copy.deepcopy(avatar.head).to(device)
        self.posing = avatar if device.type == "cpu" else Avatar(head, self.gaussians, avatar.params.to(device),
                                                                avatar.name)
        self.faces = head.faces
        g = self.gaussians
        self.base_rgb = np.clip(0.5 + SH_C0 * g.sh[:, 0].cpu().numpy(), 0.0, 1.0).astype(np.float32)  # [N, 3]
        self.labels = g.labels.cpu().numpy()  # [N]
        self.origin = composed_origin(avatar.gaussians.count, list(layers)).numpy()  # [N] base index, -1: added

    def selected(self, weights: torch.Tensor | None) -> np.ndarray | None:
        """[N] bool: the composed Gaussians whose base Gaussian has weight > 0 (None when none has)."""
        if weights is None:
            return None
        base = weights.detach().cpu().numpy() > 0  # [N_base]
        if base.shape[0] != self.avatar.gaussians.count or not base.any():
            return None
        return (self.origin >= 0) & base[np.maximum(self.origin, 0)]

    def matches(self, avatar: Avatar, layers: tuple[EditLayer, ...]) -> bool:
        return avatar is self.avatar and _same_layers(layers, self.layers)


def _same_layers(a: tuple[EditLayer, ...], b: tuple[EditLayer, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _same_pose_key(a: tuple, b: tuple) -> bool:
    """Keys (avatar, sequence, frame, pose, layers) are equal: objects by identity, values by ==."""
    return (a[0] is b[0] and a[1] is b[1] and a[2] == b[2] and a[3] == b[3] and _same_layers(a[4], b[4]))


class _Side:
    """The composed Gaussians and posed mesh of one set of layers, cached (one per side of a comparison)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.composed: Composed | None = None
        self._pose_key: tuple | None = None
        self._posed: Posed | None = None

    def geometry(self, req: ViewRequest, layers: tuple[EditLayer, ...], timings: dict[str, float]) -> Posed:
        """The posed Gaussians of req with `layers`, recomputed only when avatar, layers, sequence, frame or pose changed."""
        if self.composed is None or not self.composed.matches(req.avatar, layers):
            t = time.perf_counter()
            self.composed = Composed(req.avatar, layers, self.backend.device)
            self.backend.attach(self.composed.gaussians, self.composed.faces)
            self._pose_key = None
            timings["compose"] = timings.get("compose", 0.0) + 1000 * (time.perf_counter() - t)
        key = (req.avatar, req.sequence, req.frame, req.pose, layers)
        if self._posed is None or self._pose_key is None or not _same_pose_key(key, self._pose_key):
            composed = self.composed
            t = time.perf_counter()
            with torch.no_grad():
                params = posed_params(req.avatar, req.sequence, req.pose, req.frame, layers)
                verts = composed.posing.posed_vertices(params.to(self.backend.device))
            timings["flame"] = timings.get("flame", 0.0) + 1000 * (time.perf_counter() - t)
            self._posed, self._pose_key = Posed(composed.gaussians, composed.faces, verts), key
        return self._posed

    def draw(self, req: ViewRequest, layers: tuple[EditLayer, ...], camera: Camera, timings: dict[str, float],
             abort: AbortFn | None) -> np.ndarray | None:
        """The picture [H, W, 3] uint8 of req with `layers` through camera (overlays and wireframe included)."""
        posed = self.geometry(req, layers, timings)
        composed = self.composed
        assert composed is not None
        colours = overlay_colours(composed.base_rgb, composed.labels, req.view.components, req.overlay_colors,
                                  req.overlay_opacity)
        selected = composed.selected(req.selection) if req.view.selection else None
        if selected is not None:
            colours = highlight_selection(composed.base_rgb if colours is None else colours, selected)
        background = tuple(float(c) for c in req.view.background)
        image, drawn = self.backend.draw(posed, camera, background, colours, abort)
        if image is None:
            return None
        for k, v in drawn.items():
            timings[k] = timings.get(k, 0.0) + v
        if req.view.wireframe:
            t = time.perf_counter()
            image = draw_wireframe(image, posed.verts.cpu(), posed.faces.cpu(), camera)
            timings["wireframe"] = timings.get("wireframe", 0.0) + 1000 * (time.perf_counter() - t)
        return image


class FramePipeline:
    """ViewRequest -> Frame on one thread (the one that created it, which owns the GL context).

    A request with a split is a before/after comparison: columns left of the divider show `before_layers`,
    the rest `layers`, each side rendered as a column window of the one camera (engine/view/overlays.py)."""

    def __init__(self, backend: str = "auto") -> None:
        self._backend: Backend = make_backend(backend)
        self._after = _Side(self._backend)
        self._before: _Side | None = None  # made at the first comparison

    @property
    def backend(self) -> str:
        """The backend in use: "gl", "gsplat", "cpu" or "torch"."""
        return self._backend.name

    @property
    def note(self) -> str:
        """Why the backend differs from the one asked for, or ""."""
        return self._backend.note

    def release(self) -> None:
        self._backend.release()
        if self._before is not None and self._before.backend is not self._backend:
            self._before.backend.release()

    def geometry(self, req: ViewRequest, timings: dict[str, float]) -> Posed:
        """The request's posed Gaussians (its `layers`), recomputed only when something they depend on changed."""
        return self._after.geometry(req, req.layers, timings)

    def render(self, req: ViewRequest, abort: AbortFn | None = None) -> Frame | None:
        """The picture of req at req.size; None when abort() turned true before it was finished."""
        timings: dict[str, float] = {}
        camera = req.camera.camera(*req.size)
        if req.split is None:
            image = self._after.draw(req, req.layers, camera, timings, abort)
        else:
            image = self._compare(req, camera, timings, abort)
        if image is None:
            return None
        composed = self._after.composed
        assert composed is not None
        timings["total"] = sum(timings.values())
        return Frame(req.serial, image, camera, self.backend, composed.gaussians.count, timings,
                     1000 * (time.perf_counter() - req.issued), req.scale, (req.width, req.height), req.split)

    def _compare(self, req: ViewRequest, camera: Camera, timings: dict[str, float],
                 abort: AbortFn | None) -> np.ndarray | None:
        """The before/after picture of req: before_layers left of the divider, layers right of it."""
        assert req.split is not None
        if self._before is None:
            self._before = _Side(self._backend.fork())
        cut = split_column(camera.width, req.split)
        left = right = None
        if cut > 0:
            left = self._before.draw(req, req.before_layers, column_window(camera, 0, cut), timings, abort)
            if left is None:
                return None
        if cut < camera.width:
            right = self._after.draw(req, req.layers, column_window(camera, cut, camera.width), timings, abort)
            if right is None:
                return None
        if cut == camera.width:  # the after side's geometry still names the frame's Gaussians
            self._after.geometry(req, req.layers, timings)
        t = time.perf_counter()
        image = join_split(left, right, camera.height)
        timings["split"] = 1000 * (time.perf_counter() - t)
        return image


def pixel_ms(frame: Frame) -> float:
    """Milliseconds of a frame's stages that grow with its pixels (PIXEL_STAGES)."""
    return sum(v for k, v in frame.timings.items() if k in PIXEL_STAGES)
