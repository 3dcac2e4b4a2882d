"""The window at laptop size (issue 26), measured on the real window (offscreen Qt, the demo avatar, the
moderngl renderer through EGL) at 1280x800 and 1440x900.

Figures, per size (suffix _1280x800, _1440x900):
- horizontal_scrollbars: docks whose scroll area shows a horizontal scrollbar (each tab of the task
  group raised in turn); docks_wider_than_view: panels whose minimum width exceeds what their dock shows.
- main_buttons_out_of_view: main controls (Refine, Edit, Start, Export's dialog aside, Apply, the masks
  component list, the layers list) that are not wholly inside their dock's visible area without scrolling.
- train_plot_height_px: height of the Train panel's loss/PSNR plot; masks_rows_in_view: component rows
  of the Masks list inside the visible area (of masks_rows); viewport_w / viewport_h: the avatar's view.
Once (at 1280x800):
- layer_lists: panels holding a list of the edit layers (the issue: one).
- hair_selection_delta_e_median / _p10: Oklab distance x 100 of the viewport's pixels inside the hair
  (coverage >= 0.9) before and after ticking "hair" in the Masks panel (the issue asks > 10);
  outside_delta_e_max: the largest change where the hair does not reach (coverage < 1e-4);
  hidden_delta_e_max: the largest change once View -> Highlight selection is off.
- fps_text_idle: the status bar's readout after the view has rested; fps_text_drag: at the end of a 2 s
  drag (a camera move every 40 ms; the max_side=256 view, under the machine's load); fps_text_after_drag.

Run by bench/layout.py in its own process (benchmarks import no Qt and nothing from app/: the
import-linter contract); on its own: `.venv/bin/python scripts/layout_probe.py`. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MAIN = {"prompt": ("refine_button",), "edit": ("edit_button",), "train": ("start_button", "plots"),
        "adjust": ("apply_button",), "masks": ("components",), "layers": ("list",)}


def wait(condition, timeout_s: float = 60.0) -> None:
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        QApplication.processEvents()
        time.sleep(0.01)


def settle(seconds: float) -> None:
    from PySide6.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def make_window(width: int, height: int, folder: Path):
    from PySide6.QtCore import QSettings

    from app.gui_main import install_features
    from app.main_window import MainWindow
    from app.render_thread import RenderController
    from app.session import SessionModel
    from engine.prompting import RefineSettings

    model = SessionModel()
    controller = RenderController(model, backend="gl", max_side=256, progressive=False)
    settings = QSettings(str(folder / f"settings_{width}.ini"), QSettings.Format.IniFormat)
    win = MainWindow(model, controller, settings=settings, data_dir=folder / "data")
    win.resize(width, height)
    install_features(win, state_folder=str(folder / f"state_{width}"), refine_settings=RefineSettings(use_embeddings=False))
    win.show()
    win.open_avatar(None)
    wait(lambda: model.avatar is not None)
    model.set_expression("brow_raise", 0.25)  # an undo item, as after any use (its name is in the Undo button's tooltip)
    current_frame(win)
    return win


def current_frame(win):
    ctrl = win.controller
    wait(lambda: win.viewport.frame is not None and win.viewport.frame.serial == ctrl.latest_serial)
    return win.viewport.frame


def in_view(widget, area) -> bool:
    from PySide6.QtCore import QPoint, QRect

    return widget.isVisible() and area.rect().contains(QRect(widget.mapTo(area, QPoint(0, 0)), widget.size()))


def geometry(win) -> dict[str, object]:
    """The per-size figures (see the module docstring)."""
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QScrollArea

    bars, wide, hidden = [], [], []
    for key, dock in win.docks.items():
        dock.raise_()
        settle(0.05)
        scroll, panel = dock.widget(), win.panels[key]
        area = scroll.viewport() if isinstance(scroll, QScrollArea) else dock
        if isinstance(scroll, QScrollArea) and scroll.horizontalScrollBar().isVisible():
            bars.append(key)
        if panel.minimumSizeHint().width() > area.width():
            wide.append(key)
        inner = getattr(win.features.get(key), "panel", panel)  # the Adjust panel sits in a box with its status
        hidden += [f"{key}.{name}" for name in MAIN.get(key, ()) if not in_view(getattr(inner, name), area)]
    win.docks["masks"].raise_()
    settle(0.05)
    masks, area = win.panels["masks"], win.docks["masks"].widget().viewport()
    listed, rows = masks.components, masks.components.count()
    origin = listed.viewport().mapTo(area, QPoint(0, 0))
    item_rects = [listed.visualItemRect(listed.item(i)) for i in range(rows)]
    shown = sum(1 for r in item_rects if listed.viewport().rect().contains(r)
                and area.rect().contains(QRect(origin + r.topLeft(), r.size())))
    win.docks["prompt"].raise_()
    return {"horizontal_scrollbars": len(bars), "horizontal_scrollbar_docks": bars, "docks_wider_than_view": len(wide),
            "main_buttons_out_of_view": len(hidden), "main_buttons_hidden": hidden,
            "train_plot_height_px": win.panels["train"].plots.height(), "masks_rows_in_view": shown,
            "masks_rows": rows, "viewport_w": win.viewport.width(), "viewport_h": win.viewport.height()}


def hair_selection(win) -> dict[str, float]:
    """Tick hair in the Masks panel; how much the viewport's pixels change inside and outside the hair."""
    import numpy as np
    import torch
    from PySide6.QtCore import Qt

    from engine.edit.colour_space import image_delta_e as delta_e
    from engine.head.components import LABEL
    from engine.semantics.mask_render import render_weights

    plain = current_frame(win)
    masks = win.panels["masks"]
    item = next(masks.components.item(i) for i in range(masks.components.count())
                if masks.components.item(i).data(Qt.ItemDataRole.UserRole) == "hair")
    item.setCheckState(Qt.CheckState.Checked)
    shown = current_frame(win)
    avatar = win.model.avatar
    with torch.no_grad():
        splats = avatar.splats(win.model.current_params())
    cover = render_weights(splats, shown.camera, (avatar.gaussians.labels == LABEL["hair"]).float(), backend="cpu")
    cover = cover[..., 0].numpy()
    de = delta_e(plain.image, shown.image)
    inside = de[cover >= 0.9]
    win.view_actions["selection"].trigger()
    hidden = current_frame(win)
    win.view_actions["selection"].trigger()
    return {"hair_selection_delta_e_median": round(float(np.median(inside)), 2),
            "hair_selection_delta_e_p10": round(float(np.percentile(inside, 10)), 2),
            "hair_pixels": int(inside.size), "outside_delta_e_max": round(float(de[cover < 1e-4].max()), 2),
            "hidden_delta_e_max": round(float(delta_e(plain.image, hidden.image).max()), 2)}


