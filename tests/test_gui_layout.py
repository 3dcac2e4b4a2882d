"""The whole window at laptop sizes (1280×800, 1440×900), headless: every dock readable without a horizontal
scrollbar, each panel's main button in view without scrolling, the training plot with real height, one layer
list whose long layer names are elided; the user's layout remembered and View → Reset layout; a hair selection
visible in the viewport's pixels (ΔE in Oklab × 100); the fps readout idle when nothing draws; the keys Help →
Keyboard shortcuts lists; the first-run hint (gone after any meaningful use); tooltips on the controls. The
viewport renders with backend "auto", as users get it (the CPU path on software OpenGL)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, QRect, QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QScrollArea,
    QScrollBar,
    QSlider,
    QWidget,
)

from app.gui_main import install_features
from app.layout import GEOMETRY_KEY, STATE_KEY
from app.main_window import HINT_DONE_KEY, MainWindow
from app.render_thread import IDLE_AFTER_S, RenderController
from app.session import SessionModel
from app.shortcuts import ShortcutsDialog
from engine.edit.colour_space import image_delta_e as delta_e
from engine.edit.layers import EditLayer
from engine.head.components import LABEL
from engine.prompting import RefineSettings
from engine.semantics.mask_render import render_weights
from engine.view.posing import concat_params
from tests.test_gui_adjust import handle_centre, move
from tests.test_gui_window import wait_current_frame as current_frame

SIZES = [(1280, 800), (1440, 900)]
MAIN_WIDGETS: dict[str, tuple[str, ...]] = {
    # dock -> attributes of its panel that must be in view without scrolling
    "prompt": ("refine_button", "prompt_box"),
    "edit": ("edit_button", "cancel_button", "backend_box"),
    "train": ("start_button", "cancel_button", "plots"),
    "adjust": ("apply_button", "reset_button"),
    "masks": ("components", "refine_button"),
    "layers": ("list", "delete_button", "undo_button"),
    "expression": ("presets",),
}
SELF_EXPLANATORY = {"Reset", "Randomise", "Cancel", "Delete", "Resume", "Loop", "Save…", "Undo", "Redo", "Edit",
                    "Export", "Browse…", "Get a model…", "Open", "Compare before/after"}


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch):
    """make_window(width, height, settings_file=None) -> a full window on the demo avatar, shown at that size."""
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard))
    made: list[tuple[MainWindow, RenderController]] = []

    def make(width: int, height: int, settings_file: str | None = None) -> MainWindow:
        model = SessionModel()
        controller = RenderController(model, backend="auto", max_side=256, progressive=False)  # what users get
        path = settings_file or str(tmp_path / f"settings{len(made)}.ini")
        win = MainWindow(model, controller, settings=QSettings(path, QSettings.Format.IniFormat),
                         data_dir=tmp_path / "data")
        win.resize(width, height)
        install_features(win, state_folder=str(tmp_path / f"state{len(made)}"),
                         refine_settings=RefineSettings(use_embeddings=False))
        qtbot.addWidget(win)
        win.show()
        qtbot.waitExposed(win)
        made.append((win, controller))
        with qtbot.waitSignal(model.avatarChanged, timeout=60_000):
            win.open_avatar(None)
        current_frame(qtbot, win)
        return win

    yield make
    for win, controller in made:
        win.close()
        controller.shutdown()


def in_view(widget: QWidget, area: QWidget) -> bool:
    """widget is shown and lies wholly inside area's visible rectangle (as the user sees it, unscrolled)."""
    top_left = widget.mapTo(area, QPoint(0, 0))
    return widget.isVisible() and area.rect().contains(QRect(top_left, widget.size()))


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_panel_fits_and_shows_its_main_buttons(make_window, qtbot, size):
    win = make_window(*size)
    win.model.set_expression("brow_raise", 0.25)  # an undo item: its name must not widen the Layers column
    long_name = "edit: give her bright red lipstick, thicker darker eyebrows and a big smile, then the hair auburn"
    win.model.set_layers([EditLayer(long_name, "adjust", hidden=torch.arange(5))])  # nor a long layer name
    assert win.size().toTuple() == size
    viewport = win.viewport.size()
    assert viewport.width() >= 0.45 * size[0] and viewport.height() >= 0.8 * size[1], "the avatar keeps the centre"
    window_rect = win.rect()
    for key, dock in win.docks.items():
        dock.raise_()  # the tabbed task panels: each in turn
        qtbot.waitUntil(lambda: dock.isVisible() and not dock.visibleRegion().isEmpty(), timeout=2_000)
        QApplication.processEvents()
        assert window_rect.contains(QRect(dock.mapTo(win, QPoint(0, 0)), dock.size())), f"{key} dock inside the window"
        scroll = dock.widget()
        panel = win.panels[key]
        if isinstance(scroll, QScrollArea):
            assert not scroll.horizontalScrollBar().isVisible(), f"{key}: horizontal scrollbar at {size}"
            assert panel.minimumSizeHint().width() <= scroll.viewport().width(), f"{key}: wider than its dock"
            area = scroll.viewport()
        else:
            assert panel.minimumSizeHint().width() <= dock.width(), f"{key}: wider than its dock"
            area = dock
        for name in MAIN_WIDGETS.get(key, ()):
            widget = getattr(getattr(win.features.get(key), "panel", panel), name)
            assert in_view(widget, area), f"{key}.{name} is not in view without scrolling at {size}"
    layers = win.panels["layers"]
    undo = layers.undo_button
    assert undo.text() == "Undo" and "Change layers" in undo.toolTip(), "what Undo undoes is in its tooltip"
    assert not layers.list.horizontalScrollBar().isVisible(), "a long layer name is elided, not scrolled"
    assert layers.list.item(0).toolTip().startswith(long_name), "the whole name is in the row's tooltip"
    train = win.panels["train"]
    assert train.plots.height() >= 200, "the loss and PSNR plot has real height"
    assert win.dockWidgetArea(win.docks["layers"]) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert not hasattr(win.panels["edit"], "layer_list"), "one layer list: the Layers dock"


