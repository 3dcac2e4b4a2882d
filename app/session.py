"""The session model: the one source of truth of the GUI (avatar, FLAME sequence, pose, camera, layers,
overlays, playback), a QObject that emits one signal per kind of change.

Widgets take the model in __init__, subscribe to its signals, write back through its setters and
block their own signals while they sync. Undoable changes (pose, layers) go through the model's
QUndoStack; one slider drag (press to release) is one undo item because its commands share a
`merge` key. The pure helpers (CameraState maths, posed_params) hold no Qt and are used by the
render thread, the recorder and the benchmark alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.avatar.avatar import Avatar
from engine.avatar.posing import Pose, apply_pose
from engine.edit.layers import EditLayer, expression_offset
from engine.head.params import FRAME_KEYS, FlameParams
from engine.render.camera import Camera, orbit_camera

PITCH_LIMIT = 89.0  # degrees: the orbit stops short of the poles (look_at needs a horizontal right vector)
DISTANCE_RANGE = (0.05, 20.0)  # metres: zoom limits


@dataclass(frozen=True)
class CameraState:
    """The viewport's orbit camera."""

    yaw: float = 0.0  # degrees about world +y; positive moves the camera toward +x
    pitch: float = 0.0  # degrees; positive moves the camera up
    distance: float = 0.6  # metres from the camera to target
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)  # orbit centre in world metres
    fov: float = 22.0  # vertical field of view, degrees

    def camera(self, width: int, height: int) -> Camera:
        """The engine Camera for an image of width x height pixels."""
        return orbit_camera(self.yaw, self.pitch, self.distance, self.target, self.fov, width, height)

    def orbited(self, d_yaw: float, d_pitch: float) -> "CameraState":
        pitch = min(PITCH_LIMIT, max(-PITCH_LIMIT, self.pitch + d_pitch))
        yaw = (self.yaw + d_yaw + 180.0) % 360.0 - 180.0
        return replace(self, yaw=yaw, pitch=pitch)

    def panned(self, dx_px: float, dy_px: float, height_px: int) -> "CameraState":
        """The target moved so the picture follows a drag of (dx, dy) pixels in an image height_px tall."""
        metres_per_px = 2.0 * self.distance * math.tan(math.radians(self.fov) / 2) / max(1, height_px)
        rot = self.camera(64, 64).world_to_cam[:3, :3].double()  # rows: camera right, down, forward in world
        shift = (-dx_px * rot[0] - dy_px * rot[1]) * metres_per_px
        return replace(self, target=tuple(float(a + b) for a, b in zip(self.target, shift.tolist())))

    def zoomed(self, factor: float) -> "CameraState":
        """Distance multiplied by factor (< 1 moves closer), within DISTANCE_RANGE."""
        lo, hi = DISTANCE_RANGE
        return replace(self, distance=min(hi, max(lo, self.distance * factor)))


@dataclass(frozen=True)
class ViewOptions:
    """What the viewport draws besides the splats."""

    wireframe: bool = False  # mesh wireframe over the splats
    components: bool = False  # Gaussians tinted by facial component
    fps: bool = True  # frames-per-second readout in the corner
    background: tuple[float, float, float] = (0.13, 0.14, 0.16)  # linear rgb in [0, 1]


def framing_camera(avatar: Avatar, fov: float = 22.0) -> CameraState:
    """A front view that fits the avatar's neutral mesh with some margin."""
    with torch.inference_mode():
        verts = avatar.posed_vertices().float()
    lo, hi = verts.min(0).values, verts.max(0).values
    centre = ((lo + hi) / 2).tolist()
    half = float((hi - lo)[:2].max()) / 2
    distance = 1.0 * half / math.tan(math.radians(fov) / 2) + float(hi[2] - lo[2]) / 2
    return CameraState(0.0, 0.0, max(DISTANCE_RANGE[0], distance), tuple(centre), fov)


def posed_params(avatar: Avatar, sequence: FlameParams, pose: Pose, frame: int,
                 layers: tuple[EditLayer, ...] = ()) -> FlameParams:
    """FLAME parameters of one frame [T=1]: the sequence's frame, plus the pose, plus layer expression offsets."""
    base = replace(avatar, params=sequence) if sequence is not avatar.params else avatar
    params = apply_pose(base, pose, frame % sequence.frames)
    offset = expression_offset(list(layers), avatar.head.n_expr)
    if offset is not None:
        params = params.with_values(expr=params.expr + offset[None].to(params.expr.dtype))
    return params


