"""A long GUI session driven like a user: real mouse events on sliders, the viewport and the paint overlay,
clicks on panel buttons, undo/redo, adjust, a procedural edit (finished or cancelled mid-job), save,
reopen, export (finished or cancelled mid-job), all in an order drawn from a seeded random.Random.

`build_window` makes the window the way app.gui_main does (with a private state folder), `GuiSoak.run`
performs the actions and returns a SoakReport: exceptions raised anywhere (Qt slots included, through
sys.excepthook), error dialogs shown, process memory and thread counts. Used by tests/test_gui_soak.py;
`python -m tests.gui_soak --actions N` runs one in its own process and prints `SOAK {json}` (bench/robustness.py).

Mouse events go through QApplication.sendEvent and the event loop through one QEventLoop's processEvents:
PySide6 6.12.0's static void functions (QTest.mouse*, QTest.qWait, QApplication.processEvents,
QTimer.singleShot, ...) each drop one reference to None, and a few hundred thousand calls end the process
with "Fatal Python error: none_dealloc" (measured: 1000 calls, 1000 references).
"""

from __future__ import annotations

import gc
import inspect
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from PySide6.QtCore import QEvent, QEventLoop, QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton, QSlider, QStyle, QStyleOptionSlider, QWidget

LIGHT: dict[str, float] = {"slider": 30, "orbit": 24, "paint": 12, "undo": 8, "redo": 6, "adjust": 7, "timeline": 5,
                           "components": 4, "wait_frame": 4}
"""Relative frequency of each quick action."""

HEAVY: tuple[str, ...] = ("save", "reopen", "export_ply", "export_video_cancel", "edit", "edit_cancel")
"""Slow actions: one of them every `heavy_every` actions (each kind once during the warm-up)."""


class SoakFailure(Exception):
    """The GUI did not reach an expected state in time."""


@dataclass
class SoakReport:
    """What happened during a soak."""

    actions: int = 0  # actions performed
    counts: Counter = field(default_factory=Counter)  # actions by kind
    exceptions: list[str] = field(default_factory=list)  # every exception, with where it happened
    dialogs: list[str] = field(default_factory=list)  # error/warning dialogs shown (title: text)
    effects: Counter = field(default_factory=Counter)  # session signals seen: pose, camera, selection, layers, frames
    render_failures: list[str] = field(default_factory=list)  # messages of the render thread's failed signal
    rss_start_mb: float = 0.0  # resident memory after the warm-up
    rss_end_mb: float = 0.0  # resident memory at the end (after a garbage collection)
    threads_start: int = 0  # OS threads of the process after the warm-up, the app idle
    threads_end: int = 0  # OS threads at the end, the app idle
    seconds: float = 0.0  # wall time of the whole run

    @property
    def memory_growth_mb(self) -> float:
        return self.rss_end_mb - self.rss_start_mb


def build_window(folder: Path, state_folder: Path) -> object:
    """A MainWindow with every feature installed (as app.gui_main does), a small render size, shown."""
    from app.gui_main import install_features
    from app.main_window import MainWindow
    from app.render_thread import RenderController
    from app.session import SessionModel
    from engine.prompting import RefineSettings

    model = SessionModel()
    params = inspect.signature(RenderController).parameters  # the render thread's options changed over time
    small = {"max_side": 128, "progressive": False} if "max_side" in params else {"interactive_side": 128, "still_side": 0}
    controller = RenderController(model, backend="auto", **small)  # the path users get
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(model, controller, settings=settings, data_dir=folder / "data")
    install_features(window, state_folder=str(state_folder), refine_settings=RefineSettings(use_embeddings=False))
    window.resize(1100, 760)
    window.show()
    return window


def close_window(window: object) -> None:
    """Close the window as a user who discards unsaved changes would, and stop its render thread."""
    question = QMessageBox.question
    QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard)
    try:
        window.close()
    finally:
        QMessageBox.question = question
    window.controller.shutdown()


