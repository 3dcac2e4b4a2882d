"""The Masks panel: component checklist with colour swatches, paint tools, threshold and selection ops.

It holds no selection itself: it emits what the user asks for, and the masks controller (app/) keeps
it in sync with `set_components` / `set_threshold`, which block the panel's own signals.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup, QFileDialog, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QListWidget,
    QListWidgetItem, QProgressBar, QPushButton, QSizePolicy, QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget,
)

from engine.head.components import COLOURS, COMPONENTS

TOOLS: tuple[str, ...] = ("orbit", "brush", "eraser", "lasso")
"""Viewport tools: orbit (no painting), brush adds, eraser removes, lasso adds a filled outline."""
TOOL_TIPS: dict[str, str] = {
    "orbit": "Drag in the viewport moves the camera (no painting)",
    "brush": "Drag in the viewport adds what you paint to the selection",
    "eraser": "Drag in the viewport removes what you paint from the selection",
    "lasso": "Draw an outline in the viewport: everything inside it is added",
}
OP_TIPS: dict[str, str] = {
    "Invert": "Select exactly what is not selected", "Grow": "Add the selected Gaussians' neighbours",
    "Shrink": "Drop the Gaussians at the selection's edge", "Clear": "Select nothing",
}
FIT_DATASET_TEXT = "Fit ticked to a dataset…"
BRUSH_STEP = 1.2  # brush size factor per press of ] (its inverse for [)


def _swatch(name: str) -> QIcon:
    pix = QPixmap(14, 14)
    pix.fill(QColor(*COLOURS[name]))
    return QIcon(pix)


class MasksPanel(QWidget):
    """Emits the user's selection requests; owns no selection state."""

    componentsChanged = Signal(list)  # ticked component names, in COMPONENTS order
    toolChanged = Signal(str)  # one of TOOLS
    brushChanged = Signal(float, float)  # brush radius in screen pixels, hardness in [0, 1]
    thresholdChanged = Signal(float)  # selection threshold in [0, 1]
    invertRequested = Signal()
    growRequested = Signal()
    shrinkRequested = Signal()
    clearRequested = Signal()
    refineRequested = Signal()  # fit the last stroke to its view (or, while fitting, cancel)
    datasetFitRequested = Signal(str, int)  # fit the ticked components to a dataset folder's label maps at N frames
    datasetFitCancelled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        box = QGroupBox("Facial components")
        self.components = QListWidget()
        for name in COMPONENTS:
            item = QListWidgetItem(_swatch(name), name.replace("_", " "))
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.components.addItem(item)
        self.components.itemChanged.connect(self._on_item)
        self.components.setToolTip("Tick components to select their Gaussians (they show highlighted in the viewport;\n"
                                   "View → Highlight selection hides the highlight)")
        rows = self.components.sizeHintForRow(0) * self.components.count() + 2 * self.components.frameWidth() + 4
        self.components.setMinimumHeight(rows)  # every component in view, no scrolling
        self.components.setMaximumHeight(rows)
        inner = QVBoxLayout(box)
        inner.addWidget(self.components)
        inner.addLayout(self._dataset_fit_row())
        layout.addWidget(box)
        layout.addWidget(self._tools_box())
        layout.addWidget(self._ops_box())
        layout.addStretch(1)

    def _dataset_fit_row(self) -> QVBoxLayout:
        self.dataset_folder = ""  # the last dataset folder chosen (the dialog starts there)
        self._dataset_running = False
        self.fit_dataset_button = QPushButton(FIT_DATASET_TEXT)
        self.fit_dataset_button.setObjectName("op_fit_dataset")
        self.fit_dataset_button.setToolTip(
            "Pick a dataset folder with label maps (e.g. the one the avatar was trained on): the selection is\n"
            "fitted so that, drawn at that many training frames, it is the ticked components' labelled region\n"
            "(sharper outlines at every view; a minute or so; undoable)")
        self.fit_dataset_button.setEnabled(False)
        self.fit_dataset_button.clicked.connect(self._on_fit_dataset)
        self.fit_frames = QSpinBox()
        self.fit_frames.setRange(1, 64)
        self.fit_frames.setValue(8)
        self.fit_frames.setSuffix(" frames")
        self.fit_frames.setToolTip("How many training frames to fit to at once (more: sharper and slower)")
        self.fit_dataset_progress = QProgressBar()
        self.fit_dataset_progress.setRange(0, 1000)
        self.fit_dataset_progress.setVisible(False)
        row = QHBoxLayout()
        row.addWidget(self.fit_dataset_button, 1)
        row.addWidget(self.fit_frames)
        column = QVBoxLayout()
        column.addLayout(row)
        column.addWidget(self.fit_dataset_progress)
        return column

    def _on_fit_dataset(self) -> None:
        if self._dataset_running:  # the button cancels
            self.datasetFitCancelled.emit()
            return
        folder = QFileDialog.getExistingDirectory(self, "Dataset with label maps", self.dataset_folder)
        if folder:
            self.dataset_folder = folder
            self.datasetFitRequested.emit(folder, self.fit_frames.value())

    def _tools_box(self) -> QGroupBox:
        box = QGroupBox("Paint on the viewport")
        grid = QGridLayout()
        self.tool_buttons: dict[str, QToolButton] = {}
        self._tool_group = QButtonGroup(self)
        for i, tool in enumerate(TOOLS):
            b = QToolButton()
            b.setText(tool.capitalize())
            b.setCheckable(True)
            b.setObjectName(f"tool_{tool}")
            b.setToolTip(TOOL_TIPS[tool])
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self._tool_group.addButton(b)
            self.tool_buttons[tool] = b
            b.clicked.connect(lambda _=False, t=tool: self.toolChanged.emit(t))
            grid.addWidget(b, 0, i)
        self.tool_buttons["orbit"].setChecked(True)
        form = QFormLayout()
        self.size_slider = self._slider(1, 80, 12)
        self.hardness_slider = self._slider(0, 100, 60)
        self.size_slider.valueChanged.connect(self._emit_brush)
        self.hardness_slider.valueChanged.connect(self._emit_brush)
        self.size_slider.setToolTip("Brush radius in screen pixels ([ and ] change it)")
        self.hardness_slider.setToolTip("How sharp the brush's edge is (0: soft, 100: hard)")
        form.addRow("Size (px)", self.size_slider)
        form.addRow("Hardness", self.hardness_slider)
        outer = QVBoxLayout(box)
        outer.addLayout(grid)
        outer.addLayout(form)
        self.refine_button = QPushButton("Fit last stroke to its view")
        self.refine_button.setObjectName("op_refine")
        self.refine_button.setToolTip("Refine the last stroke's Gaussians so the selection drawn at the view it was\n"
                                      "painted on follows the stroke's outline exactly (a few seconds; undoable)")
        self.refine_button.setEnabled(False)
        self.refine_button.clicked.connect(self.refineRequested.emit)
        self.refine_progress = QProgressBar()
        self.refine_progress.setRange(0, 1000)
        self.refine_progress.setVisible(False)
        outer.addWidget(self.refine_button)
        outer.addWidget(self.refine_progress)
        return box

    def _ops_box(self) -> QGroupBox:
        box = QGroupBox("Selection")
        row = QHBoxLayout()
        for text, signal in (("Invert", self.invertRequested), ("Grow", self.growRequested),
                             ("Shrink", self.shrinkRequested), ("Clear", self.clearRequested)):
            b = QToolButton(text=text, toolTip=OP_TIPS[text])
            b.setObjectName(f"op_{text.lower()}")
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            b.clicked.connect(signal.emit)
            row.addWidget(b)
        form = QFormLayout()
        self.threshold_slider = self._slider(1, 100, 50)
        self.threshold_label = QLabel("0.50")
        self.threshold_slider.valueChanged.connect(self._on_threshold)
        self.threshold_slider.setToolTip("Painted weights from this value up count as selected")
        threshold = QHBoxLayout()
        threshold.addWidget(self.threshold_slider, 1)
        threshold.addWidget(self.threshold_label)
        form.addRow("Threshold", threshold)
        outer = QVBoxLayout(box)
        outer.addLayout(row)
        outer.addLayout(form)
        self.status = QLabel("No selection")
        outer.addWidget(self.status)
        return box

    @staticmethod
    def _slider(lo: int, hi: int, value: int) -> QSlider:
        s = QSlider(Qt.Orientation.Horizontal)
        s.setRange(lo, hi)
        s.setValue(value)
        return s

    # ---- state readers and sync --------------------------------------------------------------
    def ticked(self) -> list[str]:
        return [self.components.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.components.count())
                if self.components.item(i).checkState() == Qt.CheckState.Checked]

    def set_components(self, names: list[str] | tuple[str, ...]) -> None:
        """Tick exactly these components without emitting componentsChanged."""
        self.components.blockSignals(True)
        for i in range(self.components.count()):
            item = self.components.item(i)
            on = item.data(Qt.ItemDataRole.UserRole) in names
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.components.blockSignals(False)

    def set_threshold(self, value: float) -> None:
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(value * 100))
        self.threshold_slider.blockSignals(False)
        self.threshold_label.setText(f"{value:.2f}")

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def set_refine(self, available: bool, running: bool = False, fraction: float = 0.0) -> None:
        """The fit button: enabled when there is a stroke to fit; a Cancel button with progress while fitting."""
        self.refine_button.setEnabled(available or running)
        self.refine_button.setText("Cancel fitting" if running else "Fit last stroke to its view")
        self.refine_progress.setVisible(running)
        self.refine_progress.setValue(int(1000 * max(0.0, min(1.0, fraction))))

    def set_dataset_fit(self, available: bool, running: bool = False, fraction: float = 0.0, text: str = "") -> None:
        """The dataset-fit button: enabled when components are ticked; a Cancel button with progress while fitting."""
        self._dataset_running = running
        self.fit_dataset_button.setEnabled(available or running)
        self.fit_dataset_button.setText("Cancel fitting" if running else FIT_DATASET_TEXT)
        self.fit_frames.setEnabled(not running)
        self.fit_dataset_progress.setVisible(running)
        self.fit_dataset_progress.setValue(int(1000 * max(0.0, min(1.0, fraction))))
        self.fit_dataset_progress.setFormat(text or "%p%")

    def step_brush(self, steps: int) -> None:
        """Grow (steps > 0) or shrink the brush by about 20 % per step (keys ] and [)."""
        size = self.size_slider.value()
        new = round(size * BRUSH_STEP ** steps)
        self.size_slider.setValue(new if new != size else size + (1 if steps > 0 else -1))

    @property
    def brush(self) -> tuple[float, float]:
        """(radius in screen pixels, hardness in [0, 1])."""
        return float(self.size_slider.value()), self.hardness_slider.value() / 100.0

    def _on_item(self, _item: QListWidgetItem) -> None:
        self.componentsChanged.emit(self.ticked())

    def _emit_brush(self) -> None:
        self.brushChanged.emit(*self.brush)

    def _on_threshold(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        self.thresholdChanged.emit(value / 100.0)
