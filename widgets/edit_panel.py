"""Edit panel: editor backend (Automatic: the one chosen in Edit → Models…), which backend will run and
why, "Get a model…" where the plan needs one, model path / URL, Edit and Cancel, progress with the
current keyframe's before/after images, and a before/after split comparison. The edit layers have their
own dock (widgets/layers_panel.py).

It computes nothing: it emits requests and shows what it is given (model/view split; no app imports).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QSizePolicy,
    QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget,
)

from engine.io.images import to_uint8

BACKENDS: tuple[tuple[str, str], ...] = (
    ("procedural", "Procedural (offline)"), ("instruct-pix2pix", "InstructPix2Pix (diffusers)"),
    ("inpaint", "Stable Diffusion inpainting"), ("http", "Image-edit endpoint (HTTP)"),
    ("img2img", "Few-step img2img (diffusers)"), ("auto", "Automatic (Edit → Models…)"),
)
THUMB = 160


def to_pixmap(image: np.ndarray, side: int = THUMB) -> QPixmap:
    """A QPixmap of a float [H, W, 3] array in [0, 1] (or uint8), scaled to fit side."""
    arr = np.ascontiguousarray(to_uint8(image)[..., :3])
    h, w, _ = arr.shape
    qimage = QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(qimage).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation)


class EditPanel(QWidget):
    """The Edit dock."""

    edit_requested = Signal(dict)  # {"backend", "model", "url", "keyframes", "device"}
    cancel_requested = Signal()
    compare_requested = Signal()  # render a before/after comparison of the current view
    get_model_requested = Signal()  # open the Models dialog at the image editor
    backend_changed = Signal(str)  # the backend picker's key

    def __init__(self, parent: QWidget | None = None, devices: list[str] | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.backend_box = QComboBox()
        for key, text in BACKENDS:
            self.backend_box.addItem(text, key)
        self.backend_box.setCurrentIndex(self.backend_box.findData("auto"))
        self.backend_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.backend_box.setMinimumContentsLength(14)
        self.backend_box.setToolTip("The image editor that edits the rendered keyframes (Automatic: the one chosen\n"
                                    "in Edit → Models…; Procedural works offline for colour edits)")
        self.backend_box.currentIndexChanged.connect(self._sync_fields)
        self.backend_box.currentIndexChanged.connect(
            lambda: self.backend_changed.emit(self.backend_box.currentData() or ""))
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("diffusers folder or cached hub id")
        self.model_edit.setToolTip("A local diffusers model folder, or the id of a model already in the hub cache")
        browse = QToolButton(text="…", toolTip="Choose a diffusers model folder")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model_edit)
        row.addWidget(browse)
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("http://127.0.0.1:8000/v1")
        self.url_edit.setToolTip("Address of an image-edit endpoint (Image-edit endpoint editor only)")
        self.keyframes_spin = QSpinBox()
        self.keyframes_spin.setRange(0, 64)
        self.keyframes_spin.setSpecialValueText("from plan")
        self.keyframes_spin.setToolTip("How many well-spread training views are edited (from plan: the plan's count)")
        self.backend_note = QLabel("")
        self.backend_note.setWordWrap(True)
        self.backend_note.setObjectName("editBackendNote")
        self.backend_note.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.MinimumExpanding)
        self.get_model_button = QPushButton("Get a model…")
        self.get_model_button.setToolTip("Download a diffusion model or set an image endpoint (Edit → Models…)")
        self.get_model_button.clicked.connect(self.get_model_requested)
        self.get_model_button.setVisible(False)
        form.addRow("Editor", self.backend_box)
        form.addRow(self.backend_note)
        form.addRow("", self.get_model_button)
        form.addRow("Model", row)
        form.addRow("Endpoint", self.url_edit)
        form.addRow("Keyframes", self.keyframes_spin)
        self.device_box = QComboBox()
        self.device_box.addItems(devices or ["cpu"])
        self.device_box.setToolTip("Where the edit optimisation runs (cuda: gsplat on the GPU)")
        form.addRow("Device", self.device_box)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.edit_button = QPushButton("Edit")
        self.edit_button.setToolTip("Run the refined plan on the selection (or the plan's components) as a new layer")
        self.cancel_button = QPushButton("Cancel")
        self.edit_button.clicked.connect(self._request_edit)
        self.cancel_button.clicked.connect(self.cancel_requested)
        buttons.addWidget(self.edit_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        images = QHBoxLayout()
        self.before_label, self.after_label = QLabel("before"), QLabel("after")
        for label in (self.before_label, self.after_label):
            label.setMinimumSize(THUMB // 2, THUMB // 2)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            images.addWidget(label)
        layout.addLayout(images)
        compare_row = QHBoxLayout()
        self.compare_button = QPushButton("Compare before/after")
        self.compare_button.setToolTip("Render the current view without and with the layers, split by the slider")
        self.compare_button.clicked.connect(self.compare_requested)
        self.split_slider = QSlider(Qt.Orientation.Horizontal)
        self.split_slider.setToolTip("Where the comparison splits: before on the left, after on the right")
        self.split_slider.setRange(0, 100)
        self.split_slider.setValue(50)
        self.split_slider.valueChanged.connect(self._draw_split)
        compare_row.addWidget(self.compare_button)
        compare_row.addWidget(self.split_slider)
        layout.addLayout(compare_row)
        self.compare_label = QLabel("")
        self.compare_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.compare_label)
        layout.addStretch(1)
        self._pair: tuple[np.ndarray, np.ndarray] | None = None
        self.set_running(False)
        self._sync_fields()

    # ---- requests -----------------------------------------------------------------------------
    def settings(self) -> dict:
        return {"backend": self.backend_box.currentData(), "model": self.model_edit.text().strip() or None,
                "url": self.url_edit.text().strip() or None, "keyframes": self.keyframes_spin.value() or None,
                "device": self.device_box.currentText()}

    def _request_edit(self) -> None:
        self.edit_requested.emit(self.settings())

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Diffusers model folder")
        if folder:
            self.model_edit.setText(folder)

    def _sync_fields(self) -> None:
        backend = self.backend_box.currentData()
        self.model_edit.setEnabled(backend not in ("procedural", "auto"))
        self.url_edit.setEnabled(backend == "http")

    # ---- showing state --------------------------------------------------------------------------
    def set_running(self, running: bool) -> None:
        self.edit_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if not running:
            self.progress_bar.setValue(0)

    def set_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(1000 * max(0.0, min(1.0, fraction))))
        self.status_label.setText(message)

    def show_message(self, message: str) -> None:
        self.status_label.setText(message)

    def set_backend_note(self, text: str, offer_model: bool = False) -> None:
        """Say which backend an edit will use and why; offer_model shows "Get a model…" beside it."""
        self.backend_note.setText(text)
        self.get_model_button.setVisible(offer_model)

    def show_preview(self, index: int, before: np.ndarray, after: np.ndarray) -> None:
        self.before_label.setPixmap(to_pixmap(before))
        self.after_label.setPixmap(to_pixmap(after))
        self.before_label.setToolTip(f"keyframe {index}: before")
        self.after_label.setToolTip(f"keyframe {index}: after")

    def show_comparison(self, before: np.ndarray, after: np.ndarray) -> None:
        """A split view: before left of the slider, after right of it."""
        self._pair = (np.asarray(before), np.asarray(after))
        self._draw_split()

    def split_image(self) -> np.ndarray | None:
        if self._pair is None:
            return None
        before, after = self._pair
        cut = int(before.shape[1] * self.split_slider.value() / 100)
        out = after.copy()
        out[:, :cut] = before[:, :cut]
        if 0 < cut < out.shape[1]:
            out[:, cut] = 1.0 if out.dtype != np.uint8 else 255
        return out

    def _draw_split(self) -> None:
        image = self.split_image()
        if image is not None:
            self.compare_label.setPixmap(to_pixmap(image, 2 * THUMB))