def small_avatar_folder(folder: Path, count: int = 4000) -> Path:
    """The demo avatar with `count` Gaussians saved as an avatar folder (opened like a user's file)."""
    from engine.avatar.demo import load_demo_avatar
    from engine.avatar.files import save_avatar

    return save_avatar(load_demo_avatar(count=count), folder / "avatar")


_LOOP: list[QEventLoop] = []


def process_events(max_ms: int = 5) -> None:
    """Process pending events (through a QEventLoop instance; see the module docstring)."""
    if not _LOOP:
        _LOOP.append(QEventLoop())
    _LOOP[0].processEvents(QEventLoop.ProcessEventsFlag.AllEvents, max_ms)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Run the event loop until condition() holds; SoakFailure after timeout_s."""
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise SoakFailure(f"{what}: not within {timeout_s:.0f} s")
        process_events(20)
        time.sleep(0.002)


def pump(ms: int = 5) -> None:
    end = time.monotonic() + ms / 1000
    while time.monotonic() < end:
        process_events(5)


NO_MODIFIER = Qt.KeyboardModifier.NoModifier


def mouse(widget: QWidget, kind: QEvent.Type, at: QPoint, button: Qt.MouseButton = Qt.MouseButton.LeftButton,
          held: Qt.MouseButton | None = None, modifiers: Qt.KeyboardModifier = NO_MODIFIER) -> None:
    """Send one mouse event (press, move, release or double click) to widget at a widget position."""
    local = QPointF(at)
    buttons = (button if kind != QEvent.Type.MouseButtonRelease else Qt.MouseButton.NoButton) if held is None else held
    event = QMouseEvent(kind, local, QPointF(widget.mapToGlobal(local)), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def click(widget: QWidget, at: QPoint | None = None, button: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
    """Press and release (at the widget's centre unless at is given)."""
    at = widget.rect().center() if at is None else at
    mouse(widget, QEvent.Type.MouseButtonPress, at, button)
    mouse(widget, QEvent.Type.MouseButtonRelease, at, button)


def drag(widget: QWidget, points: list[QPoint], button: Qt.MouseButton = Qt.MouseButton.LeftButton,
         modifiers: Qt.KeyboardModifier = NO_MODIFIER) -> None:
    """Press, move through points, release: a real mouse-event sequence."""
    mouse(widget, QEvent.Type.MouseButtonPress, points[0], button, modifiers=modifiers)
    for p in points[1:]:
        mouse(widget, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, held=button, modifiers=modifiers)
        pump(1)
    mouse(widget, QEvent.Type.MouseButtonRelease, points[-1], button, modifiers=modifiers)


def slider_handle(slider: QSlider) -> QPoint:
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    return slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle,
                                         slider).center()


