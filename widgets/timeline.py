"""Play, pause, scrub and loop the session's FLAME sequence; record slider motion as a new sequence.

The sequence, frame, playing, loop and recording state all live in the model; this widget mirrors
them and drives a clock (QTimer at the model's fps) that advances the frame while playing and
samples the shown parameters while recording. A pyqtgraph plot shows the sequence's jaw opening and
its most active expression coefficients over time, with a draggable line at the current frame (for a
single frame there is no plot: the timeline is one row).
When a take stops, it becomes the shown sequence and the user may save it as flame_param .npz.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QLabel, QMessageBox, QSlider, QSpinBox,
                               QToolButton, QVBoxLayout, QWidget)

from engine.avatar.flame_npz import save_flame_params
from widgets.session_view import SessionView

CURVE_COLOURS = ((240, 200, 90), (90, 180, 240), (240, 110, 120), (130, 220, 140), (190, 140, 240))
MAX_CURVES = 4  # jaw plus the 3 expression coefficients that vary most
SINGLE_FRAME_HINT = "A single frame: open a FLAME sequence (File → Open FLAME sequence…) or record a take to play"


class Timeline(QWidget):
    """Transport controls and a curve plot for the model's FLAME sequence (app.session.SessionModel)."""

    scrubbed = Signal()  # the user moved to a frame by hand (the slider, the frame box or the plot's line)

    def __init__(self, model: SessionView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.play = QToolButton(text="▶ Play", checkable=True, toolTip="Play or pause the sequence (Space)")
        self.loop = QCheckBox("Loop", toolTip="Start again at the end")
        self.record = QToolButton(text="● Record", checkable=True,
                                  toolTip="Record slider motion as a FLAME sequence at the playback rate")
        self.slider = QSlider(Qt.Orientation.Horizontal, toolTip="Scrub through the sequence")
        self.spin = QSpinBox(toolTip="Frame")
        self.count = QLabel()
        self.name = QLabel()
        self.name.setStyleSheet("color: palette(mid);")
        top = QHBoxLayout()
        for w in (self.play, self.loop, self.record):
            top.addWidget(w)
        top.addWidget(self.slider, 1)
        top.addWidget(self.spin)
        top.addWidget(self.count)
        top.addWidget(self.name)
        self.plot = pg.PlotWidget(background=None)
        self.plot.setMinimumHeight(60)
        self.plot.setMaximumHeight(110)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.getPlotItem().addLegend(offset=(4, 2), labelTextSize="7pt", colCount=MAX_CURVES)
        self.cursor = pg.InfiniteLine(pos=0, movable=True, pen=pg.mkPen((255, 255, 255), width=1.5))
        self.plot.addItem(self.cursor)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(top)
        layout.addWidget(self.plot)
        self.setMaximumHeight(170)
        self.timer = QTimer(self, timerType=Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.tick)
        self.play.toggled.connect(self._on_play)
        self.loop.toggled.connect(model.set_loop)
        self.record.toggled.connect(self._on_record)
        self.slider.valueChanged.connect(self._scrub)
        self.spin.valueChanged.connect(self._scrub)
        self.cursor.sigPositionChanged.connect(lambda line: self._scrub(int(round(line.value()))))
        model.sequenceChanged.connect(self._on_sequence)
        model.frameChanged.connect(self._on_frame)
        model.playbackChanged.connect(self._on_playback)
        model.avatarChanged.connect(self._on_sequence)
        self._on_sequence()
        self._on_playback()

    # ---- model -> widgets --------------------------------------------------------------------
    def _on_sequence(self) -> None:
        count = self.model.frame_count
        for w in (self.slider, self.spin):
            w.blockSignals(True)
            w.setRange(0, max(0, count - 1))
            w.blockSignals(False)
        self.count.setText(f"/ {max(0, count - 1)}")
        self.count.setToolTip(f"{count} frames at {self.model.fps:g} fps")
        single = count < 2
        self.name.setText(f"{self.model.sequence_name} · single frame" if single else self.model.sequence_name)
        self.name.setToolTip(SINGLE_FRAME_HINT if single else f"Playing {self.model.sequence_name}")
        self._plot_curves()
        self._on_frame(self.model.frame)
        self.setEnabled(self.model.avatar is not None)

    def _plot_curves(self) -> None:
        item = self.plot.getPlotItem()
        for curve in [c for c in item.listDataItems()]:
            item.removeItem(curve)
        seq = self.model.sequence
        single = seq is None or seq.frames < 2
        self.plot.setVisible(not single)  # a single frame has no curves: the timeline is one row
        if single:
            return
        head = self.model.avatar.head
        curves = [("jaw", seq.jaw_pose[:, 0].detach().cpu().numpy())]
        expr = seq.expr.detach().cpu().numpy()
        for i in np.argsort(-expr.std(0))[: MAX_CURVES - 1]:
            if expr[:, i].std() > 0:
                curves.append((head.coefficient_name(int(i)).replace("_", " "), expr[:, i]))
        for (label, values), colour in zip(curves, CURVE_COLOURS):
            self.plot.plot(np.arange(len(values)), values, pen=pg.mkPen(colour, width=1.5), name=label)
        self.plot.setXRange(0, seq.frames - 1, padding=0.01)
        self.plot.enableAutoRange(axis="y")

    def _on_frame(self, frame: int) -> None:
        for w in (self.slider, self.spin):
            w.blockSignals(True)
            w.setValue(frame)
            w.blockSignals(False)
        self.cursor.blockSignals(True)
        self.cursor.setValue(frame)
        self.cursor.blockSignals(False)

    def _on_playback(self) -> None:
        m = self.model
        for button, on in ((self.play, m.playing), (self.record, m.recording)):
            button.blockSignals(True)
            button.setChecked(on)
            button.blockSignals(False)
        self.play.setText("❚❚ Pause" if m.playing else "▶ Play")
        self.record.setText("■ Stop" if m.recording else "● Record")
        self.loop.blockSignals(True)
        self.loop.setChecked(m.loop)
        self.loop.blockSignals(False)
        if m.playing or m.recording:
            self.timer.start(max(1, round(1000 / m.fps)))
        else:
            self.timer.stop()

    # ---- widgets -> model --------------------------------------------------------------------
    def _scrub(self, frame: int) -> None:
        """A frame chosen by hand (the widgets' own signals are blocked while they follow the model)."""
        self.model.set_frame(frame)
        self.scrubbed.emit()

    def toggle_play(self) -> None:
        """Play, or pause (what the Play button does; View → Play / pause, Space)."""
        self.play.click()

    def _on_play(self, on: bool) -> None:
        if on and self.model.frame_count < 2:
            self.model.message.emit("This sequence has a single frame: open a FLAME sequence or record a take")
            self._on_playback()
            return
        if on and not self.model.loop and self.model.frame >= self.model.frame_count - 1:
            self.model.set_frame(0)
        self.model.set_playing(on)

    def tick(self) -> None:
        """One clock step: record the shown parameters, then advance the frame when playing."""
        m = self.model
        if m.recording:
            m.record_sample()
        if not m.playing:
            return
        nxt = m.frame + 1
        if nxt >= m.frame_count:
            if not m.loop:
                m.set_playing(False)
                return
            nxt = 0
        m.set_frame(nxt)

    def _on_record(self, on: bool) -> None:
        if self.model.avatar is None:
            return
        if on:
            self.model.start_recording()
            self.model.message.emit("Recording: move the sliders, press Stop when done")
            return
        take = self.model.stop_recording()
        if take is None:
            return
        self.model.message.emit(f"Recorded {take.frames} frames")
        path, _ = QFileDialog.getSaveFileName(self, "Save recorded take", "take.npz",
                                              "FLAME parameters (*.npz)")
        if not path:
            return
        try:
            save_flame_params(take, path)
        except OSError as exc:
            QMessageBox.warning(self, "Take not saved", f"{path}: {exc}")
        else:
            self.model.message.emit(f"Saved take to {path}")