def test_export_dialog_fits_and_its_export_button_is_in_view(make_window, qtbot, monkeypatch):
    win = make_window(1280, 800)
    shown: list[QDialog] = []

    def look(dialog: QDialog) -> int:
        dialog.resize(dialog.sizeHint())
        dialog.show()
        qtbot.waitExposed(dialog)
        shown.append(dialog)
        assert dialog.height() <= 800 - 60 and dialog.width() <= 1280
        assert dialog.ok_button.text() == "Export" and in_view(dialog.ok_button, dialog)
        return QDialog.DialogCode.Rejected

    monkeypatch.setattr(QDialog, "exec", look)
    win.features["project"].choose_export()
    assert len(shown) == 1


def test_layout_is_remembered_and_reset_restores_the_default(make_window, qtbot, tmp_path):
    settings = str(tmp_path / "user.ini")
    first = make_window(1280, 800, settings)
    docks = first.docks
    first.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, docks["layers"])
    first.tabifyDockWidget(docks["prompt"], docks["layers"])
    docks["timeline"].setVisible(False)
    first.close()
    assert QSettings(settings, QSettings.Format.IniFormat).value(STATE_KEY) is not None
    second = make_window(1280, 800, settings)
    docks = second.docks
    assert second.dockWidgetArea(docks["layers"]) == Qt.DockWidgetArea.RightDockWidgetArea
    assert docks["layers"] in second.tabifiedDockWidgets(docks["prompt"]), "the user's arrangement came back"
    assert not docks["timeline"].isVisible()
    reset = next(a for a in second.findChildren(QAction) if a.text().replace("&", "") == "Reset layout")
    reset.trigger()
    QApplication.processEvents()
    assert second.dockWidgetArea(docks["layers"]) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert docks["layers"] not in second.tabifiedDockWidgets(docks["prompt"])
    assert docks["timeline"].isVisible() and docks["layers"].isVisible()
    assert {second.dockWidgetArea(docks[k]) for k in ("prompt", "edit", "masks", "adjust", "train")} == {
        Qt.DockWidgetArea.RightDockWidgetArea}
    assert QSettings(settings, QSettings.Format.IniFormat).value(STATE_KEY) is None, "the saved layout is forgotten"
    assert QSettings(settings, QSettings.Format.IniFormat).value(GEOMETRY_KEY) is not None


