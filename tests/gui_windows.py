"""One way for GUI tests to build the application window: a session, its render thread and a MainWindow whose
settings and data live in a test folder, with every feature panel installed unless asked otherwise."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from app.gui_main import install_features
from app.main_window import MainWindow
from app.render_thread import RenderController
from app.session import SessionModel


def new_window(folder: Path, backend: str, max_side: int, features: bool = True,
               refine_settings: object | None = None) -> MainWindow:
    """The window over a fresh session; its render thread is window.controller (shut it down after the test)."""
    model = SessionModel()
    controller = RenderController(model, backend=backend, max_side=max_side, progressive=False)
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(model, controller, settings=settings, data_dir=folder / "data")
    if features:
        install_features(win, state_folder=str(folder / "state"), refine_settings=refine_settings)
    return win
