"""The Adjust panel: sliders and a colour picker for direct adjustments of the selected Gaussians.

The panel only edits an `AdjustParams` value and emits signals; the app wires them:
- `preview_requested(AdjustParams)`: every slider/picker change (also while dragging). The app feeds
  it to an `engine.edit.adjust.AdjustPreview` (built when the selection or layers change) and
  redraws the viewport; the newest value wins (drop stale frames).
- `drag_finished(AdjustParams)`: a slider was released (or a non-drag control changed). One drag is
  one undo step: the app pushes (or merges into) one QUndoCommand per `drag_finished`, never per
  `preview_requested`.
- `apply_requested(AdjustParams)`: Apply. The app commits `AdjustPreview.layer(params)` as an edit
  layer through the QUndoStack and then calls `reset()`.
- `reset_requested()`: Reset. The panel is back at the identity; the app drops the preview.
- `delete_requested()`: Delete / Backspace in the panel: hide the selection (an "adjust" layer with
  hide=True). Undo (Ctrl+Z) is the app's QUndoStack action, not the panel's.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent
from PySide6.QtWidgets import (
    QColorDialog,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine.edit.adjust import AdjustParams

SLIDER_STEPS = 200
"""Integer steps of each slider over its range."""

SLIDERS: tuple[tuple[str, str, float, float, str], ...] = (
    ("strength", "Tint strength", 0.0, 1.0, "How far the colours move toward the tint colour"),
    ("brightness", "Brightness", -1.0, 1.0, "Lighter or darker"),
    ("contrast", "Contrast", -1.0, 1.0, "More or less contrast around the selection's mean lightness"),
    ("saturation", "Saturation", -1.0, 1.0, "More or less colourful (-1: grey)"),
    ("temperature", "Temperature", -1.0, 1.0, "Warmer (toward orange) or cooler (toward blue)"),
    ("black_point", "Black point", 0.0, 0.95, "Levels: this lightness becomes black"),
    ("white_point", "White point", 0.05, 1.0, "Levels: this lightness becomes white"),
    ("opacity", "Opacity", 0.0, 2.0, "Opacity factor of the selected Gaussians (0: invisible)"),
    ("scale", "Scale", 0.5, 2.0, "Size factor of the selected Gaussians"),
)
"""(AdjustParams field, label, minimum, maximum, tooltip) of each slider."""


class AdjustPanel(QWidget):
    """Sliders, a tint colour picker, a small transform and Apply / Reset for one adjustment."""

    preview_requested = Signal(object)  # AdjustParams, emitted on every change (live preview)
    drag_finished = Signal(object)  # AdjustParams, emitted once per finished drag (one undo step)
    apply_requested = Signal(object)  # AdjustParams, Apply pressed
    reset_requested = Signal()  # Reset pressed
    delete_requested = Signal()  # Delete / Backspace: hide the selection

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._params = AdjustParams()
        self.sliders: dict[str, QSlider] = {}
        self._labels: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # fields go under their label when narrow
        self.colour_button = QPushButton("Tint colour…", toolTip="Pick the colour the selection is tinted toward")
        self.colour_button.clicked.connect(self._pick_colour)
        form.addRow("Tint", self.colour_button)
        for name, text, lo, hi, tip in SLIDERS:
            form.addRow(text, self._make_slider(name, lo, hi))
            self.sliders[name].setToolTip(tip)
        self.offset_boxes = [self._spin(-50.0, 50.0, 0.5, " mm", f"Move along {a} (millimetres)") for a in "xyz"]
        self.rotation_boxes = [self._spin(-90.0, 90.0, 1.0, "°", f"Rotate about {a} (degrees)") for a in "xyz"]
        form.addRow("Move (x, y, z)", self._row(self.offset_boxes))
        form.addRow("Rotate (x, y, z)", self._row(self.rotation_boxes))
        self.apply_button = QPushButton("Apply", toolTip="Keep the adjustment as a new layer (undoable)")
        self.reset_button = QPushButton("Reset", toolTip="Back to no adjustment")
        self.apply_button.clicked.connect(lambda: self.apply_requested.emit(self._params))
        self.reset_button.clicked.connect(self.reset)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reset_button)
        buttons.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        self._sync()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Delete / Backspace anywhere in the panel (keys its controls leave unused) hide the selection."""
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_requested.emit()
            event.accept()
            return
        super().keyPressEvent(event)

    @property
    def params(self) -> AdjustParams:
        """The adjustment the controls show."""
        return self._params

    def set_params(self, params: AdjustParams) -> None:
        """Show params (no signals: the caller already knows them)."""
        self._params = params
        self._sync()

    def reset(self) -> None:
        """Back to the identity adjustment; emits reset_requested."""
        self.set_params(AdjustParams())
        self.reset_requested.emit()

    def set_tint_colour(self, colour: QColor) -> None:
        """Take a tint colour (from the picker), raise the strength to 0.5 if it was 0, and preview."""
        rgb = (colour.redF(), colour.greenF(), colour.blueF())
        strength = self._params.strength or 0.5
        self._change(replace(self._params, tint=rgb, strength=strength), finished=True)

    # --- internals ---

    def _make_slider(self, name: str, lo: float, hi: float) -> QWidget:
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(0, SLIDER_STEPS)
        slider.setObjectName(name)
        slider.valueChanged.connect(lambda v, n=name, a=lo, b=hi: self._slider_moved(n, a + (b - a) * v / SLIDER_STEPS))
        slider.sliderReleased.connect(lambda: self.drag_finished.emit(self._params))
        label = QLabel()
        label.setMinimumWidth(40)
        self.sliders[name], self._labels[name] = slider, label
        return self._row([slider, label])

    @staticmethod
    def _spin(lo: float, hi: float, step: float, suffix: str, tip: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox(toolTip=tip)
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setSuffix(suffix)
        return box

    def _row(self, widgets: list[QWidget]) -> QWidget:
        row = QWidget()
        lay = QHBoxLayout(row)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in widgets:
            lay.addWidget(w)
            if isinstance(w, QDoubleSpinBox):
                w.valueChanged.connect(self._transform_changed)
        return row

    def _slider_moved(self, name: str, value: float) -> None:
        if name == "black_point":
            value = min(value, self._params.white_point - 0.05)
        elif name == "white_point":
            value = max(value, self._params.black_point + 0.05)
        slider = self.sliders[name]
        self._change(replace(self._params, **{name: value}), finished=not slider.isSliderDown())

    def _transform_changed(self) -> None:
        offset = tuple(box.value() / 1000.0 for box in self.offset_boxes)
        rotation = tuple(box.value() for box in self.rotation_boxes)
        self._change(replace(self._params, offset=offset, rotation=rotation), finished=True)

    def _change(self, params: AdjustParams, finished: bool) -> None:
        """Adopt params, preview them, and close an undo step unless a drag is still going on."""
        self._params = params
        self._sync()
        self.preview_requested.emit(params)
        if finished:
            self.drag_finished.emit(params)

    def _pick_colour(self) -> None:
        r, g, b = self._params.tint
        colour = QColorDialog.getColor(QColor.fromRgbF(r, g, b), self, "Tint colour")
        if colour.isValid():
            self.set_tint_colour(colour)

    def _sync(self) -> None:
        """Controls <- params, with their signals blocked so nothing loops."""
        for name, _text, lo, hi, _tip in SLIDERS:
            value = getattr(self._params, name)
            slider = self.sliders[name]
            slider.blockSignals(True)
            slider.setValue(round((value - lo) / (hi - lo) * SLIDER_STEPS))
            slider.blockSignals(False)
            self._labels[name].setText(f"{value:.2f}")
        for boxes, values, k in ((self.offset_boxes, self._params.offset, 1000.0),
                                 (self.rotation_boxes, self._params.rotation, 1.0)):
            for box, v in zip(boxes, values):
                box.blockSignals(True)
                box.setValue(v * k)
                box.blockSignals(False)
        r, g, b = (round(255 * c) for c in self._params.tint)
        self.colour_button.setStyleSheet(f"background-color: rgb({r}, {g}, {b});")
