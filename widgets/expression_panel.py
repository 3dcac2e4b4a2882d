"""Sliders for expression, jaw, neck, head pose and eye gaze, each with a numeric entry beside it.

One row per named expression of the head (a FLAME model's are carried over from the demo head's; a
FLAME model without them shows expr_0..expr_9), then jaw, neck, head and eyes. A FLAME head with named
expressions also has its raw coefficients in a folded "Advanced" group. A slider drag writes the model on every move (the render thread
drops stale frames) and forms one undo item from press to release. Reset, Randomise and a preset
bar sit on top. All values live in the model's Pose; rows only mirror it (signals blocked while
syncing).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QDoubleSpinBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QScrollArea, QSlider, QVBoxLayout, QWidget)

from engine.avatar.posing import Pose
from widgets.presets import PresetBar
from widgets.session_view import SessionView

SLIDER_STEPS = 1000
ADVANCED_COEFFICIENTS = 10  # raw FLAME expression coefficients shown in the Advanced group


@dataclass(frozen=True)
class ParamSpec:
    """One slider row."""

    key: str  # "expr:<name>" or a Pose field (jaw, yaw, pitch, roll, neck_yaw, neck_pitch, gaze_x, gaze_y)
    label: str  # text shown left of the slider
    lo: float  # slider range in display units
    hi: float
    decimals: int = 2  # digits in the numeric entry
    to_pose: float = 1.0  # pose value = display value * to_pose (jaw: degrees shown, radians stored)


POSE_GROUPS: tuple[tuple[str, tuple[ParamSpec, ...]], ...] = (
    ("Jaw and neck", (
        ParamSpec("jaw", "Jaw open (°)", -5.0, 35.0, 1, math.pi / 180),
        ParamSpec("neck_yaw", "Neck turn (°)", -60.0, 60.0, 1),
        ParamSpec("neck_pitch", "Neck nod (°)", -40.0, 40.0, 1),
    )),
    ("Head", (
        ParamSpec("yaw", "Yaw (°)", -90.0, 90.0, 1),
        ParamSpec("pitch", "Pitch (°)", -45.0, 45.0, 1),
        ParamSpec("roll", "Roll (°)", -45.0, 45.0, 1),
    )),
    ("Eyes", (
        ParamSpec("gaze_x", "Gaze left/right (°)", -30.0, 30.0, 1),
        ParamSpec("gaze_y", "Gaze up/down (°)", -25.0, 25.0, 1),
    )),
)


def expression_specs(names: tuple[str, ...], named: bool) -> tuple[ParamSpec, ...]:
    """Rows for the head's expressions: named blendshapes 0..1 (a little beyond), FLAME coefficients ±3."""
    if named:
        return tuple(ParamSpec(f"expr:{n}", n.replace("_", " ").capitalize(), -0.5, 1.5) for n in names)
    return tuple(ParamSpec(f"expr:{n}", f"Expression {n[5:]}", -3.0, 3.0) for n in names)


def pose_value(pose: Pose, spec: ParamSpec) -> float:
    """The display value of spec's row for a pose."""
    if spec.key.startswith("expr:"):
        return float(pose.expressions.get(spec.key[5:], 0.0))
    return float(getattr(pose, spec.key)) / spec.to_pose


class ParamRow(QObject):
    """A label, a slider and a spin box for one value; emits edited(value, dragging) on user changes."""

    edited = Signal(float, bool)
    pressed = Signal()

    def __init__(self, spec: ParamSpec, grid: QGridLayout, row: int) -> None:
        super().__init__(grid)
        self.spec = spec
        self.label = QLabel(spec.label)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setObjectName(f"slider_{spec.key}")
        self.spin = QDoubleSpinBox()
        self.spin.setRange(spec.lo, spec.hi)
        self.spin.setDecimals(spec.decimals)
        self.spin.setSingleStep(10 ** -spec.decimals * (10 if spec.decimals <= 1 else 5))
        self.spin.setKeyboardTracking(False)
        self.spin.setFixedWidth(64)
        self.spin.setObjectName(f"spin_{spec.key}")
        tip = f"{spec.label}: drag, or type a value (one drag is one undo step)"
        self.slider.setToolTip(tip)
        self.spin.setToolTip(tip)
        grid.addWidget(self.label, row, 0)
        grid.addWidget(self.slider, row, 1)
        grid.addWidget(self.spin, row, 2)
        self.slider.valueChanged.connect(lambda v: self.edited.emit(self.from_slider(v), self.slider.isSliderDown()))
        self.slider.sliderPressed.connect(self.pressed)
        self.spin.valueChanged.connect(lambda v: self.edited.emit(float(v), False))

    def to_slider(self, value: float) -> int:
        s = self.spec
        return round((min(s.hi, max(s.lo, value)) - s.lo) / (s.hi - s.lo) * SLIDER_STEPS)

    def from_slider(self, position: int) -> float:
        s = self.spec
        return round(s.lo + (s.hi - s.lo) * position / SLIDER_STEPS, s.decimals + 1)

    def set_value(self, value: float) -> None:
        """Show value without emitting edited."""
        for w, v in ((self.slider, self.to_slider(value)), (self.spin, value)):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)