class GuiSoak:
    """Drives one window for many actions; see the module docstring."""

    def __init__(self, window: object, folder: Path, seed: int = 0, heavy_every: int = 150) -> None:
        self.w, self.folder, self.rnd = window, folder, random.Random(seed)
        self.heavy_every = heavy_every
        self.report = SoakReport()
        self.saved: Path | None = None
        self._saves = 0
        self.trace = False  # print each action as it starts

    # ---- bookkeeping -------------------------------------------------------------------------
    def _hook(self, kind: type, value: BaseException, tb: object) -> None:
        self.report.exceptions.append("".join(traceback.format_exception(kind, value, tb))[-1500:])

    def _dialog(self, level: str) -> Callable[..., object]:
        def show(parent: object, title: str, text: str, *args: object, **kwargs: object) -> object:
            self.report.dialogs.append(f"{level} {title}: {text}")
            return QMessageBox.StandardButton.Ok
        return show

    def _idle(self) -> None:
        """Wait until no job runs and the newest frame is on screen."""
        f = self.w.features
        for job in (f["project"].opening, f["project"].exporting, f["edit"].job, f["prompt"].job, self.w.loading,
                    f["masks"].stroke_fit):
            worker = job.worker
            if worker is not None:
                wait_until(lambda w=worker: not w.is_running(), 300, f"job {job.name} to end")
        pump(50)
        self._wait_frame()

    def _wait_frame(self) -> None:
        ctrl, vp = self.w.controller, self.w.viewport
        wait_until(lambda: vp.frame is not None and vp.frame.serial == ctrl.latest_serial, 60, "the newest frame")

    # ---- run ---------------------------------------------------------------------------------
    def run(self, actions: int, warmup: int = 40) -> SoakReport:
        """Open the avatar, warm up (every kind once), then `actions` actions in all."""
        start = time.perf_counter()
        old_hook, saved = sys.excepthook, {n: getattr(QMessageBox, n) for n in ("critical", "warning", "information")}
        sys.excepthook = self._hook
        for name in saved:
            setattr(QMessageBox, name, staticmethod(self._dialog(name)))
        question = QMessageBox.question
        QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard)
        proc = psutil.Process()
        self._watch()
        try:
            self.w.open_avatar(str(small_avatar_folder(self.folder)))
            wait_until(lambda: self.w.model.avatar is not None, 120, "the avatar to open")
            self.w.features["edit"].config = quick_edit_config()
            self._idle()
            if warmup == 0:
                self._measure_start(proc)
            kinds, light = list(HEAVY), list(LIGHT)  # the warm-up does every kind once
            for i in range(actions):
                if i < warmup and kinds and i % max(1, warmup // len(HEAVY)) == 0:
                    self._do(kinds.pop(0))
                elif i >= warmup and (i - warmup + 1) % self.heavy_every == 0:
                    self._do(self.rnd.choice(HEAVY))
                elif i < warmup and light:
                    self._do(light.pop(0))
                else:
                    self._do(self.rnd.choices(list(LIGHT), weights=list(LIGHT.values()))[0])
                if i == warmup - 1:
                    self._measure_start(proc)
            self._idle()
            gc.collect()
            pump(200)
            self.report.rss_end_mb = proc.memory_info().rss / 2**20
            self.report.threads_end = proc.num_threads()
        finally:
            sys.excepthook = old_hook
            for name, fn in saved.items():
                setattr(QMessageBox, name, fn)
            QMessageBox.question = question
        self.report.seconds = time.perf_counter() - start
        return self.report

    def _measure_start(self, proc: psutil.Process) -> None:
        self._idle()
        gc.collect()
        self.report.rss_start_mb = proc.memory_info().rss / 2**20
        self.report.threads_start = proc.num_threads()

    def _watch(self) -> None:
        """Count what the actions changed, so a soak whose clicks miss their widgets is noticed."""
        m, effects = self.w.model, self.report.effects
        for name, signal in (("pose", m.poseChanged), ("camera", m.cameraChanged), ("selection", m.selectionChanged),
                             ("layers", m.layersChanged), ("frame", m.frameChanged)):
            signal.connect(lambda *_, n=name: effects.update((n,)))
        self.w.controller.frameReady.connect(lambda _f: effects.update(("frames shown",)))
        self.w.controller.failed.connect(self.report.render_failures.append)

    def _do(self, kind: str) -> None:
        if self.trace:
            print(self.report.actions, kind, flush=True)
        try:
            getattr(self, f"act_{kind}")()
        except Exception:  # noqa: BLE001 - every failure is recorded, the soak goes on
            self.report.exceptions.append(f"{kind}: {traceback.format_exc()[-1500:]}")
        self.report.actions += 1
        self.report.counts[kind] += 1
        pump(2)

    # ---- light actions -----------------------------------------------------------------------
    def act_slider(self) -> None:
        sliders = [s for s in self.w.panels["expression"].findChildren(QSlider) if s.isVisible() and s.isEnabled()]
        slider = self.rnd.choice(sliders)
        start = slider_handle(slider)
        dx = self.rnd.randint(-slider.width() // 2, slider.width() // 2)
        steps = self.rnd.randint(2, 6)
        drag(slider, [start + QPoint(round(dx * k / steps), 0) for k in range(steps + 1)])

    def _tool(self, tool: str) -> None:
        click(self.w.features["masks"].panel.tool_buttons[tool])

    def _path(self, n: int) -> list[QPoint]:
        vp = self.w.viewport
        x, y = self.rnd.randint(20, vp.width() - 20), self.rnd.randint(20, vp.height() - 20)
        pts = [QPoint(x, y)]
        for _ in range(n):
            x = min(vp.width() - 2, max(2, x + self.rnd.randint(-25, 25)))
            y = min(vp.height() - 2, max(2, y + self.rnd.randint(-25, 25)))
            pts.append(QPoint(x, y))
        return pts

    def act_orbit(self) -> None:
        self._tool("orbit")
        vp = self.w.viewport
        roll = self.rnd.random()
        if roll < 0.6:
            drag(vp, self._path(self.rnd.randint(2, 6)))
        elif roll < 0.75:
            drag(vp, self._path(3), Qt.MouseButton.MiddleButton)
        elif roll < 0.9:
            at = QPointF(vp.width() / 2, vp.height() / 2)
            wheel = QWheelEvent(at, vp.mapToGlobal(at), QPoint(0, 0), QPoint(0, self.rnd.choice([-240, -120, 120, 240])),
                                Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                                False)
            QApplication.sendEvent(vp, wheel)
        else:
            at = self._path(0)[0]
            click(vp, at)
            mouse(vp, QEvent.Type.MouseButtonDblClick, at)
            mouse(vp, QEvent.Type.MouseButtonRelease, at)

    def act_paint(self) -> None:
        if self.w.viewport.frame is None:
            return
        self._tool(self.rnd.choice(["brush", "brush", "eraser", "lasso"]))
        drag(self.w.features["masks"].painter, self._path(self.rnd.randint(3, 10)))
        self._tool("orbit")

    def act_undo(self) -> None:
        click(self.w.panels["layers"].undo_button)

    def act_redo(self) -> None:
        click(self.w.panels["layers"].redo_button)

    def act_adjust(self) -> None:
        panel = self.w.features["adjust"].panel
        slider = panel.sliders[self.rnd.choice(sorted(panel.sliders))]
        start = slider_handle(slider)
        drag(slider, [start, start + QPoint(self.rnd.randint(-40, 40), 0)])
        if self.rnd.random() < 0.5:
            click(panel.apply_button)
        else:
            click(panel.reset_button)

    def act_timeline(self) -> None:
        slider = self.w.panels["timeline"].slider
        start = slider_handle(slider)
        drag(slider, [start, start + QPoint(self.rnd.randint(-60, 60), 0)])

    def act_components(self) -> None:
        items = self.w.features["masks"].panel.components
        item = items.item(self.rnd.randrange(items.count()))
        rect = items.visualItemRect(item)
        box = QPoint(rect.left() + 10, rect.center().y())  # the check box sits at the left of the row
        click(items.viewport(), box)

    def act_wait_frame(self) -> None:
        self._wait_frame()

    # ---- heavy actions -----------------------------------------------------------------------
    def act_save(self) -> None:
        self._idle()
        self._saves += 1
        path = self.folder / f"soak-{self._saves % 2}.dap"
        if not self.w.features["project"].save_to(path):
            raise SoakFailure(f"saving {path} failed")
        self.saved = path

    def act_reopen(self) -> None:
        if self.saved is None:
            self.act_save()
        self._idle()
        pc = self.w.features["project"]
        opened: list[str] = []
        pc.opened.connect(opened.append)
        try:
            pc.open_project(self.saved, ask=False)
            wait_until(lambda: bool(opened), 180, f"{self.saved} to reopen")
        finally:
            pc.opened.disconnect(opened.append)
        self._idle()

    def _export(self, request: object, cancel: bool) -> None:
        self._idle()
        pc = self.w.features["project"]
        worker = pc.start_export(request)
        if cancel:
            wait_until(lambda: worker.is_running(), 30, "the export to start")
            progressed: list[float] = []
            worker.progress.connect(lambda f, _t: progressed.append(f))
            wait_until(lambda: bool(progressed) or not worker.is_running(), 120, "export progress")
            cancel_button = pc.export_progress.findChild(QPushButton)
            click(cancel_button)  # the progress dialog's Cancel
        wait_until(lambda: not worker.is_running(), 300, "the export to end")
        pump(50)
        if not cancel and not Path(request.path).exists():
            raise SoakFailure(f"the export wrote no {request.path}")

    def act_export_ply(self) -> None:
        from widgets.export_dialog import ExportRequest

        self._export(ExportRequest("splats", self.folder / "soak.ply"), cancel=False)

    def act_export_video_cancel(self) -> None:
        from engine.export.video import VideoSettings
        from widgets.export_dialog import ExportRequest

        settings = VideoSettings(width=64, height=64, fps=10.0, duration_s=30.0, preset="ultrafast")
        self._export(ExportRequest("video", self.folder / "soak.mp4", motion="held", settings=settings), cancel=True)
        left = [p.name for p in self.folder.glob("*soak.mp4*")]
        if left:
            raise SoakFailure(f"a cancelled export left {left}")

    def _edit(self, cancel: bool) -> None:
        self._idle()
        prompt, edit = self.w.features["prompt"], self.w.features["edit"]
        prompt.panel.prompt_box.setEditText(self.rnd.choice(["make the lips blue", "make the hair bright red",
                                                             "darker eyebrows"]))
        refined: list[object] = []
        prompt.refined.connect(refined.append)
        try:
            click(prompt.panel.refine_button)
            wait_until(lambda: bool(refined), 60, "the prompt to be refined")
        finally:
            prompt.refined.disconnect(refined.append)
        pump(20)
        click(edit.panel.edit_button)
        worker = edit.job.worker
        if worker is None:
            raise SoakFailure("the Edit button started no edit")
        if cancel:
            progressed: list[float] = []
            worker.progress.connect(lambda f, _t: progressed.append(f))
            wait_until(lambda: bool(progressed) or not worker.is_running(), 120, "edit progress")
            click(edit.panel.cancel_button)
        wait_until(lambda: not worker.is_running(), 600, "the edit to end")
        pump(50)

    def act_edit(self) -> None:
        self._edit(cancel=False)

    def act_edit_cancel(self) -> None:
        self._edit(cancel=True)


def quick_edit_config() -> object:
    """A procedural edit small enough for a soak (seconds, not minutes)."""
    from engine.edit.optimise import OptimConfig
    from engine.edit.run import EditConfig

    return EditConfig(size=48, keyframes=2, orbit_cameras=4, max_timesteps=2, passes=2, min_steps=4, max_steps=6,
                      discriminator=False, optim=OptimConfig(refresh_every=0))


def main(argv: list[str] | None = None) -> None:
    """Run one soak in this process (offscreen) and print `SOAK {json}` with the report's figures."""
    import argparse
    import json
    import os
    import tempfile

    p = argparse.ArgumentParser(description="A GUI soak of random user actions.")
    p.add_argument("--actions", type=int, default=2000)
    p.add_argument("--heavy-every", type=int, default=150)
    p.add_argument("--warmup", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import torch

    torch.set_num_threads(args.threads)
    _app = QApplication.instance() or QApplication(sys.argv[:1])  # kept alive while the soak runs
    folder = Path(tempfile.mkdtemp(prefix="soak-"))
    window = build_window(folder, folder / "state")
    try:
        report = GuiSoak(window, folder, seed=args.seed, heavy_every=args.heavy_every).run(args.actions, args.warmup)
    finally:
        close_window(window)
    print("SOAK " + json.dumps({
        "actions": report.actions, "counts": dict(report.counts), "effects": dict(report.effects),
        "exceptions": report.exceptions, "dialogs": report.dialogs, "render_failures": report.render_failures,
        "memory_growth_mb": report.memory_growth_mb, "rss_start_mb": report.rss_start_mb,
        "threads_start": report.threads_start, "threads_end": report.threads_end, "seconds": report.seconds,
    }), flush=True)


if __name__ == "__main__":
    main()
