"""The main window: viewport in the middle, panels in docks, menus, status bar.

Panels come from PANELS (PanelSpec: a factory taking the window); the feature panels (masks, prompt,
edit, train, ...) are added by their installers with `window.add_panel(PanelSpec(...))`.
Files load on worker threads; failures become dialogs and the old avatar stays. Avatars open from a
file or folder (File menu, or dropped on the window), GaussianAvatars output folders included; one
made on FLAME asks for the user's FLAME model once (remembered, File → FLAME model…).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QFrame, QLabel, QMainWindow, QMessageBox, QScrollArea, QWidget

from app.render_thread import RenderController
from app.session import SessionModel, display_name
from app.workers import Job, Worker
from widgets.expression_panel import ExpressionPanel
from widgets.timeline import Timeline
from widgets.viewport import Viewport

MAX_RECENT = 8
AVATAR_FILTER = "Avatars (*.ply avatar.json);;All files (*)"
SEQUENCE_FILTER = "FLAME parameters (*.npz);;All files (*)"
FLAME_FILTER = "FLAME model (*.pkl *.npz);;All files (*)"


@dataclass(frozen=True)
class NeedsFlame:
    """Result of a load job when the avatar was made on FLAME and no FLAME model is known (ask for it)."""

    message: str


@dataclass(frozen=True)
class PanelSpec:
    """A dockable panel."""

    key: str  # object name of the dock (saved window layouts refer to it)
    title: str  # dock title and View-menu entry
    factory: Callable[[MainWindow], QWidget]  # builds the panel's widget for a window
    area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea
    visible: bool = True  # shown at start


PANELS: list[PanelSpec] = [
    PanelSpec("expression", "Expression and pose", lambda w: ExpressionPanel(w.model, w.data_dir / "presets.json")),
    PanelSpec("timeline", "Timeline", lambda w: Timeline(w.model), Qt.DockWidgetArea.BottomDockWidgetArea),
]


def load_avatar_job(progress: Callable[[float, str], None], cancel: Callable[[], bool], path: str | None,
                    flame: str | None = None) -> Any:
    """Worker job: the demo avatar (path None) or an avatar file/folder; a FLAME-made one takes the FLAME
    model `flame` (NeedsFlame when there is none)."""
    progress(0.0, f"Loading {display_name(path)}")
    if path is None:
        from engine.avatar.demo import load_demo_avatar

        return load_demo_avatar()
    from engine.avatar.files import FlameModelNeeded, load_avatar

    try:
        return load_avatar(path)
    except FlameModelNeeded as exc:
        if not flame:
            return NeedsFlame(str(exc))
    return load_avatar(path, head=flame)


def load_sequence_job(progress: Callable[[float, str], None], cancel: Callable[[], bool], path: str) -> Any:
    from engine.avatar.flame_npz import load_flame_params

    return load_flame_params(path)


class MainWindow(QMainWindow):
    """DynamicAvatars' window over one SessionModel."""

    def __init__(self, model: SessionModel, controller: RenderController, settings: QSettings | None = None,
                 data_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.model, self.controller = model, controller
        self.settings = settings or QSettings("DynamicAvatars", "DynamicAvatars")
        base = data_dir or QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        self.data_dir = Path(base or Path.home() / ".dynamicavatars")
        self.setWindowTitle("DynamicAvatars")
        self.resize(1400, 900)
        self.viewport = Viewport(model)
        self.setCentralWidget(self.viewport)
        self.viewport.sizeChanged.connect(controller.set_viewport_size)
        controller.set_viewport_size(*self.viewport.device_size())
        controller.frameReady.connect(lambda f: self.viewport.show_frame(f, controller.fps))
        self.docks: dict[str, QDockWidget] = {}
        self.panels: dict[str, QWidget] = {}  # the widget inside each dock (docks hold a scroll area around it)
        self.features: dict[str, Any] = {}  # feature controllers by name (add_feature; app.gui_main.FEATURES)
        self.close_hooks: list[Callable[[], bool]] = []  # each may refuse the close (unsaved changes)
        for spec in PANELS:
            self.add_panel(spec)
        self._build_menus()
        self._build_status()
        self.loading = Job("load", self, exclusive=False)  # avatar and sequence files (the newest open wins)
        model.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        model.avatarChanged.connect(self._on_avatar)
        self.setAcceptDrops(True)

    # ---- panels and menus --------------------------------------------------------------------
    def add_panel(self, spec: PanelSpec) -> QDockWidget:
        dock = QDockWidget(spec.title, self)
        dock.setObjectName(f"dock_{spec.key}")
        panel = self.panels[spec.key] = spec.factory(self)
        # Panels scroll inside their dock, so tall ones (train, edit) never force the window taller than the screen.
        scroll = QScrollArea(dock)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(panel)
        dock.setWidget(scroll)
        self.addDockWidget(spec.area, dock)
        dock.setVisible(spec.visible)
        self.docks[spec.key] = dock
        if hasattr(self, "panels_menu"):
            self.panels_menu.addAction(dock.toggleViewAction())
        return dock

    def add_feature(self, name: str, controller: Any, panel: PanelSpec | None = None) -> Any:
        """Register a feature's controller under name (and dock its panel, if it has one); returns controller."""
        if panel is not None:
            self.add_panel(panel)
        self.features[name] = controller
        return controller

    def _action(self, menu: Any, text: str, slot: Callable[..., Any], shortcut: Any = None,
                checkable: bool = False, checked: bool = False) -> QAction:
        action = QAction(text, self, checkable=checkable)
        if checkable:
            action.setChecked(checked)
            action.toggled.connect(slot)
        else:
            action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = self.file_menu = bar.addMenu("&File")
        self._action(file, "&Open avatar…", self.choose_avatar, QKeySequence.StandardKey.Open)
        self._action(file, "Open avatar fol&der…", self.choose_avatar_folder)
        self._action(file, "FLAME &model…", self.choose_flame_model)
        self._action(file, "Open &FLAME sequence…", self.choose_sequence, "Ctrl+Shift+O")
        self._action(file, "Open &demo avatar", lambda: self.open_avatar(None))
        self.recent_menu = file.addMenu("&Recent files")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = self.edit_menu = bar.addMenu("&Edit")
        for action, keys in ((self.model.undo_stack.createUndoAction(self, "&Undo"), ["Ctrl+Z"]),
                             (self.model.undo_stack.createRedoAction(self, "&Redo"), ["Ctrl+Shift+Z", "Ctrl+Y"])):
            action.setShortcuts([QKeySequence(k) for k in keys])
            edit.addAction(action)
        edit.addSeparator()
        view = bar.addMenu("&View")
        self.panels_menu = view.addMenu("&Panels")
        for dock in self.docks.values():
            self.panels_menu.addAction(dock.toggleViewAction())
        view.addSeparator()
        opts = self.model.view_options
        self._action(view, "Mesh &wireframe", lambda on: self.model.set_view_options(wireframe=on), "W", True,
                     opts.wireframe)
        self._action(view, "&Component colours", lambda on: self.model.set_view_options(components=on), "C", True,
                     opts.components)
        self._action(view, "Show &FPS", lambda on: self.model.set_view_options(fps=on), None, True, opts.fps)
        view.addSeparator()
        self._action(view, "&Reset camera", self.model.reset_camera, "Home")
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About DynamicAvatars", self.about)

    def _build_status(self) -> None:
        self.status = {k: QLabel() for k in ("avatar", "gaussians", "backend", "fps")}
        for label in self.status.values():
            label.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(label)
        self.status["avatar"].setText("No avatar")
        self.controller.backendReady.connect(self._on_backend)
        self.controller.fpsChanged.connect(lambda fps: self.status["fps"].setText(f"{fps:.1f} fps"))
        self.controller.failed.connect(lambda text: self.statusBar().showMessage(f"Render failed: {text}", 8000))
        if self.controller.backend:
            self._on_backend(self.controller.backend, "")

    def _on_backend(self, backend: str, note: str) -> None:
        names = {"gl": "OpenGL", "gsplat": "gsplat CUDA", "cpu": "CPU rasterizer", "torch": "PyTorch rasterizer"}
        self.status["backend"].setText(names.get(backend, backend))
        if note:
            self.statusBar().showMessage(note, 8000)

    def _on_avatar(self) -> None:
        avatar = self.model.avatar
        self.status["avatar"].setText(avatar.name)
        self.status["gaussians"].setText(f"{avatar.gaussians.count:,} Gaussians")
        self.setWindowTitle(f"{avatar.name} — DynamicAvatars")
        notes = avatar.head.notes
        about = f"{avatar.head.name}: components from {notes.components}; {notes.expressions}"
        self.status["avatar"].setToolTip(about)
        if avatar.head.is_flame:  # where components and named expressions came from, or what is missing
            QTimer.singleShot(0, lambda: self.statusBar().showMessage(about, 15000))  # after "Loaded ..."

    @property
    def flame_model(self) -> str | None:
        """The user's FLAME model file (chosen once, remembered), or None."""
        value = self.settings.value("flame_model", "")
        return str(value) if value else None

    def choose_flame_model(self) -> str | None:
        """Ask for the user's FLAME model file and remember it; returns it (None when cancelled)."""
        path, _ = QFileDialog.getOpenFileName(self, "Your FLAME model (generic_model.pkl, flame2023.pkl, ...)",
                                              str(Path(self.flame_model or self._last_dir()).parent), FLAME_FILTER)
        if path:
            self.settings.setValue("flame_model", path)
            self.statusBar().showMessage(f"FLAME model: {path}", 6000)
        return path or None

    # ---- files -------------------------------------------------------------------------------
    def choose_avatar(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open avatar", self._last_dir(), AVATAR_FILTER)
        if path:
            self.open_avatar(path)

    def choose_avatar_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open avatar folder (ours, or a GaussianAvatars output folder)",
                                                self._last_dir())
        if path:
            self.open_avatar(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """A dropped avatar folder or file opens; a .npz plays as a sequence, a .dap opens as a project."""
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        path = paths[0]
        project = self.features.get("project")
        if path.endswith(".dap") and project is not None:
            project.open_project(path)
        elif path.endswith(".npz") and self.model.avatar is not None:
            self.open_sequence(path)
        else:
            self.open_avatar(path)

    def choose_sequence(self) -> None:
        if self.model.avatar is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open FLAME sequence", self._last_dir(), SEQUENCE_FILTER)
        if path:
            self.open_sequence(path)

    def open_avatar(self, path: str | None) -> Worker:
        """Load an avatar on a worker thread; on failure show a dialog and keep the current one."""
        self.statusBar().showMessage(f"Loading {display_name(path)}…")
        worker = self.loading.start(load_avatar_job, path, self.flame_model,
                                    on_finished=lambda avatar: self._avatar_loaded(avatar, path),
                                    on_errored=lambda msg: self._load_failed("Could not open avatar", msg, path))
        assert worker is not None
        return worker

    def open_sequence(self, path: str) -> Worker:
        worker = self.loading.start(load_sequence_job, path,
                                    on_finished=lambda params: self._sequence_loaded(params, path),
                                    on_errored=lambda msg: self._load_failed("Could not open FLAME sequence", msg, path))
        assert worker is not None
        return worker

    def _avatar_loaded(self, avatar: Any, path: str | None) -> None:
        if isinstance(avatar, NeedsFlame):
            QMessageBox.information(self, "FLAME model needed", f"{avatar.message}\n\nPlease locate your FLAME model "
                                    "file (it is licensed per user and never shipped).")
            if self.choose_flame_model():
                self.open_avatar(path)
            return
        self.model.set_avatar(avatar, path)
        if path:
            self._remember("avatar", path)

    def _sequence_loaded(self, params: Any, path: str) -> None:
        try:
            self.model.set_sequence(params, Path(path).name)
        except (ValueError, RuntimeError) as exc:
            self._load_failed("Could not use FLAME sequence", str(exc), path)
            return
        self._remember("sequence", path)
        self.model.message.emit(f"Loaded {params.frames} frames from {Path(path).name}")

    def _load_failed(self, title: str, message: str, path: str | None) -> None:
        self.statusBar().showMessage(f"{title}: {display_name(path)}", 8000)
        QMessageBox.critical(self, title, message)

    def _remember(self, kind: str, path: str) -> None:
        entry = f"{kind}:{os.path.abspath(path)}"
        recent = [e for e in self.recent_files() if e != entry]
        self.settings.setValue("recent_files", [entry, *recent][:MAX_RECENT])
        self.settings.setValue("last_dir", str(Path(path).resolve().parent))

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _last_dir(self) -> str:
        return str(self.settings.value("last_dir", str(Path.home())))

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for entry in self.recent_files():
            kind, _, path = entry.partition(":")
            opener = self.open_avatar if kind == "avatar" else self.open_sequence
            action = self.recent_menu.addAction(f"{Path(path).name}  ({kind})  —  {Path(path).parent}")
            action.triggered.connect(lambda _=False, o=opener, p=path: o(p))
        if not self.recent_files():
            self.recent_menu.addAction("No recent files").setEnabled(False)

    def about(self) -> None:
        QMessageBox.about(self, "About DynamicAvatars",
                          "<h3>DynamicAvatars</h3><p>Animatable 3D Gaussian head avatars: drive them live with "
                          "expression and pose sliders, play FLAME sequences, and edit them.</p>"
                          f"<p>Viewport backend: {self.status['backend'].text() or 'starting'}</p>")

    def closeEvent(self, event: QCloseEvent) -> None:
        if not all(hook() for hook in self.close_hooks):
            event.ignore()
            return
        self.model.set_playing(False)
        self.controller.shutdown()
        super().closeEvent(event)