def fps_readout(win) -> dict[str, str]:
    """The status bar's fps text at rest, and while a camera drag draws frames."""
    from app.render_thread import IDLE_AFTER_S

    label = win.status["fps"]
    wait(lambda: label.text() == "idle", 5 * IDLE_AFTER_S)
    idle = label.text()
    seen = ""
    for i in range(50):  # a drag of 2 s: a camera move every 40 ms; the readout at its end
        win.model.set_camera(win.model.camera.orbited(2.0, 0.0))
        settle(0.04)
        seen = label.text()
    wait(lambda: label.text() == "idle", 5 * IDLE_AFTER_S)
    return {"fps_text_idle": idle, "fps_text_drag": seen, "fps_text_after_drag": label.text()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    import torch
    from PySide6.QtWidgets import QApplication, QListWidget

    torch.set_num_threads(args.threads)
    app = QApplication.instance() or QApplication([])
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in ((1280, 800), (1440, 900)):
            win = make_window(width, height, Path(tmp))
            figures.update({f"{k}_{width}x{height}": v for k, v in geometry(win).items()})
            if width == 1280:
                figures["layer_lists"] = sum(1 for p in win.panels.values()
                                             if hasattr(p, "layer_list") or p.findChild(QListWidget, "layerList"))
                figures.update(hair_selection(win))
                figures.update(fps_readout(win))
            win.close_hooks.clear()  # the selection made is no work to save: no "discard changes?" question
            win.close()
            win.controller.shutdown()
            app.processEvents()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