def concat_params(frames: list[FlameParams]) -> FlameParams:
    """One sequence of T frames from T one-frame parameter sets (identity from the first)."""
    first = frames[0]
    cat = {k: torch.cat([getattr(f, k) for f in frames]) for k in FRAME_KEYS}
    dyn = None
    if all(f.dynamic_offset is not None for f in frames):
        dyn = torch.cat([f.dynamic_offset for f in frames])
    return first.with_values(**cat, dynamic_offset=dyn)


def _same_weights(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(torch.equal(a, b))


class _ValueCommand(QUndoCommand):
    """Undo item that sets one model value; consecutive items with the same merge key become one."""

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
        if not isinstance(other, _ValueCommand) or other.merge != self.merge or self.merge is None:
            return False
        self.after = other.after
        return True


@dataclass
class _State:
    """Plain fields of the session (private: read them through the model's properties)."""

    avatar: Avatar | None = None
    avatar_path: str | None = None  # file it came from; None for the demo avatar
    sequence: FlameParams | None = None  # the FLAME sequence being shown (the avatar's own by default)
    sequence_name: str = ""
    frame: int = 0
    pose: Pose = field(default_factory=Pose)
    camera: CameraState = field(default_factory=CameraState)
    layers: tuple[EditLayer, ...] = ()
    overlay_colors: np.ndarray | None = None  # [N, 3] float rgb per Gaussian, or None
    overlay_opacity: float = 0.5
    view: ViewOptions = field(default_factory=ViewOptions)
    playing: bool = False
    loop: bool = True
    fps: float = 25.0  # playback and recording rate of sequences
    take: list[FlameParams] | None = None  # frames recorded so far, None when not recording
    selection: torch.Tensor | None = None  # [N_base] float weights in [0, 1] over avatar.gaussians, or None
    preview_layer: EditLayer | None = None  # transient layer drawn after `layers` (live adjust preview), never saved


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
    playbackChanged = Signal()  # playing, loop or recording changed
    changed = Signal()  # anything that changes the picture
    message = Signal(str)  # a short status-bar message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._s = _State()
        self.undo_stack = QUndoStack(self)

    # ---- read access -------------------------------------------------------------------------
    @property
    def avatar(self) -> Avatar | None:
        return self._s.avatar

    @property
    def avatar_path(self) -> str | None:
        return self._s.avatar_path

    @property
    def sequence(self) -> FlameParams | None:
        return self._s.sequence

    @property
    def sequence_name(self) -> str:
        return self._s.sequence_name

    @property
    def frame(self) -> int:
        return self._s.frame

    @property
    def pose(self) -> Pose:
        return self._s.pose

    @property
    def camera(self) -> CameraState:
        return self._s.camera

    @property
    def layers(self) -> tuple[EditLayer, ...]:
        return self._s.layers

    @property
    def preview_layer(self) -> EditLayer | None:
        """A transient layer shown after the real ones (live preview); not undoable, not saved."""
        return self._s.preview_layer

    @property
    def shown_layers(self) -> tuple[EditLayer, ...]:
        """The layers the viewport draws: `layers`, then the preview layer if there is one."""
        s = self._s
        return s.layers if s.preview_layer is None else (*s.layers, s.preview_layer)

    @property
    def overlay_colors(self) -> np.ndarray | None:
        return self._s.overlay_colors

    @property
    def overlay_opacity(self) -> float:
        return self._s.overlay_opacity

    @property
    def playing(self) -> bool:
        return self._s.playing

    @property
    def loop(self) -> bool:
        return self._s.loop

    @property
    def fps(self) -> float:
        return self._s.fps

    @property
    def view_options(self) -> ViewOptions:
        return self._s.view

    @property
    def recording(self) -> bool:
        return self._s.take is not None

    @property
    def frame_count(self) -> int:
        return self._s.sequence.frames if self._s.sequence is not None else 0

    @property
    def expression_names(self) -> tuple[str, ...]:
        """Slider names: the head's named expressions, else expr_0..expr_9 of a real FLAME model."""
        if self._s.avatar is None:
            return ()
        head = self._s.avatar.head
        return head.expression_names or tuple(f"expr_{i}" for i in range(min(10, head.n_expr)))

    def current_params(self) -> FlameParams:
        """FLAME parameters [T=1] of what is shown now."""
        s = self._s
        if s.avatar is None or s.sequence is None:
            raise RuntimeError("no avatar loaded")
        return posed_params(s.avatar, s.sequence, s.pose, s.frame, s.layers)

    # ---- avatar and sequence ----------------------------------------------------------------
    def set_avatar(self, avatar: Avatar, path: str | None = None) -> None:
        """Show another avatar; resets sequence, frame, pose, camera, layers, overlay and undo history."""
        s = self._s
        s.avatar, s.avatar_path = avatar, path
        s.sequence, s.sequence_name = avatar.params, "avatar's own"
        s.frame, s.pose, s.layers, s.overlay_colors, s.selection = 0, Pose(), (), None, None
        s.preview_layer = None
        s.camera = framing_camera(avatar, s.camera.fov)
        s.playing = False
        s.take = None
        self.undo_stack.clear()
        for sig in (self.avatarChanged, self.sequenceChanged, self.poseChanged, self.cameraChanged, self.layersChanged,
                    self.selectionChanged, self.previewChanged, self.overlayChanged, self.playbackChanged, self.changed):
            sig.emit()
        self.frameChanged.emit(0)
        self.message.emit(f"Loaded {avatar.name} ({avatar.gaussians.count:,} Gaussians)")

    def set_sequence(self, params: FlameParams, name: str) -> None:
        """Show another FLAME sequence (fitted to the head; the avatar's identity fills what it lacks)."""
        avatar = self._require_avatar()
        params = avatar.head.fit_params(params, name)
        if params.static_offset is None and avatar.params.static_offset is not None:
            params = params.with_values(static_offset=avatar.params.static_offset)
        self._s.sequence, self._s.sequence_name = params, name
        self.sequenceChanged.emit()
        self.set_frame(0, force=True)

    def set_frame(self, frame: int, force: bool = False) -> None:
        """Show frame `frame` of the sequence (wrapped into range)."""
        count = max(1, self.frame_count)
        frame = int(frame) % count
        if frame == self._s.frame and not force:
            return
        self._s.frame = frame
        self.frameChanged.emit(frame)
        self.changed.emit()

    # ---- pose (undoable) --------------------------------------------------------------------
    def set_pose(self, pose: Pose, merge: str | None = None, text: str = "Change pose") -> None:
        """Set the pose as one undo item; consecutive calls with the same merge key form one item."""
        if pose == self._s.pose:
            return
        self.undo_stack.push(_ValueCommand(text, self._apply_pose, self._s.pose, pose, merge))

    def set_pose_values(self, merge: str | None = None, **values: float) -> None:
        """Change some Pose fields (jaw, yaw, pitch, roll, neck_yaw, neck_pitch, gaze_x, gaze_y)."""
        self.set_pose(replace(self._s.pose, **{k: float(v) for k, v in values.items()}), merge, "Change pose")

    def set_expression(self, name: str, value: float, merge: str | None = None) -> None:
        """Set one named expression coefficient (a 0 removes the name from the pose)."""
        avatar = self._require_avatar()
        avatar.head.check_expression(name)  # raises a clear ValueError for an unknown name
        exprs = dict(self._s.pose.expressions)
        if value == 0.0:
            exprs.pop(name, None)
        else:
            exprs[name] = float(value)
        self.set_pose(replace(self._s.pose, expressions=exprs), merge, f"Change {name}")

    def _apply_pose(self, pose: Pose) -> None:
        self._s.pose = pose
        self.poseChanged.emit()
        self.changed.emit()

    # ---- camera -----------------------------------------------------------------------------
    def set_camera(self, camera: CameraState) -> None:
        if camera == self._s.camera:
            return
        self._s.camera = camera
        self.cameraChanged.emit()
        self.changed.emit()

    def reset_camera(self) -> None:
        """Back to the front view that frames the avatar."""
        if self._s.avatar is not None:
            self.set_camera(framing_camera(self._s.avatar, self._s.camera.fov))

    # ---- edit layers (undoable) -------------------------------------------------------------
    def set_layers(self, layers: list[EditLayer] | tuple[EditLayer, ...], text: str = "Change layers") -> None:
        self.undo_stack.push(_ValueCommand(text, self._apply_layers, self._s.layers, tuple(layers), None))

    def _apply_layers(self, layers: tuple[EditLayer, ...]) -> None:
        self._s.layers = layers
        self.layersChanged.emit()
        self.changed.emit()

    def set_preview_layer(self, layer: EditLayer | None) -> None:
        """Show (or with None, drop) a transient layer after the real ones; not an undo item."""
        if layer is self._s.preview_layer:
            return
        self._s.preview_layer = layer
        self.previewChanged.emit()
        self.changed.emit()

    # ---- selection (undoable) ----------------------------------------------------------------
    @property
    def selection(self) -> torch.Tensor | None:
        """[N_base] float weights in [0, 1] over the base avatar's Gaussians (avatar.gaussians), or None."""
        return self._s.selection

    def set_selection(self, weights: torch.Tensor | None, text: str = "Change selection", merge: str | None = None) -> None:
        """Replace the selection as one undo item (weights [N_base] in [0, 1], or None for nothing selected)."""
        if weights is not None:
            n = self._require_avatar().gaussians.count
            assert weights.shape == (n,), f"selection must be [{n}], got {tuple(weights.shape)}"
            weights = weights.detach().float().clamp(0.0, 1.0).clone()
        self.undo_stack.push(_ValueCommand(text, self._apply_selection, self._s.selection, weights, merge))

    def _apply_selection(self, weights: torch.Tensor | None) -> None:
        self._s.selection = weights
        self.selectionChanged.emit()

    def mirror_selection(self, weights: torch.Tensor | None) -> None:
        """Set the selection without an undo item: for a controller whose own undo command made the change."""
        if weights is not None:
            weights = weights.detach().float().clamp(0.0, 1.0).clone()
        if _same_weights(weights, self._s.selection):
            return
        self._apply_selection(weights)

    # ---- overlay and view options -----------------------------------------------------------
    def set_overlay(self, colors: np.ndarray | None, opacity: float | None = None) -> None:
        """Per-Gaussian overlay colours blended over the splats' current colours, or None.

        colors: [N, 3] rgb in [0, 1] (blended with the overall opacity), or [N, 4] rgba whose alpha
        weights each Gaussian (0 = untouched) before the overall opacity.
        """
        if colors is not None:
            colors = np.asarray(colors, dtype=np.float32)
            n = self._require_avatar().gaussians.count
            if colors.ndim != 2 or colors.shape[0] != n or colors.shape[1] not in (3, 4):
                raise ValueError(f"overlay colours must be [N, 3] or [N, 4] with N = {n}, got {list(colors.shape)}")
        self._s.overlay_colors = colors
        if opacity is not None:
            self._s.overlay_opacity = min(1.0, max(0.0, float(opacity)))
        self.overlayChanged.emit()
        self.changed.emit()

    def set_view_options(self, **changes: Any) -> None:
        view = replace(self._s.view, **changes)
        if view == self._s.view:
            return
        self._s.view = view
        self.viewOptionsChanged.emit()
        self.changed.emit()

    # ---- playback and recording -------------------------------------------------------------
    def set_playing(self, playing: bool) -> None:
        if bool(playing) != self._s.playing:
            self._s.playing = bool(playing)
            self.playbackChanged.emit()

    def set_loop(self, loop: bool) -> None:
        if bool(loop) != self._s.loop:
            self._s.loop = bool(loop)
            self.playbackChanged.emit()

    def start_recording(self) -> None:
        """Begin a take: record_sample() then appends the shown parameters, one frame per call."""
        self._require_avatar()
        self._s.take = []
        self.playbackChanged.emit()

    def record_sample(self) -> None:
        s = self._s
        if s.take is not None and s.avatar is not None and s.sequence is not None:
            s.take.append(posed_params(s.avatar, s.sequence, s.pose, s.frame))  # layers stay layers

    def stop_recording(self) -> FlameParams | None:
        """End the take; it becomes the shown sequence (pose reset, so it is not applied twice)."""
        take, self._s.take = self._s.take, None
        self.playbackChanged.emit()
        if not take:
            return None
        params = concat_params(take)
        self._s.pose = Pose()
        self.undo_stack.clear()
        self.poseChanged.emit()
        self.set_sequence(params, "recorded take")
        return params

    def _require_avatar(self) -> Avatar:
        if self._s.avatar is None:
            raise RuntimeError("no avatar loaded")
        return self._s.avatar


def display_name(path: str | None) -> str:
    """Short name of a file for menus and titles."""
    return Path(path).name if path else "demo avatar"
