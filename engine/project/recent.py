"""The recent-projects list (File > Open Recent), kept as JSON in the state folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine.io.atomic import atomic_write
from engine.project.autosave import state_dir


class RecentProjects:
    """Most recently opened or saved project files, newest first, at most `limit` of them."""

    def __init__(self, file: str | os.PathLike | None = None, limit: int = 10) -> None:
        self.file = Path(file) if file is not None else state_dir() / "recent_projects.json"
        self.limit = limit  # entries kept

    def _read(self) -> list[str]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return []  # missing or damaged: start a new list (it holds nothing that cannot be rebuilt)
        entries = data.get("recent") if isinstance(data, dict) else None
        return [e for e in entries if isinstance(e, str)] if isinstance(entries, list) else []

    def _write(self, entries: list[str]) -> None:
        with atomic_write(self.file, "w") as fh:
            json.dump({"version": 1, "recent": entries[: self.limit]}, fh, indent=1)

    def paths(self) -> list[Path]:
        """Recent project files that still exist, newest first."""
        return [Path(e) for e in self._read() if Path(e).is_file()]

    def add(self, path: str | os.PathLike) -> None:
        """Put path at the top of the list."""
        entry = str(Path(path).resolve())
        self._write([entry] + [e for e in self._read() if e != entry])

    def remove(self, path: str | os.PathLike) -> None:
        """Drop path from the list (e.g. it failed to open)."""
        entry = str(Path(path).resolve())
        self._write([e for e in self._read() if e != entry])