def test_a_hair_selection_is_visible_in_the_viewport(make_window, qtbot):
    win = make_window(1280, 800)
    docks, masks = win.docks, win.panels["masks"]
    docks["masks"].raise_()
    plain = current_frame(qtbot, win)
    item = next(masks.components.item(i) for i in range(masks.components.count())
                if masks.components.item(i).data(Qt.ItemDataRole.UserRole) == "hair")
    assert in_view(masks.components, docks["masks"].widget().viewport())
    rect = masks.components.visualItemRect(item)
    qtbot.mouseClick(masks.components.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(rect.left() + masks.components.iconSize().width() // 2 + 4, rect.center().y()))
    if item.checkState() != Qt.CheckState.Checked:  # the click landed on the text: tick it as a keyboard user would
        masks.components.setCurrentItem(item)
        QTest.keyClick(masks.components, Qt.Key.Key_Space)
    assert item.checkState() == Qt.CheckState.Checked and masks.ticked() == ["hair"]
    shown = current_frame(qtbot, win)
    assert shown.serial > plain.serial
    avatar = win.model.avatar
    hair = (avatar.gaussians.labels == LABEL["hair"]).float()
    with torch.no_grad():
        splats = avatar.splats(win.model.current_params())
    cover = render_weights(splats, shown.camera, hair, backend="cpu")[..., 0].numpy()
    inside = cover >= 0.9
    assert inside.sum() > 200, "the hair is in view"
    de = delta_e(plain.image, shown.image)
    assert np.median(de[inside]) > 10 and (de[inside] > 10).mean() > 0.9, "the hair changes visibly"
    assert de[cover < 1e-4].max() < 1.0, "nothing else changes"
    win.view_actions["selection"].trigger()  # View → Highlight selection: off
    hidden = current_frame(qtbot, win)
    assert not win.model.view_options.selection
    assert delta_e(plain.image, hidden.image).max() < 1.0, "the highlight can be hidden"


def test_fps_readout_says_idle_when_nothing_draws(make_window, qtbot):
    win = make_window(1280, 800)
    label, viewport = win.status["fps"], win.viewport
    qtbot.waitUntil(lambda: label.text() == "idle", timeout=int(3000 * IDLE_AFTER_S))
    centre = viewport.rect().center()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)
    seen: set[str] = set()
    for i in range(40):  # a slow drag: a move every 40 ms, as long as it takes to see a rate
        QTest.mouseMove(viewport, centre + QPoint(4 * (i + 1), 0))
        qtbot.wait(40)
        seen.add(label.text())
        if label.text().endswith(" fps"):
            break
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre + QPoint(160, 0))
    rates = [t for t in seen if t.endswith(" fps")]
    assert rates and float(rates[0].split()[0]) > 0, f"a rate while frames are drawn, saw {seen}"
    qtbot.waitUntil(lambda: label.text() == "idle", timeout=int(3000 * IDLE_AFTER_S))
    assert win.controller.fps == 0.0


def test_the_listed_shortcuts_work(make_window, qtbot):
    win = make_window(1280, 800)
    model = win.model
    rows = ShortcutsDialog(win).rows()
    keys = {does.split(" → ")[-1]: k for k, does in rows}
    for name in ("Undo", "Redo", "Reset camera", "Play / pause", "Smaller brush", "Larger brush", "Show before edits",
                 "Keyboard shortcuts"):
        assert any(n.startswith(name) for n in keys), f"{name} is listed in Help → Keyboard shortcuts"
    key = lambda name: QKeySequence(next(v for n, v in keys.items() if n.startswith(name)).split(", ")[0])
    win.activateWindow()
    win.viewport.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5_000)

    def press(name: str) -> None:
        combo = key(name)[0]
        QTest.keyClick(win.viewport, combo.key(), combo.keyboardModifiers())

    model.set_expression("smile", 0.7)
    press("Undo")
    assert "smile" not in model.pose.expressions
    press("Redo")
    assert model.pose.expressions["smile"] == pytest.approx(0.7)
    home = model.camera
    model.set_camera(home.orbited(40, 10))
    press("Reset camera")
    assert model.camera == home
    model.set_sequence(concat_params([model.avatar.params] * 3), "three frames")
    press("Play / pause")
    assert model.playing
    press("Play / pause")
    assert not model.playing
    masks = win.panels["masks"]
    size = masks.brush[0]
    press("Larger brush")
    assert masks.brush[0] > size
    press("Smaller brush")
    press("Smaller brush")
    assert masks.brush[0] < size
    hide = torch.nonzero(model.avatar.gaussians.labels == LABEL["hair"])[:, 0]
    from engine.edit.layers import EditLayer

    model.set_layers([EditLayer("hide hair", "adjust", hidden=hide)])
    edited = current_frame(qtbot, win)
    press("Show before edits")
    assert model.view_options.before and win.view_actions["before"].isChecked()
    before = current_frame(qtbot, win)
    assert delta_e(edited.image, before.image).max() > 10, "the hair is back"
    press("Show before edits")
    assert not model.view_options.before


