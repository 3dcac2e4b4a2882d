"""The session state: everything the application shows (avatar, FLAME sequence and frame, pose, camera,
edit layers, selection, overlay, view options, playback and recording), as plain Python with one change
event per kind of change (engine/view/events.py).

The GUI wraps it in a Qt adapter that adds undo and Qt signals (app/session.py); the CLI and the benchmark
use it directly. `request(serial, width, height)` snapshots it into the ViewRequest the frame pipeline draws.
Setters here apply at once; undoable changes go through the adapter, which calls these.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from engine.avatar.avatar import Avatar
from engine.avatar.posing import Pose
from engine.edit.layers import EditLayer
from engine.head.params import FlameParams
from engine.view.camera import CameraState, framing_camera
from engine.view.events import Events
from engine.view.posing import concat_params, posed_params
from engine.view.request import ViewOptions, ViewRequest

EVENTS = ("avatar", "sequence", "frame", "pose", "camera", "layers", "selection", "preview", "overlay", "view",
          "compare", "playback", "changed", "message")
"""Event names. avatar: a new avatar (sequence, pose, camera, layers and overlay were reset too); frame(int);
selection: the per-Gaussian selection; preview: the transient preview layer; view: view options; compare: the
before/after comparison (its divider or which layers it compares); playback:
playing, loop or recording; changed: anything that changes the picture; message(str): a short status line."""


class SessionState:
    """Everything the application shows. Read the attributes; change them through the setters (they emit)."""

    def __init__(self) -> None:
        self.events = Events(*EVENTS)
        self.avatar: Avatar | None = None
        self.avatar_path: str | None = None  # file it came from; None for the demo avatar
        self.sequence: FlameParams | None = None  # the FLAME sequence being shown (the avatar's own by default)
        self.sequence_name = ""
        self.frame = 0
        self.pose = Pose()
        self.camera = CameraState()
        self.layers: tuple[EditLayer, ...] = ()
        self.preview_layer: EditLayer | None = None  # transient layer drawn after `layers`, never saved
        self.selection: torch.Tensor | None = None  # [N_base] float weights in [0, 1] over avatar.gaussians
        self.overlay_colors: np.ndarray | None = None  # [N, 3] or [N, 4] float per Gaussian, or None
        self.overlay_opacity = 0.5
        self.view_options = ViewOptions()
        self.split: float | None = None  # before/after divider as a share of the view's width, None: off
        self.compared: frozenset[str] = frozenset()  # ids of the layers the before side leaves out
        self.playing = False
        self.loop = True
        self.fps = 25.0  # playback and recording rate of sequences
        self.take: list[FlameParams] | None = None  # frames recorded so far, None when not recording

    # ---- derived --------------------------------------------------------------------------------
    @property
    def shown_layers(self) -> tuple[EditLayer, ...]:
        """The layers a view draws: `layers`, then the preview layer if there is one."""
        return self.layers if self.preview_layer is None else (*self.layers, self.preview_layer)

    @property
    def before_layers(self) -> tuple[EditLayer, ...]:
        """The layers the before side of a comparison draws: `layers` without the compared ones (and never
        the preview layer)."""
        return tuple(layer for layer in self.layers if layer.id not in self.compared)

    @property
    def comparing(self) -> bool:
        """A before/after comparison is on and its two sides differ."""
        if self.split is None:
            return False
        before, after = self.before_layers, self.shown_layers
        return len(before) != len(after) or any(a is not b for a, b in zip(before, after))

    @property
    def recording(self) -> bool:
        return self.take is not None

    @property
    def frame_count(self) -> int:
        return self.sequence.frames if self.sequence is not None else 0

    @property
    def expression_names(self) -> tuple[str, ...]:
        """Slider names: the head's named expressions, else expr_0..expr_9 of a real FLAME model."""
        if self.avatar is None:
            return ()
        head = self.avatar.head
        return head.expression_names or tuple(f"expr_{i}" for i in range(min(10, head.n_expr)))

    def current_params(self) -> FlameParams:
        """FLAME parameters [T=1] of what is shown now (layer expression offsets included)."""
        avatar, sequence = self.require_avatar(), self.sequence
        assert sequence is not None
        return posed_params(avatar, sequence, self.pose, self.frame, self.layers)

    def request(self, serial: int, width: int, height: int) -> ViewRequest | None:
        """The ViewRequest for a picture of width × height pixels of what is shown now (None: no avatar)."""
        if self.avatar is None or self.sequence is None:
            return None
        layers = () if self.view_options.before else self.shown_layers
        comparing = self.comparing and not self.view_options.before  # "before edits" shows no layers at all
        split, before = (self.split, self.before_layers) if comparing else (None, ())
        return ViewRequest(serial, self.avatar, self.sequence, self.pose, self.frame, layers, self.camera, width,
                           height, self.view_options, self.overlay_colors, self.overlay_opacity, self.selection,
                           split=split, before_layers=before)

    def require_avatar(self) -> Avatar:
        if self.avatar is None:
            raise RuntimeError("no avatar loaded")
        return self.avatar

    def pose_with_expression(self, name: str, value: float) -> Pose:
        """The pose with one named expression coefficient set (a 0 removes the name); ValueError if unknown."""
        self.require_avatar().head.check_expression(name)  # raises a clear ValueError for an unknown name
        exprs = dict(self.pose.expressions)
        if value == 0.0:
            exprs.pop(name, None)
        else:
            exprs[name] = float(value)
        return replace(self.pose, expressions=exprs)

    def checked_selection(self, weights: torch.Tensor | None) -> torch.Tensor | None:
        """weights as the selection stores them: [N_base] float in [0, 1], detached; None stays None."""
        if weights is None:
            return None
        n = self.require_avatar().gaussians.count
        assert weights.shape == (n,), f"selection must be [{n}], got {tuple(weights.shape)}"
        return weights.detach().float().clamp(0.0, 1.0).clone()

    # ---- avatar, sequence, frame ------------------------------------------------------------------
    def set_avatar(self, avatar: Avatar, path: str | None = None) -> None:
        """Show another avatar; resets sequence, frame, pose, camera, layers, selection, overlay and playback."""
        self.avatar, self.avatar_path = avatar, path
        self.sequence, self.sequence_name = avatar.params, "avatar's own"
        self.frame, self.pose, self.layers, self.overlay_colors, self.selection = 0, Pose(), (), None, None
        self.preview_layer, self.split, self.compared = None, None, frozenset()
        self.camera = framing_camera(avatar, self.camera.fov)
        self.playing, self.take = False, None
        e = self.events
        for event in (e.avatar, e.sequence, e.pose, e.camera, e.layers, e.selection, e.preview, e.overlay,
                      e.compare, e.playback, e.changed):
            event.emit()
        e.frame.emit(0)
        e.message.emit(f"Loaded {avatar.name} ({avatar.gaussians.count:,} Gaussians)")

    def set_sequence(self, params: FlameParams, name: str) -> None:
        """Show another FLAME sequence (fitted to the head; the avatar's identity fills what it lacks)."""
        avatar = self.require_avatar()
        params = avatar.head.fit_params(params, name)
        if params.static_offset is None and avatar.params.static_offset is not None:
            params = params.with_values(static_offset=avatar.params.static_offset)
        self.sequence, self.sequence_name = params, name
        self.events.sequence.emit()
        self.set_frame(0, force=True)

    def set_frame(self, frame: int, force: bool = False) -> None:
        """Show frame `frame` of the sequence (wrapped into range)."""
        frame = int(frame) % max(1, self.frame_count)
        if frame == self.frame and not force:
            return
        self.frame = frame
        self.events.frame.emit(frame)
        self.events.changed.emit()

    # ---- pose, camera, layers, selection -----------------------------------------------------------
    def set_pose(self, pose: Pose) -> None:
        self.pose = pose
        self.events.pose.emit()
        self.events.changed.emit()

    def set_camera(self, camera: CameraState) -> None:
        if camera == self.camera:
            return
        self.camera = camera
        self.events.camera.emit()
        self.events.changed.emit()

    def reset_camera(self) -> None:
        """Back to the front view that frames the avatar."""
        if self.avatar is not None:
            self.set_camera(framing_camera(self.avatar, self.camera.fov))

    def set_layers(self, layers: tuple[EditLayer, ...]) -> None:
        self.layers = tuple(layers)
        self.events.layers.emit()
        self.events.changed.emit()

    def set_preview_layer(self, layer: EditLayer | None) -> None:
        """Show (or with None, drop) a transient layer after the real ones."""
        if layer is self.preview_layer:
            return
        self.preview_layer = layer
        self.events.preview.emit()
        self.events.changed.emit()

    def set_compare(self, compared: frozenset[str] | set[str] | None = None, split: float | None = 0.5) -> None:
        """The before/after comparison: the ids of the layers the before side leaves out (None: keep them) and
        the divider as a share of the width (None: comparison off)."""
        if compared is not None:
            self.compared = frozenset(compared)
        self.split = None if split is None else min(1.0, max(0.0, float(split)))
        self.events.compare.emit()
        self.events.changed.emit()

    def set_selection(self, weights: torch.Tensor | None) -> None:
        """Replace the selection (weights as checked_selection returns them)."""
        self.selection = weights
        self.events.selection.emit()
        self.events.changed.emit()  # the view highlights it

    # ---- overlay and view options ----------------------------------------------------------------
    def set_overlay(self, colors: np.ndarray | None, opacity: float | None = None) -> None:
        """Per-Gaussian overlay colours blended over the splats' current colours, or None.

        colors: [N, 3] rgb in [0, 1] (blended with the overall opacity), or [N, 4] rgba whose alpha
        weights each Gaussian (0 = untouched) before the overall opacity.
        """
        if colors is not None:
            colors = np.asarray(colors, dtype=np.float32)
            n = self.require_avatar().gaussians.count
            if colors.ndim != 2 or colors.shape[0] != n or colors.shape[1] not in (3, 4):
                raise ValueError(f"overlay colours must be [N, 3] or [N, 4] with N = {n}, got {list(colors.shape)}")
        self.overlay_colors = colors
        if opacity is not None:
            self.overlay_opacity = min(1.0, max(0.0, float(opacity)))
        self.events.overlay.emit()
        self.events.changed.emit()

    def set_view_options(self, **changes: Any) -> None:
        view = replace(self.view_options, **changes)
        if view == self.view_options:
            return
        self.view_options = view
        self.events.view.emit()
        self.events.changed.emit()

    # ---- playback and recording --------------------------------------------------------------------
    def set_playing(self, playing: bool) -> None:
        if bool(playing) != self.playing:
            self.playing = bool(playing)
            self.events.playback.emit()

    def set_loop(self, loop: bool) -> None:
        if bool(loop) != self.loop:
            self.loop = bool(loop)
            self.events.playback.emit()

    def start_recording(self) -> None:
        """Begin a take: record_sample() then appends the shown parameters, one frame per call."""
        self.require_avatar()
        self.take = []
        self.events.playback.emit()

    def record_sample(self) -> None:
        if self.take is not None and self.avatar is not None and self.sequence is not None:
            self.take.append(posed_params(self.avatar, self.sequence, self.pose, self.frame))  # layers stay layers

    def stop_recording(self) -> FlameParams | None:
        """End the take; it becomes the shown sequence (pose reset, so it is not applied twice)."""
        take, self.take = self.take, None
        self.events.playback.emit()
        if not take:
            return None
        params = concat_params(take)
        self.set_pose(Pose())
        self.set_sequence(params, "recorded take")
        return params
