"""Models dialog (Edit → Models…): what each role uses and why, every known or downloaded model with its
size, licence and status, Get / Use / Remove with progress (bytes and rate) and Cancel, the HTTP
endpoints with where their API keys come from, offline mode and a hub mirror.

It computes nothing: it emits requests and shows what it is given (model/view split; no app imports).
A typed key goes out once through `key_save_requested` (to the system keyring) and the field is cleared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

ROLE_TITLES: dict[str, str] = {"editor": "Image editor", "refiner": "Prompt refiner", "parser": "Face parser",
                               "embedder": "Sentence embedder"}
ENDPOINT_ROLES: tuple[str, ...] = ("editor", "refiner")
COLUMNS: tuple[str, ...] = ("Role", "Model", "Status", "Size", "Licence", "Used for", "Unlocks")


class EndpointBox(QGroupBox):
    """URL, server model name and API key of one role's OpenAI-compatible endpoint."""

    def __init__(self, role: str, parent: QWidget | None = None) -> None:
        super().__init__(f"{ROLE_TITLES[role]} endpoint", parent)
        self.role = role
        form = QFormLayout(self)
        self.url_edit = QLineEdit()
        port = 11434 if role == "refiner" else 8000
        self.url_edit.setPlaceholderText(f"http://127.0.0.1:{port}/v1")
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("model name on the server (optional)")
        self.key_status = QLabel("key: none")
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("API key (kept in the system keyring only)")
        self.key_button = QPushButton("Save key")
        self.use_button = QPushButton("Use endpoint")
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.key_button)
        form.addRow("URL", self.url_edit)
        form.addRow("Model", self.model_edit)
        form.addRow(self.key_status)
        form.addRow("Key", key_row)
        form.addRow(self.use_button)


