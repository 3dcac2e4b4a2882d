"""The layer list: every edit layer of the session with its kind and an enabled checkbox; Delete,
Revert region (the layer no longer touches the selected Gaussians: `EditLayer.without`), and Undo /
Redo buttons bound to the model's QUndoStack.

Long layer names are elided in the middle (the whole name is the row's tooltip). The list is a view of
`model.layers` (rebuilt on layersChanged, with its own signals blocked); every
button writes back through `model.set_layers(...)`, so each action is one undo item.

Hook for a split before/after view: `compare_button` (checkable, hidden) emits `compare_toggled(bool)`;
whoever implements the split calls `enable_compare(True)` and connects to the signal.

The model is typed as widgets.session_view.SessionView (app.session.SessionModel provides it).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from widgets.session_view import SessionView

REVERT_THRESHOLD = 0.5
"""Selection weight from which a Gaussian counts as inside the region to revert."""

ID_ROLE = Qt.ItemDataRole.UserRole
"""Item data role holding the layer id."""

LIST_MIN_HEIGHT = 64  # pixels: three rows at least


class LayersPanel(QWidget):
    """List of the session's edit layers with enable, delete, revert-region, undo and redo."""

    compare_toggled = Signal(bool)  # split before/after view asked for (see enable_compare)

    def __init__(self, model: SessionView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.list = QListWidget()
        self.list.setObjectName("layerList")
        # stretches with the dock; its preferred height must not be what a scrolling dock gives it
        self.list.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.list.setMinimumHeight(LIST_MIN_HEIGHT)
        # a long layer name (a whole prompt) is elided in the middle, keeping its start and its kind, and
        # shown whole in the row's tooltip; the column never grows a horizontal scrollbar
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.itemChanged.connect(self._item_changed)
        self.list.currentRowChanged.connect(lambda _row: self._sync_buttons())
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Remove the chosen layer")
        self.delete_button.clicked.connect(self.delete_current)
        self.revert_button = QPushButton("Revert region")
        self.revert_button.setToolTip("Undo the chosen layer's change inside the current selection only")
        self.revert_button.clicked.connect(self.revert_current)
        stack = model.undo_stack
        self.undo_button, self.redo_button = QToolButton(), QToolButton()
        for button, prefix, make in ((self.undo_button, "Undo", stack.createUndoAction),
                                     (self.redo_button, "Redo", stack.createRedoAction)):
            action = make(self, prefix)
            # the button shows a fixed icon text; the action's text ("Undo Change brow_raise", too wide for
            # the column) is its tooltip
            action.setIconText(prefix)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.compare_button = QPushButton("Before | after")
        self.compare_button.setCheckable(True)
        self.compare_button.toggled.connect(self.compare_toggled)
        self.compare_button.setVisible(False)
        self.empty_label = QLabel("No edit layers yet: Apply an adjustment or run an edit.")
        self.empty_label.setWordWrap(True)
        self.list.setToolTip("Every change is a layer: untick to hide it, pick one to delete or revert it")
        self.compare_button.setToolTip("Before and after the layers, side by side")
        buttons = QGridLayout()  # two rows: fits a 250 px column
        for i, w in enumerate((self.delete_button, self.revert_button, self.undo_button, self.redo_button)):
            w.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            buttons.addWidget(w, i // 2, i % 2)
        buttons.addWidget(self.compare_button, 2, 0, 1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_label)
        layout.addLayout(buttons)
        model.layersChanged.connect(self.refresh)
        model.selectionChanged.connect(self._sync_buttons)
        self.refresh()

    # ---- public ------------------------------------------------------------------------------
    def enable_compare(self, on: bool = True) -> None:
        """Show the before/after toggle (for the component that draws the split view)."""
        self.compare_button.setVisible(on)

    def current_index(self) -> int:
        """Index in model.layers of the chosen row, or -1."""
        return self.list.currentRow()

    def refresh(self) -> None:
        """Rebuild the rows from model.layers, keeping the chosen layer chosen."""
        layers = self.model.layers
        current = self.list.currentItem()
        keep_id = current.data(ID_ROLE) if current is not None else None
        self.list.blockSignals(True)
        self.list.clear()
        for layer in layers:
            item = QListWidgetItem(f"{layer.name}   ·   {layer.kind}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if layer.enabled else Qt.CheckState.Unchecked)
            item.setData(ID_ROLE, layer.id)
            item.setToolTip(f"{layer.name}\n{layer.kind} layer changing {int(layer.touched.numel()):,} Gaussians")
            self.list.addItem(item)
        ids = [layer.id for layer in layers]
        row = ids.index(keep_id) if keep_id in ids else len(layers) - 1
        self.list.setCurrentRow(row)
        self.list.blockSignals(False)
        self.empty_label.setVisible(not layers)
        self._sync_buttons()

    def set_enabled(self, index: int, enabled: bool) -> None:
        layers = list(self.model.layers)
        if layers[index].enabled == enabled:
            return
        layers[index] = layers[index].toggled(enabled)
        self.model.set_layers(layers, f"{'Enable' if enabled else 'Disable'} {layers[index].name}")

    def delete_current(self) -> None:
        index = self.current_index()
        if index < 0:
            return
        layers = list(self.model.layers)
        removed = layers.pop(index)
        self.model.set_layers(layers, f"Delete {removed.name}")

    def revert_current(self) -> None:
        """The chosen layer without effect on the selected Gaussians (weights >= REVERT_THRESHOLD)."""
        index, selection = self.current_index(), self.model.selection
        if index < 0 or selection is None:
            return
        layers = list(self.model.layers)
        layers[index] = layers[index].without(selection >= REVERT_THRESHOLD)
        self.model.set_layers(layers, f"Revert region of {layers[index].name}")

    # ---- internals ---------------------------------------------------------------------------
    def _item_changed(self, item: QListWidgetItem) -> None:
        self.set_enabled(self.list.row(item), item.checkState() == Qt.CheckState.Checked)

    def _sync_buttons(self) -> None:
        chosen = self.current_index() >= 0
        self.delete_button.setEnabled(chosen)
        selection = self.model.selection
        self.revert_button.setEnabled(chosen and selection is not None and bool((selection >= REVERT_THRESHOLD).any()))

