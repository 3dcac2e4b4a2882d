"""Export dialog: what to export (video, PNG frames, splat ply, GaussianAvatars folder), where, and how.

It holds no app state: it is built from plain arguments and returns an ExportRequest, which the main
window turns into engine calls (engine.export.video / engine.export.splat_export) run in a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.export.camera_paths import PATH_KINDS, CameraPath
from engine.export.video import VideoSettings

EXPORT_KINDS: dict[str, str] = {
    "video": "Video (H.264 mp4)",
    "frames": "Frames (PNG folder)",
    "splats": "Splats (standard 3DGS .ply, current expression)",
    "gaussianavatars": "Animatable avatar (GaussianAvatars folder)",
}
MOTIONS: dict[str, str] = {
    "sequence": "Shown sequence",  # the session's sequence (the avatar's own, a loaded file, a recorded take)
    "held": "Current expression (held)",
    "file": "Sequence file…",
}


@dataclass(frozen=True)
class ExportRequest:
    """What the user asked for."""

    kind: str  # a key of EXPORT_KINDS
    path: Path  # mp4 / ply file, or folder for frames and GaussianAvatars
    motion: str = "sequence"  # a key of MOTIONS (video and frames)
    sequence_file: Path | None = None  # FLAME sequence npz when motion == "file"
    camera_path: CameraPath = field(default_factory=CameraPath)  # camera movement (video and frames)
    settings: VideoSettings = field(default_factory=VideoSettings)  # size, rate, quality, side by side, overlay
    mask_selection: str | None = None  # selection name tinted over the video, or None


class ExportDialog(QDialog):
    """Modal dialog; `request()` holds the answer after exec() returned Accepted."""

    def __init__(self, parent: QWidget | None = None, sequence_name: str = "avatar sequence",
                 has_original: bool = False, selections: list[str] | None = None,
                 initial: ExportRequest | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self._result: ExportRequest | None = None
        form = QFormLayout()
        self.kind = QComboBox()
        for key, text in EXPORT_KINDS.items():
            self.kind.addItem(text, key)
        form.addRow("Export", self.kind)
        self.path = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("To", row)
        self.motion = QComboBox()
        for key, text in MOTIONS.items():
            self.motion.addItem(f"{text} ({sequence_name})" if key == "sequence" else text, key)
        form.addRow("Motion", self.motion)
        self.motion.setToolTip("What the avatar does: the shown sequence, the current expression held, or a file")
        self.sequence_file = QLineEdit()
        self.sequence_file.setPlaceholderText("flame_param.npz")
        form.addRow("Sequence file", self.sequence_file)
        self.camera = QComboBox()
        for key in PATH_KINDS:
            self.camera.addItem(key.capitalize(), key)
        form.addRow("Camera", self.camera)
        self.camera.setToolTip("How the camera moves during the video (Fixed: the viewport's view)")
        self.width_px, self.height_px = self._spin(16, 4096, 512, 2), self._spin(16, 4096, 512, 2)
        size = QHBoxLayout()
        size.addWidget(self.width_px)
        size.addWidget(QLabel("×"))
        size.addWidget(self.height_px)
        form.addRow("Size (px)", size)
        self.fps = QDoubleSpinBox()
        self.fps.setRange(1.0, 120.0)
        self.fps.setValue(25.0)
        form.addRow("Frame rate", self.fps)
        self.duration = QDoubleSpinBox()
        self.duration.setRange(0.1, 600.0)
        self.duration.setValue(4.0)
        self.duration.setSuffix(" s")
        form.addRow("Length (held expression)", self.duration)
        self.crf = self._spin(0, 51, 18, 1)
        self.crf.setToolTip("H.264 constant rate factor: lower is better; 18 looks lossless")
        form.addRow("Quality (CRF)", self.crf)
        self.side_by_side = QCheckBox("Original | edited side by side")
        self.side_by_side.setEnabled(has_original)
        form.addRow("", self.side_by_side)
        self.mask = QComboBox()
        self.mask.addItem("No mask overlay", None)
        for name in selections or []:
            self.mask.addItem(f"Overlay: {name}", name)
        form.addRow("Mask", self.mask)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Export")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.kind.currentIndexChanged.connect(self._sync_enabled)
        self.motion.currentIndexChanged.connect(self._sync_enabled)
        if initial is not None:
            self._load(initial)
        self._sync_enabled()

    @staticmethod
    def _spin(lo: int, hi: int, value: int, step: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(lo, hi)
        spin.setSingleStep(step)
        spin.setValue(value)
        return spin

    def _load(self, r: ExportRequest) -> None:
        self.kind.setCurrentIndex(self.kind.findData(r.kind))
        self.path.setText(str(r.path))
        self.motion.setCurrentIndex(self.motion.findData(r.motion))
        self.sequence_file.setText(str(r.sequence_file or ""))
        self.camera.setCurrentIndex(self.camera.findData(r.camera_path.kind))
        s = r.settings
        self.width_px.setValue(s.width)
        self.height_px.setValue(s.height)
        self.fps.setValue(s.fps)
        self.duration.setValue(s.duration_s)
        self.crf.setValue(s.crf)
        self.side_by_side.setChecked(s.side_by_side and self.side_by_side.isEnabled())
        index = self.mask.findData(r.mask_selection)
        self.mask.setCurrentIndex(max(0, index))

    def _sync_enabled(self) -> None:
        clip = self.kind.currentData() in ("video", "frames")
        for w in (self.motion, self.camera, self.width_px, self.height_px, self.fps, self.duration, self.mask):
            w.setEnabled(clip)
        self.crf.setEnabled(self.kind.currentData() == "video")
        self.sequence_file.setEnabled(clip and self.motion.currentData() == "file")

    def _browse(self) -> None:
        kind = self.kind.currentData()
        if kind in ("frames", "gaussianavatars"):
            chosen = QFileDialog.getExistingDirectory(self, "Export into folder")
        else:
            pattern = "MP4 video (*.mp4)" if kind == "video" else "Splat ply (*.ply)"
            chosen, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text(), pattern)
        if chosen:
            self.path.setText(chosen)

    def build_request(self) -> ExportRequest:
        """The request the fields describe; ValueError with a message for the user when they do not fit."""
        kind = self.kind.currentData()
        text = self.path.text().strip()
        if not text:
            raise ValueError("choose where to export to")
        path = Path(text)
        suffix = {"video": ".mp4", "splats": ".ply"}.get(kind)
        if suffix and path.suffix.lower() != suffix:
            path = path.with_suffix(suffix)
        motion = self.motion.currentData()
        seq_file = Path(self.sequence_file.text().strip()) if motion == "file" else None
        if kind in ("video", "frames") and motion == "file" and (seq_file is None or not seq_file.is_file()):
            raise ValueError(f"sequence file {seq_file or ''} not found")
        mask = self.mask.currentData() if kind in ("video", "frames") else None
        settings = VideoSettings(
            width=self.width_px.value() // 2 * 2, height=self.height_px.value() // 2 * 2, fps=self.fps.value(),
            crf=self.crf.value(), duration_s=self.duration.value(),
            side_by_side=self.side_by_side.isChecked() and self.side_by_side.isEnabled(), mask_overlay=mask is not None,
        )
        return ExportRequest(kind, path, motion, seq_file, CameraPath(self.camera.currentData()), settings, mask)

    def _accept(self) -> None:
        try:
            self._result = self.build_request()
        except ValueError as exc:
            self.error.setText(str(exc))
            return
        self.error.clear()
        self.accept()

    def request(self) -> ExportRequest | None:
        """The accepted request, or None (cancelled or not yet accepted)."""
        return self._result
