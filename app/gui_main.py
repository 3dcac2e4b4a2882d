"""`dynamicavatars-gui`: open the main window on the demo avatar or an avatar file.

    dynamicavatars-gui [--avatar PATH] [--sequence NPZ] [--backend auto|gl|cpu|torch|gsplat]
                       [--size WxH] [--screenshot PNG] [--project DAP] [--no-recovery]

At start, autosaved work left by a crash is offered back (Open / Discard / Ignore) before anything
is opened. Warnings and errors are logged to dynamicavatars.log in the app's data folder (log_to_file).
--screenshot writes a PNG of the whole window once the first full-quality frame is on screen, then
quits (used by scripts/screenshot.sh under Xvfb).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


DEFAULT_SIZE = "1440x900"
LOG_HANDLER = "dynamicavatars-gui"  # the name of the logging handlers log_to_file adds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dynamicavatars-gui", description="DynamicAvatars desktop viewer.")
    p.add_argument("--avatar", default=None,
                   help="avatar folder, point_cloud.ply or GaussianAvatars output folder (default: the demo avatar)")
    p.add_argument("--flame", default=None, metavar="FILE",
                   help="your FLAME model file (remembered; the same as File → FLAME model…)")
    p.add_argument("--sequence", default=None, help="FLAME sequence .npz to play on the avatar")
    p.add_argument("--backend", default="auto", choices=("auto", "gl", "gsplat", "cpu", "torch"),
                   help="viewport renderer (auto: gsplat with CUDA, else OpenGL, else the CPU rasterizer)")
    p.add_argument("--size", default=None,
                   help="window size WxH in pixels (default: as you left it, else 1440x900)")
    p.add_argument("--screenshot", default=None, metavar="PNG", help="save a PNG of the window, then quit")
    p.add_argument("--pose", default=None, metavar="NAME=V,...",
                   help="initial expression values, e.g. smile=0.6,brow_raise=0.3 (for screenshots)")
    p.add_argument("--project", default=None, metavar="DAP", help="open a project file (.dap) instead of an avatar")
    p.add_argument("--no-recovery", action="store_true", help="do not offer autosaved work at start")
    return p


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"dynamicavatars-gui: --size must look like 1440x900, got {text!r}") from None
    return max(640, w), max(480, h)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads: BLAS threads fight the GL driver
    from PySide6.QtWidgets import QApplication

    from app.layout import restore_geometry
    from app.main_window import MainWindow
    from app.render_thread import RenderController
    from app.session import SessionModel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("DynamicAvatars")
    app.setOrganizationName("DynamicAvatars")
    apply_style(app)
    model = SessionModel()
    controller = RenderController(model, backend=args.backend)
    window = MainWindow(model, controller)
    log_to_file(window.data_dir / "dynamicavatars.log")
    if args.size or not restore_geometry(window):
        window.resize(*parse_size(args.size or DEFAULT_SIZE))
    app.aboutToQuit.connect(controller.shutdown)
    features = install_features(window)
    if args.flame:
        window.settings.setValue("flame_model", str(Path(args.flame).resolve()))
    window.show()
    project = features["project"]
    if not (args.screenshot or args.no_recovery) and project.offer_recovery():
        return app.exec()  # the recovered project is opening; nothing else is opened
    if args.project:
        project.open_project(args.project, ask=False)
        return app.exec()
    worker = window.open_avatar(args.avatar)
    if args.sequence:
        worker.finished.connect(lambda _: window.open_sequence(args.sequence))
    if args.pose:
        worker.finished.connect(lambda _: _apply_pose_arg(model, args.pose))
    if args.screenshot:
        _screenshot_when_ready(app, window, controller, Path(args.screenshot))
    return app.exec()


def log_to_file(path: Path) -> None:
    """Warnings and errors go to `path` (rotated at 1 MB), a bug's traceback included, and one line each to stderr
    (a known failure, engine.errors.UserError, is one line in both). Called again (main() again in one process),
    it replaces the handlers it added before, so each record is written once."""
    import logging
    from logging.handlers import RotatingFileHandler

    class OneLine(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            where = f" (traceback in {path})" if record.exc_info else ""
            return f"{record.levelname.lower()}: {record.name}: {record.getMessage()}{where}"

    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=1, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_stderr = logging.StreamHandler()
    to_stderr.setFormatter(OneLine())
    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    for earlier in [h for h in root.handlers if h.get_name() == LOG_HANDLER]:
        root.removeHandler(earlier)
        earlier.close()
    for handler in (to_file, to_stderr):
        handler.set_name(LOG_HANDLER)
        root.addHandler(handler)


def install_features(window: MainWindow, state_folder: str | None = None,  # noqa: F821
                     refine_settings: object | None = None) -> dict[str, object]:
    """Dock the feature panels and install their controllers (each registers itself with window.add_feature),
    arrange the docks (app/layout.py: the default, then the user's own if one was saved); returns window.features.
    """
    from PySide6.QtCore import Qt

    from app.adjust_controller import install_adjust
    from app.layout import apply_default_layout
    from app.main_window import PanelSpec
    from app.project_controller import install_project
    from app.prompt_controller import install_prompt
    from widgets.layers_panel import LayersPanel

    prompt = install_prompt(window, refine_settings)
    adjust = install_adjust(window)
    layers = LayersPanel(window.model)
    window.add_feature("layers", layers, PanelSpec("layers", "Layers", lambda w: layers, Qt.DockWidgetArea.LeftDockWidgetArea))
    from app.edit_controller import install_edit_panel
    from app.masks_controller import install_masks
    from app.train_controller import install_train_panel

    install_masks(window)
    edit = install_edit_panel(window)
    layers.enable_compare(True)  # the Layers panel's "Before | after" drives the viewport's split too
    edit.bind_compare(layers.compare_button)
    install_train_panel(window, window.model)
    from app.from_video_controller import install_from_video

    install_from_video(window)
    prompt.refined.connect(lambda result: edit.set_plan(result.plan))
    prompt.panel.prompt_box.lineEdit().textEdited.connect(window.viewport.dismiss_hint)  # typing: the hint is read
    adjust.panel.preview_requested.connect(window.viewport.dismiss_hint)  # an Adjust drag, undoable only when done
    prompt.panel.plan_edited.connect(edit.set_plan)
    edit.set_selection_source(lambda: window.model.selection)
    project = install_project(window, state_folder)
    edit.started.connect(project.checkpoint)  # a crash during the edit loses nothing done before it
    project.add_part(save=lambda p: setattr(p, "prompt_history", prompt.history),
                     load=lambda p: prompt.set_history(p.prompt_history), changed=prompt.historyChanged)
    from app.models_controller import connect_models, install_models

    connect_models(install_models(window), edit, prompt, project)
    apply_default_layout(window)
    window.restore_layout()  # the user's own arrangement, when one was saved
    return window.features


def apply_style(app: QApplication) -> None:  # noqa: F821
    """Fusion style with a dark palette (the splats read best on dark grey)."""
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    pal = QPalette()
    colours = {
        QPalette.ColorRole.Window: (45, 47, 52), QPalette.ColorRole.WindowText: (222, 224, 228),
        QPalette.ColorRole.Base: (32, 34, 38), QPalette.ColorRole.AlternateBase: (50, 52, 58),
        QPalette.ColorRole.Text: (222, 224, 228), QPalette.ColorRole.Button: (55, 58, 64),
        QPalette.ColorRole.ButtonText: (222, 224, 228), QPalette.ColorRole.Highlight: (64, 140, 220),
        QPalette.ColorRole.HighlightedText: (255, 255, 255), QPalette.ColorRole.ToolTipBase: (32, 34, 38),
        QPalette.ColorRole.ToolTipText: (222, 224, 228), QPalette.ColorRole.Mid: (120, 124, 132),
        QPalette.ColorRole.PlaceholderText: (130, 134, 142), QPalette.ColorRole.Link: (90, 170, 250),
    }
    for role, rgb in colours.items():
        pal.setColor(role, QColor(*rgb))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(110, 114, 120))
    app.setPalette(pal)


def _apply_pose_arg(model: SessionModel, text: str) -> None:  # noqa: F821
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        try:
            model.set_expression(name.strip(), float(value))
        except ValueError as exc:
            model.message.emit(f"--pose: {exc}")


def _screenshot_when_ready(app: QApplication, window: MainWindow, controller: RenderController,  # noqa: F821
                           path: Path) -> None:
    """Grab the window once a full-resolution frame is shown and nothing is pending, then quit."""
    from PySide6.QtCore import QTimer

    def grab() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(str(path), "PNG")
        print(f"screenshot {'written to' if ok else 'FAILED:'} {path}", flush=True)
        app.exit(0 if ok else 1)

    def on_frame(frame: object) -> None:
        if frame.full and frame.serial == controller.latest_serial:
            controller.frameReady.disconnect(on_frame)
            QTimer.singleShot(300, grab)  # let the status bar and panels settle

    controller.frameReady.connect(on_frame)
    QTimer.singleShot(120_000, lambda: (print("screenshot: no frame within 120 s", flush=True), app.exit(2)))


if __name__ == "__main__":
    raise SystemExit(main())
