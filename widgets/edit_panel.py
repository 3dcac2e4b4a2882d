"""Edit panel: editor backend (Automatic: the one chosen in Edit → Models…), which backend will run and
why, "Get a model…" where the plan needs one, model path / URL, where the keyframes come from (the
avatar's training dataset, or rendered views; "Choose…" another dataset folder), Edit and Cancel,
progress with the current keyframe's before/after images, the chosen keyframes (thumbnails with the
discriminator's realness and whether the gate passed them) and the before/after toggle of the viewport's
split view. The edit layers have their own dock (widgets/layers_panel.py).

It computes nothing: it emits requests and shows what it is given (model/view split; no app imports).
"""

from __future__ import annotations

import numpy as np
from typing import Sequence

from PySide6.QtCore import QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListView, QListWidget, QListWidgetItem,
    QProgressBar, QPushButton, QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget,
)

from engine.io.images import to_uint8

BACKENDS: tuple[tuple[str, str], ...] = (
    ("procedural", "Procedural (offline)"), ("instruct-pix2pix", "InstructPix2Pix (diffusers)"),
    ("inpaint", "Stable Diffusion inpainting"), ("http", "Image-edit endpoint (HTTP)"),
    ("img2img", "Few-step img2img (diffusers)"), ("auto", "Automatic (Edit → Models…)"),
)
THUMB = 160
KEYFRAME_THUMB = (112, 56)  # a keyframe's before|after pair in the keyframe list
PROBLEM_STYLE = "color: #f0a050;"  # a dataset the edit cannot use


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
    compare_toggled = Signal(bool)  # the viewport's before/after split view on or off
    dataset_chosen = Signal(str)  # a dataset folder chosen for the keyframes
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
        self.dataset_label = QLabel("")
        self.dataset_label.setWordWrap(True)
        self.dataset_label.setObjectName("editDatasetNote")
        self.dataset_button = QToolButton(text="Choose…")
        self.dataset_button.setToolTip("Choose the dataset folder the avatar was trained on: keyframes are then "
                                       "picked from its training frames")
        self.dataset_button.clicked.connect(self._choose_dataset)
        self.dataset_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.MinimumExpanding)
        dataset_row = QHBoxLayout()
        dataset_row.addStretch(1)
        dataset_row.addWidget(self.dataset_button)
        form.addRow("Dataset:", dataset_row)
        form.addRow(self.dataset_label)  # its own row, the panel's width: a long source wraps, never clips
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
        self.keyframes_title = QLabel("Keyframes")
        self.keyframe_list = QListWidget()
        self.keyframe_list.setObjectName("keyframeList")
        self.keyframe_list.setViewMode(QListView.ViewMode.IconMode)
        self.keyframe_list.setIconSize(QSize(*KEYFRAME_THUMB))
        self.keyframe_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.keyframe_list.setMovement(QListView.Movement.Static)
        self.keyframe_list.setWordWrap(True)
        self.keyframe_list.setSpacing(4)
        self.keyframe_list.setMaximumHeight(2 * KEYFRAME_THUMB[1] + 80)
        self.keyframe_list.setToolTip("The keyframes the edit picked: each is shown before | after its 2D edit, with "
                                      "the discriminator's realness and whether its gate passed it")
        layout.addWidget(self.keyframes_title)
        layout.addWidget(self.keyframe_list)
        self.keyframes_title.setVisible(False)
        self.keyframe_list.setVisible(False)
        self.compare_button = QPushButton("Before | after in the viewport")
        self.compare_button.setCheckable(True)
        self.compare_button.setToolTip("Split the viewport: before the last edit left of the divider, after it "
                                       "right of it (drag the divider)")
        self.compare_button.toggled.connect(self.compare_toggled)
        layout.addWidget(self.compare_button)
        layout.addStretch(1)
        self.set_running(False)
        self._sync_fields()

    # ---- requests -----------------------------------------------------------------------------
    def settings(self) -> dict:
        return {"backend": self.backend_box.currentData(), "model": self.model_edit.text().strip() or None,
                "url": self.url_edit.text().strip() or None, "keyframes": self.keyframes_spin.value() or None,
                "device": self.device_box.currentText()}

    def _request_edit(self) -> None:
        self.edit_requested.emit(self.settings())

    def _choose_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "The avatar's training dataset (VHAP / GaussianAvatars)")
        if folder:
            self.dataset_chosen.emit(folder)

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

    def set_dataset(self, text: str, problem: bool = False) -> None:
        """Say where the keyframes come from (the dataset, or rendered views and why); problem: the folder
        asked for cannot be used."""
        self.dataset_label.setText(text)
        self.dataset_label.setToolTip(text)
        self.dataset_label.setStyleSheet(PROBLEM_STYLE if problem else "")

    def show_keyframes(self, keyframes: Sequence[tuple[np.ndarray, str, str]]) -> None:
        """Show the chosen keyframes as (before|after image [H, W, 3], caption, tooltip); empty hides the list."""
        self.keyframe_list.clear()
        for image, caption, tip in keyframes:
            item = QListWidgetItem(QIcon(to_pixmap(image, max(KEYFRAME_THUMB))), caption)
            item.setToolTip(tip)
            self.keyframe_list.addItem(item)
        self.keyframes_title.setText(f"Keyframes ({len(keyframes)})")
        self.keyframes_title.setVisible(bool(keyframes))
        self.keyframe_list.setVisible(bool(keyframes))

    def set_compare(self, on: bool, available: bool) -> None:
        """Show the viewport's split state without emitting (available: there is something to compare)."""
        with QSignalBlocker(self.compare_button):
            self.compare_button.setChecked(on)
        self.compare_button.setEnabled(available)
