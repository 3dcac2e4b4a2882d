"""Prompt panel: prompt box with history, backend picker, Refine button, and the edit plan as an
editable form. It runs no refinement: it asks for it (`refine_requested`) and shows what it is
given (`show_plan`, `show_error`, `show_refusal`: why no plan was made, with prompts to try as links that
refine at a click). Every form edit makes a new validated EditPlan (`plan_edited`);
the form only ever shows the current plan (model/view: no state of its own that could disagree).
"""

from __future__ import annotations

import html
from typing import Any, Sequence

from PySide6.QtCore import QSignalBlocker, Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox, QColorDialog, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout,
    QLabel, QLineEdit, QPushButton, QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget,
)

from engine.head.components import COMPONENTS
from engine.prompting.plan import EXPRESSION_NAMES, RANGES, EditKind, EditPlan, PlanError, sanitize_plan

BACKEND_NAMES: tuple[str, ...] = ("rules", "local", "http")
FLOAT_FIELDS: tuple[tuple[str, str, int], ...] = (
    # field, label, slider steps per unit
    ("intensity", "Intensity", 100), ("guidance_scale", "Guidance scale", 10),
    ("image_guidance_scale", "Image guidance", 100), ("strength", "Strength", 100),
)
INT_FIELDS: tuple[tuple[str, str], ...] = (("steps", "Steps"), ("keyframes", "Keyframes"),
                                           ("iterations", "Iterations"))
HISTORY_LIMIT = 50
COLUMNS = 3  # check boxes per row (components, edit kinds): fits a 380 px column
VALUE_TIPS: dict[str, str] = {
    "intensity": "How strong the edit is (0: none, 1: full)",
    "guidance_scale": "How closely the diffusion editor follows the prompt (higher: closer, less natural)",
    "image_guidance_scale": "How closely the edited image keeps the rendered one (InstructPix2Pix)",
    "strength": "How much of the image the editor may repaint (img2img / inpainting)",
    "steps": "Diffusion steps per edited image",
    "keyframes": "Training views edited (then optimised into the avatar); more: steadier, slower",
    "iterations": "Optimisation steps that carry the edited images into the selected Gaussians",
}
KIND_TIPS: dict[str, str] = {
    "colour": "Change colour (the target colour below)", "texture": "Change texture or material",
    "accessory": "Add or remove an accessory", "expression": "Change the expression (deltas below)",
    "shape": "Change shape or size",
}


