"""Wires the Adjust panel (widgets/adjust_panel.py) to the session model.

State lives in the model: the adjustment being dialled in is the session's transient *preview layer*
(`SessionModel.set_preview_layer`, drawn after the real layers, never saved); committed adjustments
are ordinary edit layers (`SessionModel.set_layers`). The controller only turns panel signals into
model changes:

- while a slider is dragged, every value is coalesced (a zero-delay timer keeps only the newest) and
  turned into a preview layer with `engine.edit.adjust.AdjustPreview`; the render thread renders only
  the newest request, so nothing queues;
- each finished drag is one undo item (`AdjustStepCommand`: before/after AdjustParams, its redo/undo
  rebuild the preview layer and show the params in the panel);
- Apply is one undo item (a macro: the preview goes, the layer is appended with set_layers); undoing
  it removes the layer and brings the preview back, exactly the state before Apply;
- Delete (panel key or Edit > Hide selection) appends a hide layer over the selection.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.session import SessionModel
from engine.edit.adjust import AdjustParams, AdjustPreview, TriangleFrames, adjust_layer, apply_deltas, reference_frames
from engine.edit.layers import EditLayer
from widgets.adjust_panel import AdjustPanel

NO_SELECTION_TEXT = "Nothing selected: choose components (Prompt or Masks panel) to adjust them."


class AdjustStepCommand(QUndoCommand):
    """One finished drag (or Reset) of the pending adjustment: shows `after` on redo, `before` on undo."""

    def __init__(self, text: str, show: Callable[[AdjustParams], None], before: AdjustParams,
                 after: AdjustParams) -> None:
        super().__init__(text)
        self._show, self.before, self.after = show, before, after

    def redo(self) -> None:
        self._show(self.after)

    def undo(self) -> None:
        self._show(self.before)


class AdjustController(QObject):
    """Adjust panel <-> session model (preview layer, undoable steps, Apply, Reset, hide)."""

    def __init__(self, model: SessionModel, panel: AdjustPanel, status: QLabel | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model, self.panel, self.status = model, panel, status
        self._step = AdjustParams()  # params of the newest undo step (what undo returns from)
        self._pending: AdjustParams | None = None  # newest dragged value not yet turned into a preview
        self._helper: AdjustPreview | None = None  # cached composition for the current layers + selection
        self._frames: tuple[object, TriangleFrames] | None = None  # (avatar, its reference-pose frames)
        self._flush_timer = QTimer(self, singleShot=True, interval=0)
        self._flush_timer.timeout.connect(self._flush)
        panel.preview_requested.connect(self.preview)
        panel.drag_finished.connect(self.finish_step)
        panel.apply_requested.connect(self.apply)
        panel.reset_requested.connect(self.reset)
        panel.delete_requested.connect(self.hide_selection)
        model.layersChanged.connect(self._on_context_changed)
        model.selectionChanged.connect(self._on_context_changed)
        model.avatarChanged.connect(self._on_avatar)
        self._update_status()

    # ---- queries -----------------------------------------------------------------------------
    def has_selection(self) -> bool:
        sel = self.model.selection
        return self.model.avatar is not None and sel is not None and bool((sel > 0).any())

    @property
    def params(self) -> AdjustParams:
        """The adjustment of the newest undo step (the panel may be ahead while a slider is held)."""
        return self._step

    # ---- panel signals -----------------------------------------------------------------------
    def preview(self, params: AdjustParams) -> None:
        """A slider moved: show params as the preview (newest value wins; computed on the next event-loop pass)."""
        if not self.has_selection():
            self._update_status()
            return
        self._pending = params
        self._flush_timer.start()

    def finish_step(self, params: AdjustParams) -> None:
        """A drag ended: one undo item taking the pending adjustment from the previous step to params."""
        self._flush()
        if not self.has_selection() or params == self._step:
            return
        self.model.undo_stack.push(AdjustStepCommand(f"Adjust {params.describe()}", self._show, self._step, params))

    def apply(self, params: AdjustParams) -> EditLayer | None:
        """Commit params on the selection as an edit layer (one undo item); the panel returns to identity."""
        self._flush()
        if not self.has_selection():
            self._update_status()
            return None
        if params.is_identity:
            self.model.message.emit("Nothing to apply: every adjustment is at its neutral value")
            return None
        layer = self._preview_helper(params).layer(params)
        stack = self.model.undo_stack
        stack.beginMacro(f"Apply {layer.name}")
        stack.push(AdjustStepCommand("Clear adjustment", self._show, self._step, AdjustParams()))
        self.model.set_layers((*self.model.layers, layer), f"Apply {layer.name}")
        stack.endMacro()
        self.model.message.emit(f"Applied {layer.name} to {layer.info.get('selected', 0):,} Gaussians")
        return layer

    def reset(self) -> None:
        """Reset pressed (the panel is at identity already): one undo item back to no adjustment."""
        self._pending = None
        self._flush_timer.stop()
        if self._step.is_identity:
            self._show(AdjustParams())
            return
        self.model.undo_stack.push(AdjustStepCommand("Reset adjustment", self._show, self._step, AdjustParams()))

    def hide_selection(self) -> EditLayer | None:
        """Delete: append a layer hiding the selected Gaussians (weights >= 0.5)."""
        m = self.model
        if not self.has_selection():
            self._update_status()
            m.message.emit(NO_SELECTION_TEXT)
            return None
        current = apply_deltas(m.avatar.gaussians, list(m.layers))
        layer = adjust_layer(current, m.selection, AdjustParams(hide=True), name="hide selection")
        if layer.hidden.numel() == 0:
            m.message.emit("Nothing to hide: the selection is too faint (weights below 0.5)")
            return None
        m.set_layers((*m.layers, layer), "Hide selection")
        return layer

    # ---- internals ---------------------------------------------------------------------------
    def _flush(self) -> None:
        """Turn the newest pending value into the model's preview layer."""
        self._flush_timer.stop()
        params, self._pending = self._pending, None
        if params is not None and self.has_selection():
            self.model.set_preview_layer(self._layer_for(params))

    def _show(self, params: AdjustParams) -> None:
        """Make params the pending adjustment: preview layer in the model, values in the panel (undo/redo)."""
        self._pending = None
        self._flush_timer.stop()
        self._step = params
        self.model.set_preview_layer(self._layer_for(params) if self.has_selection() else None)
        self.panel.set_params(params)

    def _layer_for(self, params: AdjustParams) -> EditLayer | None:
        return None if params.is_identity else self._preview_helper(params).layer(params)

    def _preview_helper(self, params: AdjustParams) -> AdjustPreview:
        m = self.model
        frames = self._reference_frames() if params.changes_geometry else None
        helper = self._helper
        if helper is None or (frames is not None and helper.frames is None):
            helper = AdjustPreview(m.avatar.gaussians, list(m.layers), m.selection, frames)
            self._helper = helper
        return helper

    def _reference_frames(self) -> TriangleFrames:
        avatar = self.model.avatar
        if self._frames is None or self._frames[0] is not avatar:
            self._frames = (avatar, reference_frames(avatar))
        return self._frames[1]

    def _on_context_changed(self) -> None:
        """Layers or selection changed: the preview follows the new selection on top of the new layers."""
        self._helper = None
        self._update_status()
        if self._step.is_identity and self.model.preview_layer is None:
            return
        layer = self._layer_for(self._step) if self.has_selection() else None
        self.model.set_preview_layer(layer)

    def _on_avatar(self) -> None:
        self._helper, self._frames, self._pending = None, None, None
        self._step = AdjustParams()
        self.panel.set_params(self._step)
        self._update_status()

    def _update_status(self) -> None:
        selected = self.has_selection()
        self.panel.setEnabled(selected)
        if self.status is None:
            return
        if not selected:
            self.status.setText(NO_SELECTION_TEXT)
            return
        sel = self.model.selection
        count = int((sel > 0).sum())
        soft = bool(((sel > 0) & (sel < 1)).any())
        self.status.setText(f"{count:,} Gaussians selected{' (soft mask)' if soft else ''}")


def install_adjust(window: object) -> AdjustController:
    """Dock the Adjust panel in a MainWindow and add Edit > Hide selection (Delete)."""
    from app.main_window import PanelSpec

    panel = AdjustPanel()
    status = QLabel()
    status.setWordWrap(True)
    status.setObjectName("adjustStatus")
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.addWidget(status)
    layout.addWidget(panel)
    layout.addStretch(1)
    controller = AdjustController(window.model, panel, status, parent=window)
    hide = QAction("&Hide selection", window)
    hide.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
    hide.triggered.connect(controller.hide_selection)
    window.edit_menu.addAction(hide)
    return window.add_feature("adjust", controller, PanelSpec("adjust", "Adjust", lambda w: box))

