"""Help → Keyboard shortcuts: every menu action that has a shortcut, read from the menus themselves (so the
list cannot disagree with what the keys do), and the viewport's mouse gestures."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHeaderView, QMenu, QMenuBar, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

MOUSE: tuple[tuple[str, str], ...] = (
    ("Left drag", "Viewport: orbit the camera"),
    ("Shift + left drag, middle drag", "Viewport: pan"),
    ("Wheel", "Viewport: zoom"),
    ("Double-click", "Viewport: reset the camera"),
    ("Left drag (Brush, Eraser, Lasso)", "Viewport: paint the selection (Masks panel tools)"),
)


def menu_shortcuts(bar: QMenuBar) -> list[tuple[str, str, QAction]]:
    """(keys, "Menu → entry", action) of every menu action with a shortcut, in menu order."""
    rows: list[tuple[str, str, QAction]] = []

    def walk(menu: QMenu, path: str) -> None:
        for action in menu.actions():
            name = action.text().replace("&", "")
            if action.menu() is not None:
                walk(action.menu(), f"{path} → {name}")
            elif action.shortcuts():
                keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
                rows.append((keys, f"{path} → {name}", action))

    for top in bar.actions():
        if top.menu() is not None:
            walk(top.menu(), top.text().replace("&", ""))
    return rows


class ShortcutsDialog(QDialog):
    """A two-column table: keys (or mouse gesture) and what they do."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        rows = [(keys, what) for keys, what, _ in menu_shortcuts(window.menuBar())] + list(MOUSE)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Keys", "Does"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for i, (keys, what) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(keys))
            self.table.setItem(i, 1, QTableWidgetItem(what))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, min(640, 80 + 26 * len(rows)))

    def rows(self) -> list[tuple[str, str]]:
        """The table's (keys, does) rows."""
        return [(self.table.item(i, 0).text(), self.table.item(i, 1).text()) for i in range(self.table.rowCount())]
