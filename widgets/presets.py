"""Named expression presets: a versioned JSON file of poses, and the small bar that applies and saves them.

File format (written atomically):
    {"format": "dynamicavatars-presets", "version": 1,
     "presets": {"happy": {"expressions": {"smile": 0.8}, "jaw": 0.0, "yaw": 0.0, ...}, ...}}
Built-in presets are offered when the head has the expressions they use; a saved preset with the
same name takes their place.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, fields
from pathlib import Path

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QInputDialog, QMessageBox, QToolButton, QWidget

from engine.avatar.posing import Pose
from engine.io.atomic import FileFormatError, atomic_write
from widgets.session_view import SessionView

PRESETS_FORMAT = "dynamicavatars-presets"
PRESETS_VERSION = 1
POSE_ANGLES: tuple[str, ...] = tuple(f.name for f in fields(Pose) if f.name != "expressions")

BUILTIN_PRESETS: dict[str, Pose] = {
    "Neutral": Pose(),
    "Happy": Pose(expressions={"smile": 0.8, "squint": 0.25}),
    "Sad": Pose(expressions={"frown": 0.7, "brow_furrow": 0.3}),
    "Surprised": Pose(expressions={"brow_raise": 0.9}, jaw=math.radians(14)),
    "Angry": Pose(expressions={"brow_furrow": 0.9, "frown": 0.35, "nose_wrinkle": 0.4}),
    "Wink": Pose(expressions={"blink_left": 1.0, "smile": 0.45, "mouth_left": 0.2}),
    "Kiss": Pose(expressions={"pucker": 0.9}),
    "Look left": Pose(yaw=25.0, gaze_x=15.0),
}
"""Presets for the demo head's named expressions (hidden for heads that lack a name they use)."""


def pose_to_json(pose: Pose) -> dict:
    data = asdict(pose)
    data["expressions"] = {str(k): float(v) for k, v in pose.expressions.items()}
    return data


def pose_from_json(data: object, origin: str) -> Pose:
    """A Pose from its JSON form; raises FileFormatError naming origin and the bad field."""
    if not isinstance(data, dict):
        raise FileFormatError(origin, "a preset must be a JSON object")
    unknown = set(data) - {"expressions", *POSE_ANGLES}
    if unknown:
        raise FileFormatError(origin, f"unknown preset fields {', '.join(sorted(unknown))}")
    expressions = data.get("expressions", {})
    if not isinstance(expressions, dict):
        raise FileFormatError(origin, "preset 'expressions' must map names to numbers")
    values: dict[str, float] = {}
    for key in POSE_ANGLES:
        values[key] = _number(data.get(key, 0.0), origin, key)
    exprs = {str(k): _number(v, origin, f"expression {k}") for k, v in expressions.items()}
    return Pose(expressions=exprs, **values)


def _number(value: object, origin: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise FileFormatError(origin, f"{name} must be a finite number, got {value!r}")
    return float(value)


def load_presets(path: str | os.PathLike) -> dict[str, Pose]:
    """Saved presets by name ({} when the file does not exist)."""
    p = Path(path)
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(p, f"not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != PRESETS_FORMAT:
        raise FileFormatError(p, f"not a presets file (expected \"format\": \"{PRESETS_FORMAT}\")")
    if not isinstance(data.get("version"), int) or data["version"] > PRESETS_VERSION:
        raise FileFormatError(p, f"presets format version {data.get('version')!r} is not supported")
    presets = data.get("presets", {})
    if not isinstance(presets, dict):
        raise FileFormatError(p, "'presets' must be an object of named poses")
    return {str(name): pose_from_json(value, f"{p} (preset {name!r})") for name, value in presets.items()}


def save_presets(path: str | os.PathLike, presets: dict[str, Pose]) -> None:
    data = {"format": PRESETS_FORMAT, "version": PRESETS_VERSION,
            "presets": {name: pose_to_json(pose) for name, pose in presets.items()}}
    with atomic_write(path, "w") as fh:
        json.dump(data, fh, indent=2)


def available_presets(saved: dict[str, Pose], expression_names: tuple[str, ...], any_names: bool) -> dict[str, Pose]:
    """Built-ins usable with these expression names, then saved presets (saved ones win on a name clash).

    any_names: the head takes expr_<i> names (real FLAME), so built-ins using demo names are left out.
    """
    usable = {name: pose for name, pose in BUILTIN_PRESETS.items()
              if all(e in expression_names for e in pose.expressions) and not (any_names and pose.expressions)}
    usable.update(saved)
    return usable


class PresetBar(QWidget):
    """A preset chooser (applies on selection) with Save and Delete buttons; presets live in a JSON file."""

    def __init__(self, model: SessionView, path: str | os.PathLike, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model, self.path = model, Path(path)
        self.combo = QComboBox()
        self.combo.setToolTip("Apply a named expression preset")
        self.combo.setMinimumContentsLength(10)
        save = QToolButton(text="Save…", toolTip="Save the current expression and pose as a preset")
        delete = QToolButton(text="Delete", toolTip="Delete the chosen saved preset")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(save)
        layout.addWidget(delete)
        self.combo.activated.connect(self._apply)
        save.clicked.connect(self.save_current)
        delete.clicked.connect(self.delete_selected)
        model.avatarChanged.connect(self.refresh)
        self._saved: dict[str, Pose] = {}
        self.refresh()

    def presets(self) -> dict[str, Pose]:
        head = self.model.avatar.head if self.model.avatar is not None else None
        names = head.expression_names if head is not None else ()
        return available_presets(self._saved, names, head is not None and not names)

    def refresh(self) -> None:
        try:
            self._saved = load_presets(self.path)
        except FileFormatError as exc:
            self._saved = {}
            self.model.message.emit(f"Presets not loaded: {exc}")
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem("Presets…")
        self.combo.addItems(list(self.presets()))
        self.combo.blockSignals(False)

    def _apply(self, index: int) -> None:
        name = self.combo.itemText(index)
        pose = self.presets().get(name) if index > 0 else None
        if pose is not None and self.model.avatar is not None:
            try:
                self.model.set_pose(pose, text=f"Preset {name}")
            except ValueError as exc:  # a saved preset naming expressions this head lacks
                QMessageBox.warning(self, "Preset not applied", str(exc))
        self.combo.setCurrentIndex(0)

    def save_current(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", "Preset name:")
        name = name.strip() if ok else ""
        if not name:
            return
        self._saved[name] = self.model.pose
        try:
            save_presets(self.path, self._saved)
        except OSError as exc:
            QMessageBox.warning(self, "Preset not saved", f"{self.path}: {exc}")
            return
        self.refresh()
        self.model.message.emit(f"Saved preset {name!r}")

    def delete_selected(self) -> None:
        names = [n for n in self._saved]
        if not names:
            self.model.message.emit("No saved presets to delete (built-in presets stay)")
            return
        name, ok = QInputDialog.getItem(self, "Delete preset", "Saved preset:", names, 0, False)
        if ok and name in self._saved:
            del self._saved[name]
            save_presets(self.path, self._saved)
            self.refresh()
