"""Wires the Masks panel and the viewport painter to the session model.

The selection (engine.semantics.selection.Selection) lives here, next to the model; every change is
a QUndoCommand on the model's undo stack (one stroke = one item; threshold drags merge). The
selection is mirrored into the session, whose view highlights it in a contrasting accent
(engine/view/overlays.py), so it follows every expression, pose, frame and camera the viewport renders.

A stroke is lifted by votes at once; "Fit last stroke to its view" then refines its weights by least
squares (engine.semantics.lift.fit_to_view) on a worker thread, and lands as its own undo step if
the selection is still the one the stroke left. "Fit ticked components to a dataset" likewise fits
the selection to the ticked components' label regions at several of a dataset's training frames
(engine.semantics.region_fit.fit_to_dataset).

Install in the main window with one call after it is built: `install_masks(window)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence

from app.session import SessionModel, ValueCommand
from app.workers import Job, Worker
from engine.avatar.avatar import Avatar
from engine.data.vhap_format import read_dataset
from engine.head.components import COMPONENTS, LABEL
from engine.render.camera import Camera
from engine.render.splats import Splats
from engine.semantics.lift import fit_to_view, lift_filled, rest_points
from engine.semantics.region_fit import fit_to_dataset
from engine.semantics.selection import SELECTION_FILE, Selection, knn_neighbours, load_selection
from widgets.mask_painter import MaskPainter, Stroke
from widgets.masks_panel import MasksPanel

DATASET_FIT_SIZE = 256  # the dataset's label maps are fitted to at most this many pixels on a side (speed)


@dataclass(frozen=True)
class MaskState:
    """What one undo step restores."""

    selection: Selection
    components: tuple[str, ...]  # ticked components


@dataclass(frozen=True)
class PaintedStroke:
    """The last stroke, kept so that it can be fitted to the view it was painted on."""

    splats: Splats  # the avatar as posed when it was painted
    camera: Camera  # the view it was painted on
    mask: torch.Tensor  # [H, W] the rasterised stroke in [0, 1]
    weights: torch.Tensor  # [N] its lifted (and filled) weights
    seen: torch.Tensor  # [N] bool: the Gaussians that view sees (the ones the fit may change)
    tool: str  # brush, lasso or eraser
    before: MaskState  # the state the stroke was applied to
    after: MaskState  # the state the stroke left


def fit_stroke(progress: Callable[[float, str], None], cancel: Callable[[], bool], stroke: PaintedStroke,
               backend: str = "auto") -> torch.Tensor:
    """[N] the stroke's weights fitted so the selection drawn at its view reproduces it (worker job)."""
    fitted = fit_to_view(stroke.splats, stroke.camera, stroke.mask[None], stroke.weights[:, None], stroke.seen,
                         backend=backend, progress=progress, cancel=cancel)
    return fitted[:, 0].cpu()


def fit_components(progress: Callable[[float, str], None], cancel: Callable[[], bool], avatar: Avatar, folder: str,
                   wanted: list[int], weights: torch.Tensor, frames: int, size: int = DATASET_FIT_SIZE) -> torch.Tensor:
    """[N] weights fitted to the `wanted` labels' regions at `frames` training frames of the dataset (worker job)."""
    progress(0.0, f"reading {folder}")
    dataset = read_dataset(folder)
    return fit_to_dataset(avatar, dataset, wanted, weights, frames, size=size, progress=progress, cancel=cancel).cpu()