class PromptPanel(QWidget):
    """Prompt entry and editable edit-plan form."""

    refine_requested = Signal(str, str)  # prompt, backend name
    cancel_requested = Signal()  # stop the refinement that runs (Cancel is enabled only then: set_refining)
    plan_edited = Signal(object)  # EditPlan after a form edit
    apply_expression_requested = Signal(dict)  # expression deltas by name

    def __init__(self, parent: QWidget | None = None, backends: Sequence[str] = BACKEND_NAMES) -> None:
        super().__init__(parent)
        self._plan: EditPlan | None = None
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_prompt_row(backends))
        self.backend_note = QLabel("")  # which refiner runs and why (set from the model settings)
        self.backend_note.setWordWrap(True)
        layout.addWidget(self.backend_note)
        # what the refiner said (why no plan, what was repaired) and prompts to try: right under the prompt
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        self.message_label.setObjectName("promptMessages")
        layout.addWidget(self.message_label)
        self.suggestion_label = QLabel("")
        self.suggestion_label.setWordWrap(True)
        self.suggestion_label.setObjectName("promptSuggestions")
        self.suggestion_label.setTextFormat(Qt.TextFormat.RichText)
        self.suggestion_label.linkActivated.connect(self.use_suggestion)
        layout.addWidget(self.suggestion_label)
        _say(self.message_label, "")
        _say(self.suggestion_label, "")
        self.refined_edit = QLineEdit()
        self.negative_edit = QLineEdit()
        self.refined_edit.setToolTip("The prompt the image editor is given (edit it to steer the edit)")
        self.negative_edit.setToolTip("What the image editor should avoid")
        self.refined_edit.editingFinished.connect(lambda: self._edit("refined_prompt", self.refined_edit.text()))
        self.negative_edit.editingFinished.connect(lambda: self._edit("negative_prompt", self.negative_edit.text()))
        texts = QFormLayout()
        texts.addRow("Refined prompt", self.refined_edit)
        texts.addRow("Negative prompt", self.negative_edit)
        layout.addLayout(texts)
        layout.addWidget(self._build_components())
        layout.addWidget(self._build_kinds_colour())
        layout.addWidget(self._build_values())
        layout.addWidget(self._build_expression())
        layout.addStretch(1)
        self._set_form_enabled(False)

    # ---- construction -------------------------------------------------------------------------
    def _build_prompt_row(self, backends: Sequence[str]) -> QHBoxLayout:
        row = QHBoxLayout()
        self.prompt_box = QComboBox()
        self.prompt_box.setEditable(True)
        self.prompt_box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.prompt_box.setMaxCount(HISTORY_LIMIT)
        self.prompt_box.lineEdit().setPlaceholderText('e.g. "give her bright red lipstick and make her smile"')
        self.prompt_box.lineEdit().returnPressed.connect(self.request_refine)
        self.prompt_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.prompt_box.setMinimumContentsLength(12)
        self.prompt_box.setToolTip("Say what to change, in your words; Enter or Refine turns it into an edit plan.\n"
                                   "Earlier prompts are in the list.")
        self.backend_box = QComboBox()
        self.backend_box.addItems(list(backends))
        self.backend_box.setToolTip("Who refines the prompt: rules (offline), a local language model, or an\n"
                                    "OpenAI-compatible server (Edit → Models…)")
        self.refine_button = QPushButton("Refine")
        self.refine_button.setToolTip("Turn the prompt into an edit plan (shown below, editable); then Edit runs it")
        self.refine_button.clicked.connect(self.request_refine)
        self.cancel_button = QPushButton("Cancel")  # takes Refine's place while a refinement runs
        self.cancel_button.setToolTip("Stop the refinement that runs (a server that does not answer is let go)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        row.addWidget(self.prompt_box, 1)
        row.addWidget(self.backend_box)
        row.addWidget(self.refine_button)
        row.addWidget(self.cancel_button)
        return row

    def set_refining(self, running: bool) -> None:
        """Refine is offered when nothing runs, Cancel in its place while a refinement runs (one button's width)."""
        self.refine_button.setEnabled(not running)
        self.refine_button.setVisible(not running)
        self.cancel_button.setEnabled(running)
        self.cancel_button.setVisible(running)

    def _build_components(self) -> QGroupBox:
        box = QGroupBox("Components")
        grid = QGridLayout(box)
        self.component_checks: dict[str, QCheckBox] = {}
        box.setToolTip("The facial components the edit changes (ticking one also selects it)")
        for i, name in enumerate(COMPONENTS):
            check = QCheckBox(name.replace("_", " "))
            check.setToolTip(f"Edit the {name.replace('_', ' ')}")
            check.toggled.connect(lambda on, n=name: self._toggle_component(n, on))
            grid.addWidget(check, i // COLUMNS, i % COLUMNS)
            self.component_checks[name] = check
        return box

    def _build_kinds_colour(self) -> QGroupBox:
        box = QGroupBox("Edit")
        grid = QGridLayout(box)
        self.kind_checks: dict[EditKind, QCheckBox] = {}
        for i, kind in enumerate(EditKind):
            check = QCheckBox(kind.value)
            check.setToolTip(KIND_TIPS.get(kind.value, ""))
            check.toggled.connect(lambda on, k=kind: self._toggle_kind(k, on))
            grid.addWidget(check, i // COLUMNS, i % COLUMNS)
            self.kind_checks[kind] = check
        self.colour_button = QPushButton("no colour")
        self.colour_button.setToolTip("The target colour of a colour edit (click to pick one)")
        self.colour_button.clicked.connect(self._pick_colour)
        self.clear_colour_button = QToolButton(text="×")
        self.clear_colour_button.setToolTip("Remove the target colour")
        self.clear_colour_button.clicked.connect(lambda: self._edit("colour", None))
        row = QHBoxLayout()
        row.addWidget(QLabel("Colour"))
        row.addWidget(self.colour_button, 1)
        row.addWidget(self.clear_colour_button)
        grid.addLayout(row, grid.rowCount(), 0, 1, COLUMNS)
        return box

    def _build_values(self) -> QGroupBox:
        box = QGroupBox("Diffusion and optimisation")
        form = QFormLayout(box)
        self.sliders: dict[str, QSlider] = {}
        self.spins: dict[str, QDoubleSpinBox | QSpinBox] = {}
        for name, label, scale in FLOAT_FIELDS:
            lo, hi = RANGES[name]
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(int(round(lo * scale)), int(round(hi * scale)))
            spin = QDoubleSpinBox()
            spin.setRange(lo, hi)
            spin.setDecimals(2)
            spin.setSingleStep(1.0 / scale if scale >= 100 else 0.1)
            slider.setToolTip(VALUE_TIPS[name])
            spin.setToolTip(VALUE_TIPS[name])
            slider.valueChanged.connect(lambda v, n=name, s=scale: self._edit(n, v / s))
            spin.valueChanged.connect(lambda v, n=name: self._edit(n, v))
            row = QHBoxLayout()
            row.addWidget(slider, 1)
            row.addWidget(spin)
            form.addRow(label, row)
            self.sliders[name], self.spins[name] = slider, spin
        for name, label in INT_FIELDS:
            lo, hi = RANGES[name]
            ispin = QSpinBox()
            ispin.setRange(int(lo), int(hi))
            ispin.setToolTip(VALUE_TIPS[name])
            ispin.valueChanged.connect(lambda v, n=name: self._edit(n, v))
            form.addRow(label, ispin)
            self.spins[name] = ispin
        return box

    def _build_expression(self) -> QGroupBox:
        box = QGroupBox("Expression deltas")
        box.setToolTip("How far the edit moves each named expression (expression edits)")
        outer = QVBoxLayout(box)
        self._expr_grid = QGridLayout()
        outer.addLayout(self._expr_grid)
        self.expression_spins: dict[str, QDoubleSpinBox] = {}
        for name in EXPRESSION_NAMES:
            self._add_expression_row(name)
        self.apply_expression_button = QPushButton("Apply expression")
        self.apply_expression_button.setToolTip("Set the avatar's expression now (expression-only plans)")
        self.apply_expression_button.clicked.connect(self._apply_expression)
        outer.addWidget(self.apply_expression_button)
        return box

    def _add_expression_row(self, name: str) -> QDoubleSpinBox:
        lo, hi = (-1.0, 1.0) if name in EXPRESSION_NAMES else (-3.0, 3.0)
        spin = QDoubleSpinBox()
        spin.setRange(lo, hi)
        spin.setSingleStep(0.05)
        spin.setDecimals(2)
        spin.valueChanged.connect(lambda v, n=name: self._edit_expression(n, v))
        spin.setToolTip(f"Change of {name} the plan applies")
        i = len(self.expression_spins)
        self._expr_grid.addWidget(QLabel(name), i // 2, 2 * (i % 2))
        self._expr_grid.addWidget(spin, i // 2, 2 * (i % 2) + 1)
        self.expression_spins[name] = spin
        return spin

    # ---- public slots ------------------------------------------------------------------------
    @property
    def plan(self) -> EditPlan | None:
        """The plan the form shows."""
        return self._plan

    @Slot()
    def request_refine(self) -> None:
        """Emit refine_requested with the typed prompt and the chosen backend; remember the prompt."""
        text = self.prompt_box.currentText().strip()
        if not text:
            self.show_error("Type a prompt first.")
            return
        index = self.prompt_box.findText(text)
        if index >= 0:
            self.prompt_box.removeItem(index)
        self.prompt_box.insertItem(0, text)
        self.prompt_box.setCurrentIndex(0)
        self.refine_requested.emit(text, self.backend_box.currentText())

    @Slot(object)
    @Slot(object, object)
    def show_plan(self, plan: Any, notes: Sequence[str] = ()) -> None:
        """Show a plan (an EditPlan, or loose data that is validated and clamped here) and its notes."""
        messages = list(notes)
        if not isinstance(plan, EditPlan):
            try:
                data = plan.model_dump(mode="json") if hasattr(plan, "model_dump") else plan
                plan, repaired = sanitize_plan(data)
            except (PlanError, TypeError, AttributeError) as exc:
                self.show_error(f"Plan rejected: {exc}")
                return
            messages += repaired
        self._plan = plan
        self._sync()
        self._show_messages(messages)

    def set_backend_note(self, text: str) -> None:
        """Say which refiner backend will run and why (e.g. "Refiner: rules: no prompt refiner model set")."""
        self.backend_note.setText(text)

    @Slot(str)
    def show_error(self, message: str) -> None:
        """Show an error line (the plan shown stays as it was)."""
        self.message_label.setStyleSheet("color: #b00020;")
        _say(self.message_label, message)
        _say(self.suggestion_label, "")

    def show_refusal(self, message: str, suggestions: Sequence[str] = ()) -> None:
        """Say why the prompt gave no plan, as a normal message, with prompts to try as links (the plan shown
        stays as it was)."""
        self.message_label.setStyleSheet("")
        _say(self.message_label, message)
        links = " · ".join(f'<a href="{html.escape(s, quote=True)}">{html.escape(s)}</a>' for s in suggestions)
        _say(self.suggestion_label, f"Try: {links}" if links else "")

    @Slot(str)
    def use_suggestion(self, prompt: str) -> None:
        """Put a suggested prompt in the prompt box and refine it."""
        self.prompt_box.setEditText(prompt)
        self.request_refine()

    def set_colour(self, colour: QColor) -> None:
        """Set the plan's target colour (what the colour picker does)."""
        if colour.isValid():
            self._edit("colour", [colour.red(), colour.green(), colour.blue()])

    # ---- form -> plan --------------------------------------------------------------------------
    def _edit(self, field: str, value: Any) -> None:
        if self._plan is None:
            return
        data = self._plan.model_dump(mode="json")
        data[field] = value
        self._commit(data)

    def _commit(self, data: dict[str, Any]) -> None:
        assert self._plan is not None
        try:
            plan, notes = sanitize_plan(data, prompt=self._plan.prompt)
        except PlanError as exc:
            self._sync()  # show the plan as it still is
            self.show_error(f"Edit refused: {exc}")
            return
        if plan == self._plan:
            return
        self._plan = plan
        self._sync()
        self._show_messages(notes)
        self.plan_edited.emit(plan)

    def _toggle_component(self, name: str, on: bool) -> None:
        if self._plan is None:
            return
        names = [c for c in self._plan.components if c != name] + ([name] if on else [])
        self._edit("components", names)

    def _toggle_kind(self, kind: EditKind, on: bool) -> None:
        if self._plan is None:
            return
        kinds = [k.value for k in self._plan.kinds if k is not kind] + ([kind.value] if on else [])
        self._edit("kinds", kinds)

    def _edit_expression(self, name: str, value: float) -> None:
        if self._plan is None:
            return
        deltas = dict(self._plan.expression)
        if value == 0.0:
            deltas.pop(name, None)
        else:
            deltas[name] = value
        self._edit("expression", deltas)

    def _pick_colour(self) -> None:
        if self._plan is None:
            return
        start = QColor(*self._plan.colour) if self._plan.colour else QColor(255, 255, 255)
        self.set_colour(QColorDialog.getColor(start, self, "Target colour"))

    def _apply_expression(self) -> None:
        if self._plan is not None and self._plan.expression:
            self.apply_expression_requested.emit(dict(self._plan.expression))

    # ---- plan -> form --------------------------------------------------------------------------
    def _set_form_enabled(self, on: bool) -> None:
        for w in (self.refined_edit, self.negative_edit, self.colour_button, self.clear_colour_button,
                  *self.component_checks.values(), *self.kind_checks.values(), *self.sliders.values(),
                  *self.spins.values(), *self.expression_spins.values()):
            w.setEnabled(on)
        self.apply_expression_button.setEnabled(on and self._plan is not None and self._plan.is_expression_only)

    def _sync(self) -> None:
        """Write the current plan into every widget, with their signals blocked."""
        plan = self._plan
        if plan is None:
            return
        for name in plan.expression:
            if name not in self.expression_spins:
                self._add_expression_row(name)
        values: list[tuple[QWidget, Any]] = [
            (self.refined_edit, plan.refined_prompt), (self.negative_edit, plan.negative_prompt)]
        values += [(c, n in plan.components) for n, c in self.component_checks.items()]
        values += [(c, k in plan.kinds) for k, c in self.kind_checks.items()]
        values += [(s, plan.expression.get(n, 0.0)) for n, s in self.expression_spins.items()]
        values += [(self.spins[n], getattr(plan, n)) for n in self.spins]
        values += [(self.sliders[n], int(round(getattr(plan, n) * s))) for n, _, s in FLOAT_FIELDS]
        for widget, value in values:
            with QSignalBlocker(widget):
                if isinstance(widget, QLineEdit):
                    widget.setText(value)
                elif isinstance(widget, QCheckBox):
                    widget.setChecked(value)
                else:
                    widget.setValue(value)
        if plan.colour is None:
            self.colour_button.setText("no colour")
            self.colour_button.setStyleSheet("")
        else:
            r, g, b = plan.colour
            self.colour_button.setText(plan.colour_name or f"#{r:02x}{g:02x}{b:02x}")
            fg = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"
            self.colour_button.setStyleSheet(f"background-color: rgb({r},{g},{b}); color: {fg};")
        self._set_form_enabled(True)

    def _show_messages(self, messages: Sequence[str]) -> None:
        self.message_label.setStyleSheet("color: #8a5a00;" if messages else "")
        _say(self.message_label, "\n".join(messages))
        _say(self.suggestion_label, "")


def _say(label: QLabel, text: str) -> None:
    """Show text in a message label, which takes no room while it has none."""
    label.setText(text)
    label.setVisible(bool(text))
