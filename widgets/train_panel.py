"""The Train panel: dataset and settings, Start / Pause / Resume / Cancel, progress, loss and PSNR plot,
live preview of a held-out view.

The panel is a view. It emits requests and shows what it is told; the app (app.train_controller) runs
the training and calls back:
- `start_requested(TrainSettings)`: Start was clicked with these settings.
- `pause_requested()`, `resume_requested()`, `cancel_requested()`: the other run buttons.
- `synth_requested(str)`: make a synthetic dataset (of the demo head) in this new folder.
- `open_avatar_requested()`: show the last trained avatar in the viewport.
The app drives it with `set_state`, `set_status`, `set_progress` / `set_busy_progress`, `add_step`,
`add_evaluation`, `set_history`, `clear_plot`, `set_preview`, `set_dataset`, `set_resume`,
`set_avatar_available` and, for a run on several processes, `set_ranks` (their progress, merged) and
`pausable` (False: such a run stops with Cancel and continues with Start).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.io.images import to_uint8

STATES: tuple[str, ...] = ("idle", "running", "pausing", "paused", "stopping", "making_data")
"""What the panel can show: nothing running, training, pause asked / reached, cancel asked, dataset being made."""

SPLIT_COLOURS: dict[str, str] = {"val": "#f0a030", "test": "#50c878"}  # held-out PSNR points by split
PLOT_REFRESH_MS = 250  # the plot redraws at most this often (steps can arrive faster)
PLOT_MIN_HEIGHT = 200  # pixels of the loss and PSNR curves, at least
PREVIEW_MIN_HEIGHT = 110  # pixels of the held-out preview, at least
BUTTON_MIN_WIDTH = 56  # the run buttons may shrink to this in a narrow dock


@dataclass(frozen=True)
class TrainSettings:
    """What the user asked to train."""

    dataset: str  # dataset folder (VHAP / GaussianAvatars layout, or a synthetic one)
    out: str  # output folder: avatar/, checkpoint.pt, metrics.json
    iters: int  # iterations of the whole run (a resumed run counts the checkpoint's too)
    resolution: int  # longer image side used for training
    finetune_flame: bool  # also refine per-frame FLAME expression, pose and translation
    fit_labels: bool  # also fit the dataset's label maps (part outlines where the maps put them)
    device: str  # torch device ("cpu", "cuda", "cuda:1", ...)
    resume: bool  # continue from out/checkpoint.pt when it exists
    open_when_done: bool  # show the trained avatar in the viewport when the run finishes
    processes: int = 1  # training processes on this machine (more than 1: torchrun, one frame each per step)


def format_duration(seconds: float) -> str:
    """'0:42', '12:05' or '3:02:10'."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def unused_folder(parent: Path, name: str) -> Path:
    """parent/name, or parent/name_2, name_3, ... whichever does not exist yet."""
    candidate, n = parent / name, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{name}_{n}"
    return candidate