class MasksController(QObject):
    """Owns the current selection; applies panel requests and strokes as undoable commands."""

    selectionChanged = Signal()

    def __init__(self, model: SessionModel, panel: MasksPanel, painter: MaskPainter,
                 camera_source: Callable[[], Any], backend: str = "auto") -> None:
        super().__init__(panel)
        self.model, self.panel, self.painter = model, panel, painter
        self.camera_source = camera_source  # -> engine Camera of the image on screen, or None
        self.backend = backend
        self.state: MaskState | None = None
        self._neighbours: torch.Tensor | None = None
        self._rest: torch.Tensor | None = None
        self._stroke: PaintedStroke | None = None  # the last stroke (fit_last_stroke)
        self.stroke_fit = Job("fit stroke", self)
        self._fitting_stroke: PaintedStroke | None = None  # the stroke stroke_fit fits
        self.dataset_fit = Job("fit components to dataset", self)
        self._dataset_from: MaskState | None = None  # the state the dataset fit started from
        panel.componentsChanged.connect(self.set_components)
        panel.toolChanged.connect(painter.set_tool)
        panel.brushChanged.connect(painter.set_brush)
        painter.set_brush(*panel.brush)
        panel.thresholdChanged.connect(self.set_threshold)
        panel.invertRequested.connect(lambda: self._edit("Invert selection", lambda s: s.inverted()))
        panel.growRequested.connect(lambda: self._edit("Grow selection", lambda s: s.grown(self.neighbours())))
        panel.shrinkRequested.connect(lambda: self._edit("Shrink selection", lambda s: s.shrunk(self.neighbours())))
        panel.clearRequested.connect(self.clear)
        panel.refineRequested.connect(self.fit_last_stroke)
        panel.datasetFitRequested.connect(self.fit_to_dataset)
        panel.datasetFitCancelled.connect(self.cancel_dataset_fit)
        painter.strokeFinished.connect(self.apply_stroke)
        model.avatarChanged.connect(self._on_avatar)
        model.selectionChanged.connect(self._on_model_selection)
        if model.avatar is not None:
            self._on_avatar()

    # ---- state --------------------------------------------------------------------------------
    @property
    def selection(self) -> Selection | None:
        return None if self.state is None else self.state.selection

    def selected_indices(self) -> np.ndarray:
        """Indices of the selected Gaussians (empty without an avatar)."""
        return np.zeros(0, dtype=np.int64) if self.state is None else self.state.selection.indices.numpy()

    def rest_points(self) -> torch.Tensor:
        """[N, 3] the avatar's Gaussian centres at rest (engine.semantics.lift.rest_points; once per avatar)."""
        if self._rest is None:
            avatar = self.model.avatar
            assert avatar is not None
            self._rest = rest_points(avatar)
        return self._rest

    def neighbours(self) -> torch.Tensor:
        """[N, 8] rest-pose kNN of the avatar's Gaussians (computed once per avatar)."""
        if self._neighbours is None:
            self._neighbours = knn_neighbours(self.rest_points(), 8)
        return self._neighbours

    def _on_avatar(self) -> None:
        avatar = self.model.avatar
        self._neighbours = self._rest = self._stroke = None
        self.stroke_fit.cancel()
        self.dataset_fit.cancel()
        if avatar is None:
            self.state = None
            return
        selection = Selection.empty(avatar.gaussians.count)
        path = self.model.avatar_path
        if path:
            file = (Path(path) if Path(path).is_dir() else Path(path).parent) / SELECTION_FILE
            if file.is_file():
                try:
                    selection = load_selection(file, avatar.gaussians.count)
                except ValueError as exc:
                    self.model.message.emit(str(exc))
        self._apply(MaskState(selection, ()))

    def _apply(self, state: MaskState) -> None:
        self.state = state
        self.panel.set_components(state.components)
        self.panel.set_threshold(state.selection.threshold)
        count = int(state.selection.mask.sum())
        self.panel.set_status(f"{count:,} Gaussians selected" if count else "No selection")
        self._show_refine()
        self._show_dataset_fit()
        # The session's selection (read by the adjust and edit panels) follows: selected weights, 0 elsewhere.
        sel = state.selection
        self.model.mirror_selection(torch.where(sel.mask, sel.weights, torch.zeros_like(sel.weights)) if count else None)
        self.selectionChanged.emit()

    def _on_model_selection(self) -> None:
        """Another panel set the session's selection (its own undo item): show it here without a new one."""
        weights, avatar = self.model.selection, self.model.avatar
        if self.state is None or avatar is None:
            return
        current = self.state.selection
        mine = torch.where(current.mask, current.weights, torch.zeros_like(current.weights))
        if weights is None and not bool(current.mask.any()):
            return
        if weights is not None and weights.shape == mine.shape and torch.equal(weights, mine):
            return
        new = Selection.empty(avatar.gaussians.count) if weights is None else Selection(weights.clone(), current.threshold)
        self._apply(MaskState(new, ()))

    def _push(self, text: str, after: MaskState, merge: str | None = None) -> None:
        if self.state is None:
            return
        self.model.undo_stack.push(ValueCommand(text, self._apply, self.state, after, merge))

    def _edit(self, text: str, op: Callable[[Selection], Selection]) -> None:
        if self.state is not None:
            self._push(text, MaskState(op(self.state.selection), self.state.components))

    # ---- requests -----------------------------------------------------------------------------
    def set_components(self, names: list[str]) -> None:
        """Tick exactly `names`: newly ticked components are added, unticked ones removed."""
        if self.state is None:
            return
        avatar = self.model.avatar
        labels = avatar.gaussians.labels
        old, new = set(self.state.components), set(names)
        sel = self.state.selection
        added = [LABEL[n] for n in new - old]
        removed = [LABEL[n] for n in old - new]
        if added:
            sel = sel.union(torch.isin(labels, torch.tensor(added)).float())
        if removed:
            sel = sel.subtract(torch.isin(labels, torch.tensor(removed)).float())
        ordered = tuple(c for c in COMPONENTS if c in new)
        self._push("Select components", MaskState(sel, ordered))

    def set_threshold(self, value: float) -> None:
        if self.state is not None:
            self._push("Change threshold", MaskState(self.state.selection.with_threshold(value), self.state.components), "mask-threshold")

    def clear(self) -> None:
        if self.state is not None:
            self._push("Clear selection", MaskState(Selection.empty(self.state.selection.count), ()))

    def apply_stroke(self, stroke: Stroke) -> None:
        """Lift a painted stroke onto the Gaussians shown and add (brush, lasso) or remove (eraser) them."""
        camera = self.camera_source()
        if self.state is None or camera is None:
            self.model.message.emit("Nothing to paint on yet")
            return
        mask = torch.from_numpy(stroke.rasterize(camera.width, camera.height))
        avatar = self.model.avatar
        with torch.no_grad():
            splats = avatar.splats(self.model.current_params())
        lifted, weights = lift_filled(splats, camera, mask, self.rest_points(), avatar.gaussians.labels, self.backend)
        weights = weights.cpu()
        before = self.state
        sel = before.selection.subtract(weights) if stroke.tool == "eraser" else before.selection.union(weights)
        after = MaskState(sel, before.components)
        self._stroke = PaintedStroke(splats, camera, mask.float(), weights, lifted.seen.cpu(), stroke.tool, before, after)
        self._push({"eraser": "Erase mask", "lasso": "Lasso mask"}.get(stroke.tool, "Paint mask"), after)

    # ---- fitting the last stroke to its view ----------------------------------------------------
    def can_fit(self) -> bool:
        """The selection is the one the last stroke left (so fitting that stroke replaces it)."""
        return self._stroke is not None and self.state is self._stroke.after

    def _show_refine(self, fraction: float = 0.0) -> None:
        self.panel.set_refine(self.can_fit(), self.stroke_fit.busy, fraction)

    def fit_last_stroke(self) -> Worker | None:
        """Fit the last stroke to its view on a worker (or cancel the fit running); returns the worker."""
        if self.stroke_fit.busy:
            self.stroke_fit.cancel()
            return self.stroke_fit.worker
        if not self.can_fit():
            self.model.message.emit("Paint a stroke first: fitting refines the last stroke at the view it was painted on")
            return None
        stroke = self._stroke
        assert stroke is not None
        self._fitting_stroke = stroke
        # bound methods (not lambdas): Qt drops the connections if the controller goes before the worker ends
        worker = self.stroke_fit.start(fit_stroke, stroke, backend=self.backend, on_progress=self._fit_progress,
                                       on_finished=self._fitted, on_errored=self._fit_failed,
                                       on_cancelled=self._fit_cancelled, on_done=self._fit_done)
        self._show_refine()
        return worker

    def _fit_progress(self, fraction: float, _text: str) -> None:
        self._show_refine(fraction)

    def _fitted(self, fitted: torch.Tensor) -> None:
        stroke = self._fitting_stroke
        if stroke is None or self.state is not stroke.after or fitted.shape != stroke.weights.shape:
            self.model.message.emit("The selection changed while the stroke was being fitted; the fit was dropped")
            return
        base = stroke.before.selection
        sel = base.subtract(fitted) if stroke.tool == "eraser" else base.union(fitted)
        self._push("Fit stroke to its view", MaskState(sel, stroke.after.components))

    def _fit_failed(self, message: str) -> None:
        self.model.message.emit(f"Fitting the stroke failed: {message}")

    def _fit_cancelled(self) -> None:
        self.model.message.emit("Fitting cancelled; the stroke stays as painted")

    def _fit_done(self) -> None:
        self._fitting_stroke = None
        self._show_refine()

    # ---- fitting the ticked components to a dataset's label maps -----------------------------------
    def _show_dataset_fit(self, fraction: float = 0.0, text: str = "") -> None:
        available = self.state is not None and bool(self.state.components)
        self.panel.set_dataset_fit(available, self.dataset_fit.busy, fraction, text)

    def fit_to_dataset(self, folder: str, frames: int = 8) -> Worker | None:
        """Fit the selection to the ticked components' label regions at `frames` training frames of the
        dataset in `folder`, on a worker; lands as one undo step if the selection is unchanged by then."""
        if self.dataset_fit.busy:
            self.model.message.emit("Already fitting to a dataset")
            return None
        avatar = self.model.avatar
        if self.state is None or avatar is None or not self.state.components:
            self.model.message.emit("Tick the components to fit first: their labelled regions in the dataset are the target")
            return None
        state = self.state
        wanted = [LABEL[n] for n in state.components]
        self._dataset_from = state
        worker = self.dataset_fit.start(fit_components, avatar, folder, wanted, state.selection.weights.clone(),
                                        frames, on_progress=self._dataset_progress, on_finished=self._dataset_fitted,
                                        on_errored=self._dataset_failed, on_cancelled=self._dataset_cancelled,
                                        on_done=self._dataset_done)
        self._show_dataset_fit(0.0, "reading the dataset…")
        return worker

    def cancel_dataset_fit(self) -> None:
        self.dataset_fit.cancel()

    def _dataset_progress(self, fraction: float, text: str) -> None:
        self._show_dataset_fit(fraction, text)

    def _dataset_fitted(self, fitted: torch.Tensor) -> None:
        start = self._dataset_from
        if start is None or self.state is not start or fitted.shape != start.selection.weights.shape:
            self.model.message.emit("The selection changed while it was being fitted to the dataset; the fit was dropped")
            return
        sel = Selection(fitted.clamp(0.0, 1.0), start.selection.threshold)
        self._push("Fit components to dataset", MaskState(sel, start.components))
        self.model.message.emit(f"Fitted to the dataset: {int(sel.mask.sum()):,} Gaussians selected")

    def _dataset_failed(self, message: str) -> None:
        self.model.message.emit(f"Fitting to the dataset failed: {message}")

    def _dataset_cancelled(self) -> None:
        self.model.message.emit("Fitting to the dataset cancelled; the selection is unchanged")

    def _dataset_done(self) -> None:
        self._dataset_from = None
        self._show_dataset_fit()


def install_masks(window: Any) -> MasksController:
    """Add the Masks dock and the viewport painter to a MainWindow; returns the controller."""
    from app.main_window import PanelSpec

    panel = MasksPanel()
    painter = MaskPainter(window.viewport)

    def camera() -> Any:  # the view at full resolution, even while a reduced frame is on screen
        frame = window.viewport.frame
        return None if frame is None else frame.view_camera

    controller = MasksController(window.model, panel, painter, camera)
    menu = window.edit_menu
    menu.addSeparator()
    for text, keys, steps in (("S&maller brush", "[", -1), ("&Larger brush", "]", 1)):
        action = QAction(text, window)
        action.setShortcut(QKeySequence(keys))
        action.triggered.connect(lambda _=False, n=steps: panel.step_brush(n))
        menu.addAction(action)
    return window.add_feature("masks", controller, PanelSpec("masks", "Masks", lambda w: panel))
