"""Where the docks go: the default layout, the user's own (remembered), and View → Reset layout.

The default, made to work from 1280×800 up: the expression sliders with the layer list under them in a
left column; the task panels (Prompt, Edit, Masks, Adjust, Train) as one tab group in a right column as
tall as the window, so a panel's main button and the training plot are in view without scrolling; the
timeline under the viewport. Column widths follow the window's width, and the right column is never
narrower than its widest panel needs (no horizontal scrollbar). A dock this module does not know joins
the tab group (right), the left column or the bottom, by the area its PanelSpec asks for.

The user's arrangement (QMainWindow.saveState) is stored in the window's QSettings when it closes and
restored when it opens; a state saved by another LAYOUT_VERSION is ignored.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import QDockWidget, QScrollArea, QStyle, QTabWidget

LEFT: tuple[str, ...] = ("expression", "layers")  # stacked top to bottom in the left column
TASKS: tuple[str, ...] = ("prompt", "edit", "masks", "adjust", "train")  # one tab group, right column
BOTTOM: tuple[str, ...] = ("timeline",)  # under the viewport
LEFT_SHARE, RIGHT_SHARE = 0.22, 0.28  # of the window's width, before the limits below
LEFT_WIDTH = (250, 320)  # pixels
RIGHT_WIDTH = (380, 480)
LAYERS_HEIGHT = 210  # pixels of the layer dock under the sliders
LAYOUT_VERSION = 2  # bump when the default changes: older saved states are then ignored
STATE_KEY = "layout/state"
GEOMETRY_KEY = "layout/geometry"

Area = Qt.DockWidgetArea


def _clamp(value: float, limits: tuple[int, int]) -> int:
    return int(min(limits[1], max(limits[0], round(value))))


def needed_width(dock: QDockWidget) -> int:
    """Width a dock needs to show its panel without a horizontal scrollbar (room for a vertical one)."""
    widget = dock.widget()
    if not isinstance(widget, QScrollArea):
        return widget.minimumSizeHint().width()
    bar = dock.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
    return widget.widget().minimumSizeHint().width() + bar + 2 * widget.frameWidth() + 4


def groups(window: Any) -> tuple[list[QDockWidget], list[QDockWidget], list[QDockWidget]]:
    """(left column, right tab group, bottom) docks of a window, known ones first in their order."""
    docks, specs = window.docks, window.specs
    known = [*LEFT, *TASKS, *BOTTOM]
    extra = [k for k in docks if k not in known]
    pick = lambda names, area: [docks[k] for k in names if k in docks] + [docks[k] for k in extra if specs[k].area == area]
    return pick(LEFT, Area.LeftDockWidgetArea), pick(TASKS, Area.RightDockWidgetArea), pick(BOTTOM, Area.BottomDockWidgetArea)


def apply_default_layout(window: Any) -> None:
    """Arrange every dock of a MainWindow the default way, sized for the window's current width."""
    left, right, bottom = groups(window)
    window.setTabPosition(Area.AllDockWidgetAreas, QTabWidget.TabPosition.North)
    window.setCorner(Qt.Corner.BottomLeftCorner, Area.LeftDockWidgetArea)
    window.setCorner(Qt.Corner.BottomRightCorner, Area.RightDockWidgetArea)
    for dock in window.docks.values():
        dock.setFloating(False)
        window.removeDockWidget(dock)
    for area, column in ((Area.LeftDockWidgetArea, left), (Area.BottomDockWidgetArea, bottom)):
        for dock in column:
            window.addDockWidget(area, dock, Qt.Orientation.Vertical)
    for i, dock in enumerate(right):
        window.addDockWidget(Area.RightDockWidgetArea, dock)
        if i:
            window.tabifyDockWidget(right[0], dock)
    for key, dock in window.docks.items():
        dock.setVisible(window.specs[key].visible)
    if right:
        right[0].raise_()
    fit_columns(window)
    window.fit_on_show = not window.isVisible()  # dock sizes set before the first show do not all hold


def on_first_show(window: Any) -> None:
    """The window is shown: size the default columns now that sizes hold (unless the user's layout was restored)."""
    if window.fit_on_show:
        window.fit_on_show = False
        fit_columns(window)


def fit_columns(window: Any) -> None:
    """Size the default columns for the window's width (and the layer list and timeline heights)."""
    left, right, bottom = groups(window)
    width = window.width()
    sizes = []
    if left:
        need = max(needed_width(d) for d in left)
        sizes.append((left[0], max(need, _clamp(LEFT_SHARE * width, LEFT_WIDTH))))
    if right:
        need = max(needed_width(d) for d in right)
        sizes.append((right[0], max(need, _clamp(RIGHT_SHARE * width, RIGHT_WIDTH))))
    if sizes:
        window.resizeDocks([d for d, _ in sizes], [w for _, w in sizes], Qt.Orientation.Horizontal)
    if len(left) > 1:  # Qt scales the sizes to the column's height: give the exact split
        column = left[0].height() + left[1].height()
        window.resizeDocks(left[:2], [max(200, column - LAYERS_HEIGHT), LAYERS_HEIGHT], Qt.Orientation.Vertical)
    if bottom:
        window.resizeDocks(bottom[:1], [bottom[0].sizeHint().height()], Qt.Orientation.Vertical)


def save_layout(window: Any) -> None:
    """Remember the window's dock arrangement and geometry in its settings."""
    window.settings.setValue(STATE_KEY, window.saveState(LAYOUT_VERSION))
    window.settings.setValue(GEOMETRY_KEY, window.saveGeometry())


def restore_layout(window: Any) -> bool:
    """Put the docks where the user left them (False, and nothing changed, when there is no usable saved state)."""
    state = window.settings.value(STATE_KEY)
    restored = isinstance(state, QByteArray) and not state.isEmpty() and window.restoreState(state, LAYOUT_VERSION)
    if restored:
        window.fit_on_show = False
    return restored


def restore_geometry(window: Any) -> bool:
    """The window's size and place as the user left them (False when none was saved)."""
    geometry = window.settings.value(GEOMETRY_KEY)
    return isinstance(geometry, QByteArray) and not geometry.isEmpty() and window.restoreGeometry(geometry)


def forget_layout(window: Any) -> None:
    window.settings.remove(STATE_KEY)