def test_first_run_hint_goes_away_after_use_and_stays_away(make_window, qtbot, tmp_path):
    settings = str(tmp_path / "hint.ini")
    win = make_window(1280, 800, settings)
    viewport = win.viewport
    assert viewport.hint and "orbit" in viewport.hint and "Prompt" in viewport.hint
    bottom = QRect(0, viewport.height() - 90, viewport.width(), 90)
    with_hint = viewport.grab(bottom).toImage()
    centre = viewport.rect().center()
    with qtbot.waitSignal(viewport.hintDismissed, timeout=5_000):
        QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)
        QTest.mouseMove(viewport, centre + QPoint(30, 0))
        QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre + QPoint(30, 0))
    assert viewport.hint == ""
    current_frame(qtbot, win)
    assert viewport.grab(bottom).toImage() != with_hint, "the hint is no longer painted"
    assert QSettings(settings, QSettings.Format.IniFormat).value(HINT_DONE_KEY) in (True, "true")
    again = make_window(1280, 800, settings)
    assert again.viewport.hint == ""


def test_first_run_hint_goes_when_the_user_does_anything_meaningful(make_window, qtbot):
    win = make_window(1280, 800)
    viewport, hint = win.viewport, win.viewport.hint
    assert hint, "opening the first avatar (the app's doing) leaves the hint"
    masks, prompt = win.panels["masks"], win.features["prompt"].panel
    slider = win.panels["expression"].findChild(QSlider, "slider_expr:smile")
    hair = next(masks.components.item(i) for i in range(masks.components.count())
                if masks.components.item(i).data(Qt.ItemDataRole.UserRole) == "hair")
    brightness = win.features["adjust"].panel.sliders["brightness"]
    win.docks["adjust"].raise_()
    timeline = win.panels["timeline"]
    win.model.set_sequence(concat_params([win.model.avatar.params] * 3), "three frames")  # something to scrub

    def scrub() -> None:
        win.model.set_playing(False)  # pressing play has started it
        win.model.set_frame(0)
        drag_handle(timeline.slider, QPoint(timeline.slider.width(), 0))

    actions = {
        "moves a slider": lambda: QTest.keyClick(slider, Qt.Key.Key_PageUp),
        "ticks a component": lambda: hair.setCheckState(Qt.CheckState.Checked),
        "drags an Adjust slider": lambda: drag_there_and_back(brightness, win.model),  # on the hair just ticked
        "presses play": lambda: qtbot.mouseClick(win.panels["timeline"].play, Qt.MouseButton.LeftButton),
        "scrubs the timeline": scrub,
        "presses record": lambda: qtbot.mouseClick(timeline.record, Qt.MouseButton.LeftButton),
        "types a prompt": lambda: QTest.keyClicks(prompt.prompt_box.lineEdit(), "blue lips"),
        "opens an avatar": lambda: win.open_avatar(None),
    }
    for what, act in actions.items():
        viewport.set_hint(hint)
        with qtbot.waitSignal(viewport.hintDismissed, timeout=30_000, raising=False):
            act()
        assert viewport.hint == "", f"the hint stays when the user {what}"
        if what == "scrubs the timeline":
            assert win.model.frame == 2, "the drag reached the last frame"
        if what == "presses record":
            assert win.model.recording
            win.model.stop_recording()


def drag_handle(slider: QSlider, by: QPoint) -> None:
    """A real mouse drag of the slider's handle by `by`."""
    start = handle_centre(slider)
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    move(slider, start + QPoint(by.x() // 2, by.y() // 2))
    move(slider, start + by)
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start + by)


def drag_there_and_back(slider: QSlider, model: SessionModel) -> None:
    """A real mouse drag of the slider's handle 40 px and back: nothing changes, so nothing is undoable."""
    assert slider.isEnabled() and slider.isVisible()
    steps, start = model.undo_stack.count(), handle_centre(slider)
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for dx in (20, 40, 20, 0):
        move(slider, start + QPoint(dx, 0))
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    assert model.undo_stack.count() == steps


def test_controls_that_are_not_self_explanatory_have_tooltips(make_window):
    win = make_window(1280, 800)
    missing = []
    kinds = (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit, QListWidget)
    for key, panel in win.panels.items():
        for widget in panel.findChildren(QWidget):
            if not isinstance(widget, kinds) or isinstance(widget, QScrollBar) or widget.toolTip():
                continue
            if isinstance(widget.parent(), (QComboBox, QAbstractSpinBox)) or widget.parent().toolTip():
                continue  # the line edit inside a combo or spin box; a control its group box explains
            text = widget.text().replace("&", "") if isinstance(widget, QAbstractButton) else ""
            if text in SELF_EXPLANATORY:
                continue
            missing.append(f"{key}: {type(widget).__name__} {text or widget.objectName()!r}")
    assert not missing, "controls without a tooltip:\n" + "\n".join(missing)