class ExpressionPanel(QWidget):
    """Expression and pose sliders over the session model (app.session.SessionModel)."""

    def __init__(self, model: SessionView, presets_path: str | os.PathLike, parent: QWidget | None = None,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self._rng = rng or np.random.default_rng()
        self._stroke = 0  # counts slider presses: one press-to-release drag is one undo item
        self.rows: dict[str, ParamRow] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        buttons = QHBoxLayout()
        reset = QPushButton("Reset", toolTip="Neutral expression and pose")
        randomise = QPushButton("Randomise", toolTip="A random expression and pose")
        reset.clicked.connect(lambda: self.model.set_pose(Pose(), text="Reset pose"))
        randomise.clicked.connect(self.randomise)
        buttons.addWidget(reset)
        buttons.addWidget(randomise)
        outer.addLayout(buttons)
        self.presets = PresetBar(model, presets_path)
        outer.addWidget(self.presets)
        scroll = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
        self._body = QWidget()
        self._body_layout = QVBoxLayout(self._body)
        self._body_layout.setContentsMargins(0, 0, 0, 0)
        scroll.setWidget(self._body)
        outer.addWidget(scroll, 1)
        self._expr_box = QGroupBox("Expression")
        self._expr_grid = QGridLayout(self._expr_box)
        self._body_layout.addWidget(self._expr_box)
        self.advanced = QGroupBox("Advanced: FLAME expression coefficients", checkable=True, checked=False)
        self.advanced.setObjectName("advanced_expressions")
        advanced_body = QWidget()
        self._advanced_grid = QGridLayout(advanced_body)
        QVBoxLayout(self.advanced).addWidget(advanced_body)
        advanced_body.setVisible(False)
        self.advanced.toggled.connect(advanced_body.setVisible)
        self._body_layout.addWidget(self.advanced)
        for title, specs in POSE_GROUPS:
            box = QGroupBox(title)
            grid = QGridLayout(box)
            for i, spec in enumerate(specs):
                self._add_row(spec, grid, i)
            self._body_layout.addWidget(box)
        self._body_layout.addStretch(1)
        model.avatarChanged.connect(self._rebuild_expressions)
        model.poseChanged.connect(self.sync)
        self._rebuild_expressions()

    def _add_row(self, spec: ParamSpec, grid: QGridLayout, index: int) -> None:
        row = ParamRow(spec, grid, index)
        row.pressed.connect(self._new_stroke)
        row.edited.connect(self._writer(spec))
        self.rows[spec.key] = row

    def _new_stroke(self) -> None:
        self._stroke += 1

    def _writer(self, spec: ParamSpec) -> Callable[[float, bool], None]:
        def write(value: float, dragging: bool) -> None:
            if self.model.avatar is None:
                return
            merge = f"{spec.key}:{self._stroke}" if dragging else None
            if spec.key.startswith("expr:"):
                self.model.set_expression(spec.key[5:], value, merge=merge)
            else:
                self.model.set_pose_values(merge=merge, **{spec.key: value * spec.to_pose})
        return write

    def _rebuild_expressions(self) -> None:
        for key in [k for k in self.rows if k.startswith("expr:")]:
            row = self.rows.pop(key)
            for w in (row.label, row.slider, row.spin):
                row.parent().removeWidget(w)
                w.deleteLater()
            row.deleteLater()
        avatar = self.model.avatar
        names = self.model.expression_names
        named = avatar is not None and bool(avatar.head.expression_names)
        self._expr_box.setTitle("Expression" if named or not names else "Expression (FLAME coefficients)")
        for i, spec in enumerate(expression_specs(names, named)):
            self._add_row(spec, self._expr_grid, i)
        raw = avatar is not None and named and avatar.head.is_flame  # names are coefficient mixes there
        coefficients = tuple(f"expr_{i}" for i in range(min(ADVANCED_COEFFICIENTS, avatar.head.n_expr))) if raw else ()
        for i, spec in enumerate(expression_specs(coefficients, False)):
            self._add_row(spec, self._advanced_grid, i)
        self.advanced.setVisible(raw)
        self.setEnabled(avatar is not None)
        self.sync()

    def sync(self) -> None:
        """Mirror the model's pose in every row."""
        pose = self.model.pose
        for row in self.rows.values():
            row.set_value(pose_value(pose, row.spec))

    def randomise(self) -> None:
        """A plausible random expression and pose, as one undo item."""
        if self.model.avatar is None:
            return
        rng = self._rng
        named = bool(self.model.avatar.head.expression_names)
        exprs: dict[str, float] = {}
        for name in self.model.expression_names:
            if rng.random() < 0.4:
                exprs[name] = round(float(rng.uniform(0.1, 0.9) if named else rng.normal(0, 1.0)), 2)
        angles = dict(jaw=math.radians(rng.uniform(0, 18)), yaw=rng.uniform(-25, 25), pitch=rng.uniform(-12, 12),
                      roll=rng.uniform(-8, 8), gaze_x=rng.uniform(-15, 15), gaze_y=rng.uniform(-10, 10))
        pose = replace(Pose(), expressions=exprs, **{k: round(float(v), 3) for k, v in angles.items()})
        self.model.set_pose(pose, text="Randomise pose")
