"""The "New avatar from video…" wizard: choose a file, scrub and trim it, see landmarks on sample frames,
then run decode → landmarks → tracking → training in one progress view with pause, cancel and resume.

The dialog is a view: it emits requests and shows what it is told; the app (app.from_video_controller)
decodes, detects and runs the work on worker threads and calls back.
- `probe_requested(str)`: a file or folder was chosen; answer with `set_source(info)` or `set_source_error(text)`.
- `frame_requested(float)`: show the frame at this time; answer with `show_frame(time, image)`.
- `landmarks_requested(FromVideoSettings)`: find landmarks on sample frames; answer with `show_landmarks(samples)`.
- `start_requested(FromVideoSettings, bool resume)`, `pause_requested()`, `resume_requested()`,
  `cancel_requested()`: the run buttons; the app answers with `set_run_state`, `set_progress`, `set_status`.
A paused run says so (status and progress bar) with Resume focused; a finished one says what was opened and
leaves one button, Close (the summary — held-out PSNR, where the avatar and dataset are — stays readable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

PAGES: tuple[str, ...] = ("source", "trim", "landmarks", "run")
RUN_STATES: tuple[str, ...] = ("ready", "running", "pausing", "paused", "stopping", "stopped", "done", "failed")
VIDEO_FILTER = "Videos and photos (*.mp4 *.mov *.m4v *.webm *.mkv *.avi *.png *.jpg *.jpeg);;All files (*)"
SCRUB_DELAY_MS = 60  # a scrub asks for a frame once the slider rests this long


@dataclass(frozen=True)
class FromVideoSettings:
    """What the user asked for."""

    source: str  # video file, image folder or photo
    out: str  # run folder: dataset/, avatar/, checkpoint.pt
    start: float  # first second taken
    end: float | None  # second to stop before (None: the end)
    stride: int  # keep every N-th frame
    size: int  # longer side of the dataset's images
    holdout: float  # later fraction of the frames held out for evaluation
    iters: int  # training iterations
    resolution: int  # training resolution (longer side)


def to_pixmap(image: np.ndarray, points: np.ndarray | None = None, side: int | None = None) -> QPixmap:
    """A pixmap of image [H, W, 3] uint8, with points [P, 2] (pixels) drawn as dots, scaled to `side`."""
    assert image.ndim == 3 and image.shape[2] == 3, f"image must be [H, W, 3], got {image.shape}"
    h, w = image.shape[:2]
    data = np.ascontiguousarray(image)
    qimage = QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    pixmap = QPixmap.fromImage(qimage)
    if side is not None:
        pixmap = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    if points is not None:
        scale = pixmap.width() / w
        painter = QPainter(pixmap)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(60, 230, 90))
        radius = max(1.0, 0.004 * pixmap.width())
        for x, y in points[np.isfinite(points).all(axis=1)]:
            painter.drawEllipse(QPointF(float(x) * scale, float(y) * scale), radius, radius)
        painter.end()
    return pixmap


class VideoWizard(QDialog):
    """Four pages: source, trim, landmarks, run (see module docstring)."""

    probe_requested = Signal(str)
    frame_requested = Signal(float)
    landmarks_requested = Signal(object)
    start_requested = Signal(object, bool)
    pause_requested = Signal()
    resume_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None, default_out: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("New avatar from video")
        self.resize(760, 620)
        self.duration = 0.0
        self._chosen = ""
        self._auto_out = ""  # the run folder this dialog filled in (it follows the source until the user edits it)
        self.run_state = "ready"
        self._cancelled_once = False
        self.stack = QStackedWidget()
        for build in (self._source_page, self._trim_page, self._landmarks_page, self._run_page):
            self.stack.addWidget(build())
        self.back_button = QPushButton("< Back")
        self.next_button = QPushButton("Next >")
        self.back_button.clicked.connect(lambda: self.go(self.stack.currentIndex() - 1))
        self.next_button.clicked.connect(lambda: self.go(self.stack.currentIndex() + 1))
        nav = QHBoxLayout()
        nav.addStretch(1)
        nav.addWidget(self.back_button)
        nav.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack, 1)
        layout.addLayout(nav)
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(False)  # Return in a text field must not press Browse… or Start
        self.out_edit.setText(default_out)
        self._scrub_timer = QTimer(self, singleShot=True, interval=SCRUB_DELAY_MS)
        self._scrub_timer.timeout.connect(lambda: self.frame_requested.emit(self.scrub_time))
        self.set_run_state("ready")
        self.go(0)

    # ---- pages ---------------------------------------------------------------------------------
    def _source_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.source_edit = QLineEdit()
        self.source_edit.setPlaceholderText("a video of your face (mp4, mov, webm…), a folder of photos, or one photo")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.source_edit, 1)
        row.addWidget(browse)
        form.addRow("Video", row)
        self.source_edit.editingFinished.connect(self._on_source_edited)
        self.out_edit = QLineEdit()
        self.out_edit.setPlaceholderText("folder for the dataset, the avatar and its checkpoint")
        form.addRow("Run folder", self.out_edit)
        self.source_info = QLabel("Choose a video to begin. Turn your head slowly left and right, talk and make "
                                  "faces; even light, 10–30 seconds.")
        self.source_info.setWordWrap(True)
        form.addRow(self.source_info)
        return page

    def _trim_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.frame_view = QLabel("No frame yet")
        self.frame_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.frame_view.setMinimumSize(360, 300)
        layout.addWidget(self.frame_view, 1)
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.valueChanged.connect(self._on_scrub)
        self.time_label = QLabel("0.00 s")
        row = QHBoxLayout()
        row.addWidget(self.scrubber, 1)
        row.addWidget(self.time_label)
        layout.addLayout(row)
        form = QFormLayout()
        self.start_spin, self.end_spin = QDoubleSpinBox(), QDoubleSpinBox()
        for spin in (self.start_spin, self.end_spin):
            spin.setDecimals(2)
            spin.setSuffix(" s")
            spin.setSingleStep(0.5)
        set_start, set_end = QPushButton("Start here"), QPushButton("End here")
        set_start.clicked.connect(lambda: self.start_spin.setValue(self.scrub_time))
        set_end.clicked.connect(lambda: self.end_spin.setValue(self.scrub_time))
        trim = QHBoxLayout()
        for w in (self.start_spin, set_start, QLabel("to"), self.end_spin, set_end):
            trim.addWidget(w)
        form.addRow("Use", trim)
        self.stride_spin = _spin(1, 30, 1, "every N-th frame")
        self.size_spin = _spin(128, 1024, 512, "longer side of the dataset's images, pixels")
        self.holdout_spin = QDoubleSpinBox(minimum=0.0, maximum=0.5, singleStep=0.05, value=0.15)
        self.holdout_spin.setToolTip("later part of the clip held out to measure the avatar")
        self.iters_spin = _spin(10, 100_000, 3000, "training iterations")
        self.resolution_spin = _spin(64, 1024, 256, "training resolution (longer side)")
        form.addRow("Stride", self.stride_spin)
        form.addRow("Image size", self.size_spin)
        form.addRow("Held out", self.holdout_spin)
        form.addRow("Training iterations", self.iters_spin)
        form.addRow("Training resolution", self.resolution_spin)
        layout.addLayout(form)
        return page

    def _landmarks_page(self) -> QWidget:
        page, layout = _page("Check that the face is found: the dots should sit on the eyes, brows, nose, lips and "
                             "face outline in every sample. If they do not, trim the clip to better frames.")
        self.find_button = QPushButton("Find landmarks on sample frames")
        self.find_button.clicked.connect(lambda: self.landmarks_requested.emit(self.settings()))
        layout.addWidget(self.find_button)
        self.samples_row = QHBoxLayout()
        layout.addLayout(self.samples_row, 1)
        self.samples_status = QLabel("")
        layout.addWidget(self.samples_status)
        self.sample_views: list[QLabel] = []
        return page

    def _run_page(self) -> QWidget:
        page, layout = _page("Decode → landmarks → tracking → training. The dataset stays in the run folder for "
                             "re-training; Cancel keeps what is done and Resume continues from it.")
        self.progress = QProgressBar(minimum=0, maximum=1000)
        layout.addWidget(self.progress)
        self.status = QLabel("Ready.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel")
        self.close_button = QPushButton("Close")  # once the avatar is made and opened: the one thing left to do
        self.start_button.clicked.connect(self._on_start)
        self.pause_button.clicked.connect(self._on_pause)
        self.cancel_button.clicked.connect(self.cancel_requested.emit)
        self.close_button.clicked.connect(self.accept)
        for b in (self.start_button, self.pause_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        layout.addLayout(buttons)
        self._step = ""  # the run's newest progress text (a pause names where it stopped)
        return page

    # ---- navigation and settings ---------------------------------------------------------------
    @property
    def page(self) -> str:
        return PAGES[self.stack.currentIndex()]

    def go(self, index: int) -> None:
        index = max(0, min(len(PAGES) - 1, index))
        if index > 0 and self.duration <= 0:
            return  # nothing chosen yet
        self.stack.setCurrentIndex(index)
        busy = self.run_state in ("running", "pausing", "paused", "stopping")
        self.back_button.setEnabled(index > 0 and not busy)
        self.next_button.setEnabled(index < len(PAGES) - 1 and self.duration > 0)
        if PAGES[index] == "trim":
            self.frame_requested.emit(self.scrub_time)

    def choose_source(self, path: str) -> None:
        """Take a file or folder (as the Browse button does) and ask the app to probe it."""
        path = path.strip()
        if not path or (path == self._chosen and self.duration > 0):
            return  # editingFinished fires again whenever the field loses focus
        self._chosen = path
        self.source_edit.setText(path)
        if self.out_edit.text() in ("", self._auto_out):
            p = Path(path)
            self._auto_out = str(p.with_name(p.stem + "_avatar"))
            self.out_edit.setText(self._auto_out)
        self.duration = 0.0
        self.next_button.setEnabled(False)
        self.source_info.setText(f"Reading {Path(path).name}…")
        self.probe_requested.emit(path)

    def _on_source_edited(self) -> None:
        if self.isVisible():  # focus leaving the field of a closed dialog is no choice
            self.choose_source(self.source_edit.text())

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a video", self.source_edit.text(), VIDEO_FILTER)
        if path:
            self.choose_source(path)

    def set_source(self, frames: int, fps: float, width: int, height: int, kind: str) -> None:
        """The chosen input's size and length (from the app's probe)."""
        self.duration = frames / fps
        unit = "s" if kind == "video" else "images"
        self.source_info.setText(f"{kind}: {width}×{height}, {frames} frames"
                                 + (f" at {fps:.2f} fps ({self.duration:.1f} s)" if kind == "video" else ""))
        for spin in (self.start_spin, self.end_spin):
            spin.setRange(0.0, self.duration)
            spin.setSuffix(f" {unit}")
        self.start_spin.setValue(0.0)
        self.end_spin.setValue(self.duration)
        self.scrubber.setRange(0, max(0, int(self.duration * 1000) - 1))
        self.next_button.setEnabled(self.page != "run")

    def set_source_error(self, message: str) -> None:
        self.duration = 0.0
        self.source_info.setText(f"Cannot use this input: {message}")
        self.next_button.setEnabled(False)

    @property
    def scrub_time(self) -> float:
        return self.scrubber.value() / 1000.0

    def _on_scrub(self, _value: int) -> None:
        self.time_label.setText(f"{self.scrub_time:.2f} s")
        self._scrub_timer.start()

    def show_frame(self, time: float, image: np.ndarray) -> None:
        self.frame_view.setPixmap(to_pixmap(image, side=max(200, min(self.frame_view.width(), self.frame_view.height()))))
        self.frame_view.setToolTip(f"frame at {time:.2f} s")

    def show_landmarks(self, samples: list[tuple[float, np.ndarray, np.ndarray | None]]) -> None:
        """Thumbnails of (time, frame, points or None) with the landmarks drawn."""
        for view in self.sample_views:
            view.deleteLater()
        self.sample_views = []
        found = 0
        for time, image, points in samples:
            view = QLabel()
            view.setPixmap(to_pixmap(image, points, side=170))
            view.setToolTip(f"{time:.2f} s: " + ("face found" if points is not None else "no face found"))
            self.samples_row.addWidget(view)
            self.sample_views.append(view)
            found += points is not None
        self.samples_status.setText(f"The face was found in {found} of {len(samples)} sample frames.")

    def settings(self) -> FromVideoSettings:
        end = self.end_spin.value()
        return FromVideoSettings(
            source=self.source_edit.text().strip(), out=self.out_edit.text().strip(), start=self.start_spin.value(),
            end=None if end >= self.duration - 1e-6 else end, stride=self.stride_spin.value(),
            size=self.size_spin.value(), holdout=self.holdout_spin.value(), iters=self.iters_spin.value(),
            resolution=self.resolution_spin.value())

    # ---- running -------------------------------------------------------------------------------
    def _on_start(self) -> None:
        self.start_requested.emit(self.settings(), self._cancelled_once)

    def _on_pause(self) -> None:
        if self.run_state == "running":
            self.pause_requested.emit()
        elif self.run_state in ("pausing", "paused"):
            self.resume_requested.emit()

    def set_run_state(self, state: str) -> None:
        """Show the run's state: its buttons, the progress bar's text, and what a pause or the end means."""
        assert state in RUN_STATES, f"unknown run state {state!r}"
        self.run_state = state
        if state == "stopped":
            self._cancelled_once = True
        busy = state in ("running", "pausing", "paused", "stopping")
        paused = state in ("pausing", "paused")
        done = state == "done"
        self.start_button.setEnabled(state in ("ready", "stopped", "failed"))
        self.start_button.setText("Resume" if state == "stopped" else "Start")
        self.pause_button.setEnabled(state in ("running", "pausing", "paused"))
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setDefault(paused)  # drawn as the default: Resume is what comes next
        self.cancel_button.setEnabled(busy and state != "stopping")
        for button in (self.start_button, self.pause_button, self.cancel_button):
            button.setVisible(not done)
        self.close_button.setVisible(done)
        self.close_button.setDefault(done)
        self.back_button.setEnabled(not (busy or done) and self.stack.currentIndex() > 0)  # done: the avatar is open
        self.progress.setFormat({"paused": "Paused at %p%", "pausing": "Pausing…", "done": "Done",
                                 "stopped": "Stopped at %p%"}.get(state, "%p%"))
        if paused:
            where = f" — {self._step}" if self._step else ""
            self.status.setText(f"Paused{where}. Resume continues; Cancel keeps what is done.")
            self.pause_button.setFocus()  # Resume is what comes next
        elif done:
            self.close_button.setFocus()

    def set_progress(self, fraction: float, text: str) -> None:
        """How far the run got; while paused the step in flight may still land, and the view still says Paused."""
        self.progress.setValue(int(round(1000 * max(0.0, min(1.0, fraction)))))
        if text:
            self._step = text
            if self.run_state not in ("pausing", "paused"):
                self.status.setText(text)

    def set_status(self, text: str) -> None:
        self.status.setText(text)


def _page(intro: str) -> tuple[QWidget, QVBoxLayout]:
    """A page with a wrapped paragraph on top."""
    page = QWidget()
    layout = QVBoxLayout(page)
    label = QLabel(intro)
    label.setWordWrap(True)
    layout.addWidget(label)
    return page, layout


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox(minimum=low, maximum=high, value=value)
    spin.setToolTip(tip)
    return spin