class ModelsDialog(QDialog):
    """Non-modal dialog over the model registry."""

    get_requested = Signal(str, str)  # hub id, role to use it for afterwards ("" = none)
    use_requested = Signal(str, str, str)  # role, source (hub id, folder, URL, or "" = offline default), server model
    remove_requested = Signal(str)  # hub id
    cancel_requested = Signal()
    key_save_requested = Signal(str, str)  # role, key (empty: delete)
    offline_changed = Signal(bool)
    mirror_changed = Signal(str)  # hub mirror URL ("" = HF_ENDPOINT or the Hub)
    pin_changed = Signal(bool)  # Use pins the choice in the open project instead of the user's settings

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(980, 640)
        layout = QVBoxLayout(self)
        self.device_label = QLabel("")
        self.device_label.setWordWrap(True)
        layout.addWidget(self.device_label)
        self.role_labels: dict[str, QLabel] = {}
        roles = QFormLayout()
        for role, title in ROLE_TITLES.items():
            self.role_labels[role] = QLabel("")
            self.role_labels[role].setWordWrap(True)
            roles.addRow(f"{title}:", self.role_labels[role])
        layout.addLayout(roles)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._row_selected)
        layout.addWidget(self.table, 1)
        layout.addLayout(self._build_actions())
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        endpoints = QHBoxLayout()
        self.endpoints = {role: EndpointBox(role) for role in ENDPOINT_ROLES}
        for role, box in self.endpoints.items():
            box.key_button.clicked.connect(lambda _=False, r=role: self._save_key(r))
            box.use_button.clicked.connect(lambda _=False, r=role: self._use_endpoint(r))
            endpoints.addWidget(box)
        layout.addLayout(endpoints)
        layout.addLayout(self._build_options())
        self._rows: list[dict[str, Any]] = []
        self.set_running(False)

    # ---- construction -------------------------------------------------------------------------
    def _build_actions(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.id_edit = QLineEdit()
        self.id_edit.setPlaceholderText("hub id (org/name) or a local model folder")
        self.role_box = QComboBox()
        for role, title in ROLE_TITLES.items():
            self.role_box.addItem(title, role)
        self.get_button = QPushButton("Get")
        self.use_button = QPushButton("Use")
        self.default_button = QPushButton("Use offline default")
        self.remove_button = QPushButton("Remove")
        self.cancel_button = QPushButton("Cancel")
        self.get_button.clicked.connect(lambda: self.get_requested.emit(self.model_id(), self.role()))
        self.use_button.clicked.connect(lambda: self.use_requested.emit(self.role(), self.model_id(), ""))
        self.default_button.clicked.connect(lambda: self.use_requested.emit(self.role(), "", ""))
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self.model_id()))
        self.cancel_button.clicked.connect(self.cancel_requested)
        row.addWidget(self.id_edit, 1)
        row.addWidget(QLabel("for"))
        row.addWidget(self.role_box)
        for button in (self.get_button, self.use_button, self.default_button, self.remove_button, self.cancel_button):
            row.addWidget(button)
        return row

    def _build_options(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.offline_check = QCheckBox("Offline (never reach the hub)")
        self.offline_check.toggled.connect(self.offline_changed)
        self.pin_check = QCheckBox("Use pins the choice in this project")
        self.pin_check.toggled.connect(self.pin_changed)
        self.mirror_edit = QLineEdit()
        self.mirror_edit.setPlaceholderText("hub mirror URL (default: HF_ENDPOINT or the Hub)")
        self.mirror_edit.editingFinished.connect(lambda: self.mirror_changed.emit(self.mirror_edit.text().strip()))
        row.addWidget(self.offline_check)
        row.addWidget(self.pin_check)
        row.addWidget(QLabel("Mirror"))
        row.addWidget(self.mirror_edit, 1)
        return row

    # ---- requests -----------------------------------------------------------------------------
    def model_id(self) -> str:
        return self.id_edit.text().strip()

    def role(self) -> str:
        return str(self.role_box.currentData())

    def _row_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            entry = self._rows[rows[0].row()]
            self.id_edit.setText(entry["id"])
            if entry.get("role") in ROLE_TITLES:
                self.role_box.setCurrentIndex(list(ROLE_TITLES).index(entry["role"]))

    def _save_key(self, role: str) -> None:
        box = self.endpoints[role]
        key = box.key_edit.text()
        box.key_edit.clear()  # the key leaves the widget at once
        self.key_save_requested.emit(role, key)

    def _use_endpoint(self, role: str) -> None:
        box = self.endpoints[role]
        self.use_requested.emit(role, box.url_edit.text().strip(), box.model_edit.text().strip())

    # ---- showing state ------------------------------------------------------------------------
    def set_entries(self, entries: Sequence[dict[str, Any]]) -> None:
        """Rows as ModelEntry.as_dict() gives them."""
        self._rows = list(entries)
        self.table.setRowCount(len(self._rows))
        for i, e in enumerate(self._rows):
            size = f"{e['size_gb']:.2f} GB" if e.get("size_gb") else ""
            values = (ROLE_TITLES.get(e.get("role") or "", "-"), e["id"], e["status"], size, e.get("licence") or "",
                      ", ".join(e.get("used_for") or ()), e.get("unlocks") or "")
            for j, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()

    def row_of(self, model_id: str) -> int:
        return next((i for i, e in enumerate(self._rows) if e["id"] == model_id), -1)

    def set_roles(self, reasons: dict[str, str]) -> None:
        for role, text in reasons.items():
            self.role_labels[role].setText(text)

    def set_device(self, text: str) -> None:
        self.device_label.setText(text)

    def set_key_status(self, role: str, text: str) -> None:
        self.endpoints[role].key_status.setText(f"key: {text}")

    def set_endpoint(self, role: str, url: str, server_model: str) -> None:
        self.endpoints[role].url_edit.setText(url)
        self.endpoints[role].model_edit.setText(server_model)

    def set_options(self, offline: bool, mirror: str, pin: bool, can_pin: bool) -> None:
        for widget, value in ((self.offline_check, offline), (self.pin_check, pin)):
            widget.blockSignals(True)
            widget.setChecked(value)
            widget.blockSignals(False)
        self.pin_check.setEnabled(can_pin)
        self.mirror_edit.setText(mirror)

    def focus(self, role: str, model_id: str) -> None:
        """Preselect a role and a model (what "Get a model…" offers)."""
        self.role_box.setCurrentIndex(list(ROLE_TITLES).index(role))
        self.id_edit.setText(model_id)
        row = self.row_of(model_id)
        if row >= 0:
            self.table.blockSignals(True)
            self.table.selectRow(row)
            self.table.blockSignals(False)

    def set_running(self, running: bool) -> None:
        for button in (self.get_button, self.use_button, self.default_button, self.remove_button):
            button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if not running:
            self.progress_bar.setValue(0)

    def set_progress(self, fraction: float, text: str) -> None:
        self.progress_bar.setValue(int(1000 * max(0.0, min(1.0, fraction))))
        self.status_label.setText(text)

    def show_message(self, text: str) -> None:
        self.status_label.setText(text)
