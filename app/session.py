"""The session model of the GUI: a thin Qt adapter over the Qt-free session state (engine/view/state.py).

It relays each state event as a Qt signal (so widgets connect as to any QObject, and Qt drops the
connections of widgets that are gone) and adds undo: pose, layers and selection changes are QUndoCommands on
the model's QUndoStack; one slider drag (press to release) is one undo item because its commands share a
`merge` key. Everything else forwards to the state. Widgets type the model as widgets.session_view.SessionView.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.avatar.avatar import Avatar
from engine.avatar.posing import Pose
from engine.edit.layers import EditLayer
from engine.head.params import FlameParams
from engine.view.camera import CameraState
from engine.view.state import SessionState


class ValueCommand(QUndoCommand):
    """Undo item that sets one value; consecutive items with the same merge key become one."""

    def __init__(self, text: str, apply: Callable[[Any], None], before: Any, after: Any, merge: str | None) -> None:
        super().__init__(text)
        self._apply, self.before, self.after, self.merge = apply, before, after, merge

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)

    def id(self) -> int:
        return 1 if self.merge else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, ValueCommand) or other.merge != self.merge or self.merge is None:
            return False
        self.after = other.after
        return True


def _same_weights(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(torch.equal(a, b))


def _read(name: str) -> property:
    """A read-only property forwarding to the session state."""
    return property(lambda self: getattr(self.state, name), doc=f"SessionState.{name}")


class SessionModel(QObject):
    """Everything the GUI shows. Read through properties; change through setters (they emit)."""

    avatarChanged = Signal()  # new avatar: sequence, pose, camera, layers and overlay were reset too
    sequenceChanged = Signal()
    frameChanged = Signal(int)
    poseChanged = Signal()
    cameraChanged = Signal()
    layersChanged = Signal()
    selectionChanged = Signal()  # the per-Gaussian selection (masks, components) changed
    previewChanged = Signal()  # the transient preview layer changed
    overlayChanged = Signal()
    viewOptionsChanged = Signal()
    compareChanged = Signal()  # the before/after comparison: its divider, or which layers it compares
    playbackChanged = Signal()  # playing, loop or recording changed
    changed = Signal()  # anything that changes the picture
    message = Signal(str)  # a short status-bar message

    avatar = _read("avatar")
    avatar_path = _read("avatar_path")
    sequence = _read("sequence")
    sequence_name = _read("sequence_name")
    frame = _read("frame")
    pose = _read("pose")
    camera = _read("camera")
    layers = _read("layers")
    preview_layer = _read("preview_layer")  # transient layer shown after the real ones; not undoable, not saved
    shown_layers = _read("shown_layers")  # `layers`, then the preview layer if there is one
    selection = _read("selection")  # [N_base] float weights in [0, 1] over avatar.gaussians, or None
    overlay_colors = _read("overlay_colors")
    overlay_opacity = _read("overlay_opacity")
    view_options = _read("view_options")
    split = _read("split")  # before/after divider as a share of the view's width, None: off
    compared = _read("compared")  # ids of the layers the before side of the comparison leaves out
    comparing = _read("comparing")  # a comparison is on and its sides differ
    playing = _read("playing")
    loop = _read("loop")
    fps = _read("fps")
    recording = _read("recording")
    frame_count = _read("frame_count")
    expression_names = _read("expression_names")

    def __init__(self, state: SessionState | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state or SessionState()
        self.undo_stack = QUndoStack(self)
        e = self.state.events
        e.avatar.connect(self.undo_stack.clear)  # before avatarChanged reaches anyone: a new avatar, no history
        for event, signal in ((e.avatar, self.avatarChanged), (e.sequence, self.sequenceChanged),
                              (e.frame, self.frameChanged), (e.pose, self.poseChanged),
                              (e.camera, self.cameraChanged), (e.layers, self.layersChanged),
                              (e.selection, self.selectionChanged), (e.preview, self.previewChanged),
                              (e.overlay, self.overlayChanged), (e.view, self.viewOptionsChanged),
                              (e.compare, self.compareChanged),
                              (e.playback, self.playbackChanged), (e.changed, self.changed),
                              (e.message, self.message)):
            event.connect(signal.emit)

    def current_params(self) -> FlameParams:
        """FLAME parameters [T=1] of what is shown now."""
        return self.state.current_params()

    # ---- forwarded setters (not undoable) --------------------------------------------------------
    def set_avatar(self, avatar: Avatar, path: str | None = None) -> None:
        """Show another avatar; resets sequence, frame, pose, camera, layers, overlay and undo history."""
        self.state.set_avatar(avatar, path)

    def set_sequence(self, params: FlameParams, name: str) -> None:
        self.state.set_sequence(params, name)

    def set_frame(self, frame: int, force: bool = False) -> None:
        self.state.set_frame(frame, force)

    def set_camera(self, camera: CameraState) -> None:
        self.state.set_camera(camera)

    def reset_camera(self) -> None:
        self.state.reset_camera()

    def set_preview_layer(self, layer: EditLayer | None) -> None:
        self.state.set_preview_layer(layer)

    def set_overlay(self, colors: np.ndarray | None, opacity: float | None = None) -> None:
        self.state.set_overlay(colors, opacity)

    def set_view_options(self, **changes: Any) -> None:
        self.state.set_view_options(**changes)

    def set_compare(self, compared: frozenset[str] | set[str] | None = None, split: float | None = 0.5) -> None:
        """The before/after comparison in the viewport (not undoable: it changes no data)."""
        self.state.set_compare(compared, split)

    def set_playing(self, playing: bool) -> None:
        self.state.set_playing(playing)

    def set_loop(self, loop: bool) -> None:
        self.state.set_loop(loop)

    def start_recording(self) -> None:
        self.state.start_recording()

    def record_sample(self) -> None:
        self.state.record_sample()

    def stop_recording(self) -> FlameParams | None:
        """End the take; it becomes the shown sequence (pose reset and undo history cleared)."""
        params = self.state.stop_recording()
        if params is not None:
            self.undo_stack.clear()
        return params

    # ---- undoable setters --------------------------------------------------------------------------
    def set_pose(self, pose: Pose, merge: str | None = None, text: str = "Change pose") -> None:
        """Set the pose as one undo item; consecutive calls with the same merge key form one item."""
        if pose != self.state.pose:
            self.undo_stack.push(ValueCommand(text, self.state.set_pose, self.state.pose, pose, merge))

    def set_pose_values(self, merge: str | None = None, **values: float) -> None:
        """Change some Pose fields (jaw, yaw, pitch, roll, neck_yaw, neck_pitch, gaze_x, gaze_y)."""
        self.set_pose(replace(self.state.pose, **{k: float(v) for k, v in values.items()}), merge, "Change pose")

    def set_expression(self, name: str, value: float, merge: str | None = None) -> None:
        """Set one named expression coefficient (a 0 removes the name from the pose)."""
        self.set_pose(self.state.pose_with_expression(name, value), merge, f"Change {name}")

    def set_layers(self, layers: list[EditLayer] | tuple[EditLayer, ...], text: str = "Change layers") -> None:
        self.undo_stack.push(ValueCommand(text, self.state.set_layers, self.state.layers, tuple(layers), None))

    def set_selection(self, weights: torch.Tensor | None, text: str = "Change selection", merge: str | None = None) -> None:
        """Replace the selection as one undo item (weights [N_base] in [0, 1], or None for nothing selected)."""
        after = self.state.checked_selection(weights)
        self.undo_stack.push(ValueCommand(text, self.state.set_selection, self.state.selection, after, merge))

    def mirror_selection(self, weights: torch.Tensor | None) -> None:
        """Set the selection without an undo item: for a controller whose own undo command made the change."""
        if weights is not None:
            weights = weights.detach().float().clamp(0.0, 1.0).clone()
        if not _same_weights(weights, self.state.selection):
            self.state.set_selection(weights)


def display_name(path: str | None) -> str:
    """Short name of a file for menus and titles."""
    return Path(path).name if path else "demo avatar"
