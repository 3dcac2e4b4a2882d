"""The main window: viewport in the middle, panels in docks, menus, status bar.

Panels come from PANELS (PanelSpec: a factory taking the window); the feature panels (masks, prompt,
edit, train, ...) are added by their installers with `window.add_feature(name, controller, PanelSpec(...))`.
Where the docks go (the default, the user's own remembered arrangement, View → Reset layout) is
app/layout.py; Help → Keyboard shortcuts lists every menu shortcut (app/shortcuts.py).
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
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import QDockWidget, QFileDialog, QFrame, QLabel, QMainWindow, QMessageBox, QScrollArea, QWidget

from app import layout
from app.render_thread import RenderController
from app.session import SessionModel, display_name
from app.workers import Job, Worker
from widgets.expression_panel import ExpressionPanel
from widgets.timeline import Timeline
from widgets.viewport import Viewport, fps_text

MAX_RECENT = 8
AVATAR_FILTER = "Avatars (*.ply avatar.json);;All files (*)"
SEQUENCE_FILTER = "FLAME parameters (*.npz);;All files (*)"
FLAME_FILTER = "FLAME model (*.pkl *.npz);;All files (*)"
FIRST_RUN_HINT = ("Drag to orbit  ·  Shift+drag to pan  ·  Wheel to zoom  ·  Double-click to reset\n"
                  "Then tick a component in Masks, or type an edit in the Prompt panel")
HINT_DONE_KEY = "hints/viewport_done"  # settings key: the first-run hint has been used


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
    area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea  # right: joins the task tab group (app/layout.py)
    visible: bool = True  # shown at start
    scroll: bool = True  # the panel scrolls inside its dock (False: the dock is as tall as the panel needs)


PANELS: list[PanelSpec] = [
    PanelSpec("expression", "Expression and pose", lambda w: ExpressionPanel(w.model, w.data_dir / "presets.json"),
              Qt.DockWidgetArea.LeftDockWidgetArea),
    PanelSpec("timeline", "Timeline", lambda w: Timeline(w.model), Qt.DockWidgetArea.BottomDockWidgetArea,
              scroll=False),
]

VIEW_OPTIONS: tuple[tuple[str, str, str | None, str], ...] = (
    # ViewOptions field, View-menu entry, shortcut, what it does
    ("selection", "Highlight &selection", "H", "The selected Gaussians in a colour that stands out from theirs"),
    ("before", "Show &before edits", "B", "The avatar without its edit layers (press again to see them)"),
    ("wireframe", "Mesh &wireframe", "W", "The FLAME mesh's edges over the splats"),
    ("components", "&Component colours", "C", "Every Gaussian tinted by its facial component"),
    ("fps", "Show &FPS", None, "Frame rate, latency, renderer and size in the viewport's corner"),
)


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
        controller.frameReady.connect(self.viewport.show_frame)
        controller.fpsChanged.connect(self.viewport.set_fps)
        if not self.settings.value(HINT_DONE_KEY, False, type=bool):
            self.viewport.set_hint(FIRST_RUN_HINT)
        self.viewport.hintDismissed.connect(lambda: self.settings.setValue(HINT_DONE_KEY, True))
        # anything the user does that can be undone (a slider, a ticked component, a stroke, an edit) is use too
        model.undo_stack.indexChanged.connect(self._on_undo_index)
        self._avatars_opened = 0  # the first is the one the app opens at start; opening another is use
        self.docks: dict[str, QDockWidget] = {}
        self.specs: dict[str, PanelSpec] = {}  # how each dock was asked for (app/layout.py places them)
        self.fit_on_show = False  # app/layout.py: size the default columns when the window is first shown
        self.panels: dict[str, QWidget] = {}  # the widget inside each dock (docks hold a scroll area around it)
        self.features: dict[str, Any] = {}  # feature controllers by name (add_feature; app.gui_main.FEATURES)
        self.close_hooks: list[Callable[[], bool]] = []  # each may refuse the close (unsaved changes)
        for spec in PANELS:
            self.add_panel(spec)
        timeline = self.panels["timeline"]
        for used in (timeline.play.clicked, timeline.record.clicked, timeline.scrubbed):  # play, record, scrub: use too
            used.connect(self.viewport.dismiss_hint)
        layout.apply_default_layout(self)
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
        if spec.scroll:  # tall panels scroll inside their dock, never forcing the window taller than the screen
            scroll = QScrollArea(dock)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(panel)
            dock.setWidget(scroll)
        else:
            dock.setWidget(panel)
        self.addDockWidget(spec.area, dock)
        dock.setVisible(spec.visible)
        self.docks[spec.key], self.specs[spec.key] = dock, spec
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
        self._action(view, "Reset &layout", self.reset_layout)
        view.addSeparator()
        self.view_actions: dict[str, QAction] = {}  # view option -> its checkable action (kept in step)
        for option, text, keys, tip in VIEW_OPTIONS:
            action = self._action(view, text, lambda on, o=option: self.model.set_view_options(**{o: on}), keys, True,
                                  getattr(self.model.view_options, option))
            action.setToolTip(tip)
            self.view_actions[option] = action
        self.model.viewOptionsChanged.connect(self._sync_view_actions)
        view.addSeparator()
        self._action(view, "&Reset camera", self.model.reset_camera, "Home")
        self._action(view, "&Play / pause", lambda: self.panels["timeline"].toggle_play(), "Space")
        help_menu = self.help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "F1")
        self._action(help_menu, "&About DynamicAvatars", self.about)

    def _sync_view_actions(self) -> None:
        opts = self.model.view_options
        for option, action in self.view_actions.items():
            action.blockSignals(True)
            action.setChecked(getattr(opts, option))
            action.blockSignals(False)

    def reset_layout(self) -> None:
        """Put every dock back where the default layout has it, and forget the user's own arrangement."""
        layout.apply_default_layout(self)
        layout.forget_layout(self)

    def restore_layout(self) -> bool:
        """The docks as the user left them last time (False when nothing usable was saved: the default stays)."""
        return layout.restore_layout(self)

    def show_shortcuts(self) -> None:
        from app.shortcuts import ShortcutsDialog

        ShortcutsDialog(self).exec()

    def _build_status(self) -> None:
        self.status = {k: QLabel() for k in ("avatar", "gaussians", "backend", "fps")}
        for label in self.status.values():
            label.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(label)
        self.status["avatar"].setText("No avatar")
        self.controller.backendReady.connect(self._on_backend)
        self.status["fps"].setText(fps_text(0.0))
        self.status["fps"].setToolTip("Frames drawn per second while the view changes; idle when nothing is drawn")
        self.controller.fpsChanged.connect(self._show_fps)
        self.controller.failed.connect(lambda text: self.statusBar().showMessage(f"Render failed: {text}", 8000))
        if self.controller.backend:
            self._on_backend(self.controller.backend, "")

    def _show_fps(self, fps: float) -> None:
        self.status["fps"].setText(fps_text(fps))

    def _on_backend(self, backend: str, note: str) -> None:
        names = {"gl": "OpenGL", "gsplat": "gsplat CUDA", "cpu": "CPU rasterizer", "torch": "PyTorch rasterizer"}
        self.status["backend"].setText(names.get(backend, backend))
        if note:
            self.statusBar().showMessage(note, 8000)

    def _on_undo_index(self, index: int) -> None:
        if index > 0:  # an undo item was pushed (or redone); a new avatar clears the stack to 0
            self.viewport.dismiss_hint()

    def _on_avatar(self) -> None:
        avatar = self.model.avatar
        self._avatars_opened += 1
        if self._avatars_opened > 1:
            self.viewport.dismiss_hint()
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

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        layout.on_first_show(self)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not all(hook() for hook in self.close_hooks):
            event.ignore()
            return
        self.model.set_playing(False)
        layout.save_layout(self)
        self.controller.shutdown()
        super().closeEvent(event)