class TrainPanel(QWidget):
    """Dataset, settings, run buttons, progress, plot and preview of a training run."""

    start_requested = Signal(object)  # TrainSettings
    pause_requested = Signal()
    resume_requested = Signal()
    cancel_requested = Signal()
    synth_requested = Signal(str)  # folder to create
    open_avatar_requested = Signal()

    def __init__(self, devices: list[str] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = "idle"
        self.pausable = True  # the running job can pause (a run on several processes cannot)
        self._steps: tuple[list[int], list[float], list[float]] = ([], [], [])  # iteration, loss, train PSNR
        self._evals: dict[str, tuple[list[int], list[float]]] = {s: ([], []) for s in SPLIT_COLOURS}
        self._plot_timer = QTimer(self, singleShot=True, interval=PLOT_REFRESH_MS)
        self._plot_timer.timeout.connect(self.flush_plot)
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_settings(devices or ["cpu"]))
        layout.addLayout(self._build_buttons())
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        layout.addWidget(self.progress)
        self.status = QLabel("Choose a dataset folder, then Start.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.ranks_label = QLabel(wordWrap=True)  # one line per process; wraps in a narrow dock
        self.ranks_label.setVisible(False)
        layout.addWidget(self.ranks_label)
        # the curves and the preview share the height left (drag the handle between them)
        split = QSplitter(Qt.Orientation.Vertical, childrenCollapsible=False)
        split.addWidget(self._build_plot())
        split.addWidget(self._build_preview())
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        # takes the height left: its preferred height must not be what a scrolling dock gives it
        split.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        split.setMinimumHeight(split.minimumSizeHint().height())
        layout.addWidget(split, 1)
        self.set_state("idle")

    # ---- construction -----------------------------------------------------------------------
    def _build_settings(self, devices: list[str]) -> QGroupBox:
        box = QGroupBox("Dataset and settings")
        form = QFormLayout(box)
        self.dataset = QLineEdit()
        self.dataset.setPlaceholderText("dataset folder (transforms_train.json, images/, flame_param/)")
        self.dataset.setToolTip("A VHAP / GaussianAvatars dataset folder (transforms_train.json, images/, flame_param/)")
        self.dataset.editingFinished.connect(self._suggest_out)
        browse = QToolButton(text="…", toolTip="Choose the dataset folder")
        browse.clicked.connect(self._browse_dataset)
        self.synth_button = QToolButton(text="Synthetic…")
        self.synth_button.setToolTip("Render a small dataset of the demo head (like `dynamicavatars synth`)")
        self.synth_button.clicked.connect(self._ask_synth)
        form.addRow("Dataset", _row(self.dataset, browse, self.synth_button))
        self.out = QLineEdit()
        self.out.setPlaceholderText("output folder (avatar/, checkpoint.pt, metrics.json)")
        self.out.setToolTip("Where the run writes avatar/, checkpoint.pt and metrics.json")
        out_browse = QToolButton(text="…", toolTip="Choose the output folder")
        out_browse.clicked.connect(self._browse_out)
        form.addRow("Output", _row(self.out, out_browse))
        self.iters = QSpinBox(minimum=1, maximum=10_000_000, value=3000, singleStep=500,
                              toolTip="Iterations of the whole run (a continued run counts the checkpoint's too)")
        self.resolution = QSpinBox(minimum=16, maximum=4096, value=256, singleStep=32, suffix=" px",
                                   toolTip="Longer side of the training images (smaller: faster)")
        self.device = QComboBox(editable=True, toolTip="Where training runs (cuda: gsplat on the GPU)")
        self.device.addItems(devices)
        self.device.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.device.setMinimumContentsLength(6)
        form.addRow("Iterations", _row(self.iters, QLabel("Size"), self.resolution))
        self.processes = QSpinBox(minimum=1, maximum=64, value=1)
        self.processes.setToolTip("Training processes on this machine (torchrun: gloo on the CPU, one GPU each on "
                                  "CUDA); each renders its share of a step's frames. Stop with Cancel; to go on, "
                                  "tick Continue and Start.")
        form.addRow("Device", _row(self.device, QLabel("Processes"), self.processes))
        self.finetune = QCheckBox("Fine-tune FLAME", toolTip="Also refine the per-frame FLAME expression, pose and "
                                  "translation")
        self.fit_labels = QCheckBox("Fit label maps", checked=True,
                                    toolTip="Also fit the dataset's label maps (sharper part outlines for selections)")
        self.resume = QCheckBox("Continue", toolTip="Continue from the checkpoint in the output folder")
        self.open_when_done = QCheckBox("Open when done", checked=True,
                                        toolTip="Show the trained avatar in the viewport when the run finishes")
        checks = QGridLayout()
        for i, check in enumerate((self.finetune, self.fit_labels, self.resume, self.open_when_done)):
            checks.addWidget(check, i // 2, i % 2)
        form.addRow(checks)
        self.settings_box = box
        return box

    def _build_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.start_button = QPushButton("Start", toolTip="Train an avatar on the dataset with these settings")
        self.pause_button = QPushButton("Pause", toolTip="Pause after the current step (Resume goes on)")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel", toolTip="Stop; the last checkpoint and avatar are kept")
        self.open_button = QPushButton("Open", toolTip="Show the trained avatar in the viewport")
        self.open_button.setEnabled(False)
        for button in (self.start_button, self.pause_button, self.resume_button, self.cancel_button, self.open_button):
            button.setMinimumWidth(BUTTON_MIN_WIDTH)  # below the style's 80 px when the column is narrow
        self.start_button.clicked.connect(lambda: self.start_requested.emit(self.settings()))
        self.pause_button.clicked.connect(self.pause_requested)
        self.resume_button.clicked.connect(self.resume_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.open_button.clicked.connect(self.open_avatar_requested)
        for button in (self.start_button, self.pause_button, self.resume_button, self.cancel_button):
            row.addWidget(button)
        row.addSpacing(8)
        row.addWidget(self.open_button)
        return row

    def _build_plot(self) -> pg.GraphicsLayoutWidget:
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(PLOT_MIN_HEIGHT)
        self.loss_plot = self.plots.addPlot(row=0, col=0)
        self.loss_plot.setLabel("left", "loss")
        self.loss_plot.getAxis("left").enableAutoSIPrefix(False)
        self.loss_plot.showGrid(x=True, y=True, alpha=0.2)
        self.psnr_plot = self.plots.addPlot(row=1, col=0)
        self.psnr_plot.setLabel("left", "PSNR", units="dB")
        self.psnr_plot.setLabel("bottom", "iteration")
        self.psnr_plot.showGrid(x=True, y=True, alpha=0.2)
        self.psnr_plot.setXLink(self.loss_plot)
        # bottom right, compact: three rows fit the PSNR plot at a 1280x800 window
        self.psnr_plot.addLegend(offset=(-10, -6), brush=pg.mkBrush(20, 22, 26, 200), labelTextSize="8pt", verSpacing=-6)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen("#5aa0f0", width=1))
        self.psnr_curve = self.psnr_plot.plot(pen=pg.mkPen("#8090a0", width=1), name="training view")
        self.eval_points = {
            split: self.psnr_plot.plot(pen=None, symbol="o", symbolSize=7, symbolBrush=colour, symbolPen=None,
                                       name=f"held-out {split}")
            for split, colour in SPLIT_COLOURS.items()
        }
        for curve in (self.loss_curve, self.psnr_curve):
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
        return self.plots

    def _build_preview(self) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        self.preview_label = QLabel("Preview of a held-out view appears while training.", wordWrap=True)
        column.addWidget(self.preview_label)
        self.preview_view = pg.GraphicsLayoutWidget()
        self.preview_view.setMinimumHeight(PREVIEW_MIN_HEIGHT)
        view = self.preview_view.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.preview_image = pg.ImageItem(axisOrder="row-major")
        view.addItem(self.preview_image)
        self._preview_box = view
        column.addWidget(self.preview_view, 1)
        return box

    # ---- what the user set ------------------------------------------------------------------
    def settings(self) -> TrainSettings:
        return TrainSettings(
            dataset=self.dataset.text().strip(), out=self.out.text().strip(), iters=self.iters.value(),
            resolution=self.resolution.value(), finetune_flame=self.finetune.isChecked(),
            fit_labels=self.fit_labels.isChecked(), device=self.device.currentText().strip() or "cpu", resume=self.resume.isChecked(),
            open_when_done=self.open_when_done.isChecked(), processes=self.processes.value())

    def set_dataset(self, path: str) -> None:
        """Show a dataset folder (and suggest an output folder beside it when none is set)."""
        self.dataset.setText(path)
        self._suggest_out()

    def set_resume(self, on: bool) -> None:
        self.resume.setChecked(on)

    def _suggest_out(self) -> None:
        dataset = self.dataset.text().strip()
        if dataset and not self.out.text().strip():
            path = Path(dataset)
            self.out.setText(str(path.with_name(f"{path.name}_train")))

    def _browse_dataset(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Dataset folder", self.dataset.text())
        if path:
            self.set_dataset(path)

    def _browse_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", self.out.text())
        if path:
            self.out.setText(path)

    def _ask_synth(self) -> None:
        parent = QFileDialog.getExistingDirectory(self, "Folder to put the synthetic dataset in")
        if parent:
            self.synth_requested.emit(str(unused_folder(Path(parent), "synthetic_head")))

    # ---- what the app shows -----------------------------------------------------------------
    def set_state(self, state: str) -> None:
        """Enable the buttons that make sense in `state` (one of STATES)."""
        assert state in STATES, f"unknown panel state {state!r}; expected one of {STATES}"
        self.state = state
        idle = state == "idle"
        self.start_button.setEnabled(idle)
        self.settings_box.setEnabled(idle)
        self.pause_button.setEnabled(state == "running" and self.pausable)
        self.resume_button.setEnabled(state in ("pausing", "paused"))
        self.cancel_button.setEnabled(state in ("running", "pausing", "paused", "making_data"))

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def set_ranks(self, text: str) -> None:
        """Per-process progress of a run on several processes, one line each ("" hides it)."""
        self.ranks_label.setText(text)
        self.ranks_label.setVisible(bool(text))

    def set_avatar_available(self, on: bool) -> None:
        self.open_button.setEnabled(on)

    def set_progress(self, iteration: int, total: int, rate: float, eta: float | None) -> None:
        """Iteration count of the run, with speed (it/s) and time left (seconds, None when unknown)."""
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(min(iteration, max(1, total)))
        eta_text = format_duration(eta) if eta is not None else "–"
        self.progress.setFormat(f"{iteration}/{total}  ·  {rate:.2f} it/s  ·  ETA {eta_text}")

    def set_busy_progress(self, fraction: float, text: str) -> None:
        """Progress of other work (making a dataset)."""
        self.progress.setRange(0, 1000)
        self.progress.setValue(round(max(0.0, min(1.0, fraction)) * 1000))
        self.progress.setFormat(f"%p%  ·  {text}" if text else "%p%")

    def clear_plot(self) -> None:
        self.set_history([], [])

    def set_history(self, steps: list[tuple[int, float, float]], evaluations: list[tuple[int, str, float]]) -> None:
        """Replace the curves: steps (iteration, loss, training PSNR), evaluations (iteration, split, PSNR)."""
        self._steps = ([s[0] for s in steps], [s[1] for s in steps], [s[2] for s in steps])
        self._evals = {s: ([], []) for s in SPLIT_COLOURS}
        for iteration, split, psnr in evaluations:
            self._eval_lists(split)[0].append(iteration)
            self._evals[split][1].append(psnr)
        self.flush_plot()

    def add_step(self, iteration: int, loss: float, psnr: float) -> None:
        its, losses, psnrs = self._steps
        its.append(iteration)
        losses.append(loss)
        psnrs.append(psnr)
        self._schedule_plot()

    def add_evaluation(self, iteration: int, split: str, psnr: float) -> None:
        """A held-out PSNR point (split 'val': novel views, 'test': novel expressions)."""
        its, values = self._eval_lists(split)
        its.append(iteration)
        values.append(psnr)
        self._schedule_plot()

    def _eval_lists(self, split: str) -> tuple[list[int], list[float]]:
        if split not in self._evals:
            self._evals[split] = ([], [])
            self.eval_points[split] = self.psnr_plot.plot(pen=None, symbol="t", symbolSize=7, name=f"held-out {split}")
        return self._evals[split]

    def _schedule_plot(self) -> None:
        if not self._plot_timer.isActive():
            self._plot_timer.start()

    def flush_plot(self) -> None:
        """Draw the curves now (otherwise they redraw at most every PLOT_REFRESH_MS)."""
        self._plot_timer.stop()
        its, losses, psnrs = self._steps
        x = np.asarray(its, dtype=np.float64)
        self.loss_curve.setData(x, np.asarray(losses, dtype=np.float64))
        self.psnr_curve.setData(x, np.asarray(psnrs, dtype=np.float64))
        for split, (e_its, values) in self._evals.items():
            self.eval_points[split].setData(np.asarray(e_its, dtype=np.float64), np.asarray(values, dtype=np.float64))

    def set_preview(self, image: np.ndarray, caption: str = "") -> None:
        """Show image [H, W, 3] (uint8, or float in [0, 1])."""
        assert image.ndim == 3 and image.shape[2] == 3, f"preview must be [H, W, 3], got {image.shape}"
        image = to_uint8(image)
        fit = self.preview_image.image is None or self.preview_image.image.shape != image.shape
        self.preview_image.setImage(image, levels=(0, 255))
        if fit:
            self._preview_box.autoRange(padding=0.0)
        if caption:
            self.preview_label.setText(caption)


def _row(*widgets: QWidget) -> QWidget:
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        row.addWidget(widget, 1 if i == 0 else 0)
    return box
