"""Autosave to a recovery folder, so an unexpected crash costs at most a minute of work.

The GUI calls `note_change()` whenever the project changes and `maybe_save()` from a timer (every few
seconds): a recovery copy is written once the oldest unsaved change is `interval_s` old, so at most one
copy per interval; `save_now()` writes it at once (the GUI calls it when an edit starts). A real save (`saved()`) or a clean exit (`discard()`) deletes the copy. At start,
`pending_recovery()` lists copies newer than their project, to offer them back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.io.atomic import FileFormatError
from engine.project.project_file import PROJECT_SUFFIX, Project, read_manifest, save_project

STATE_ENV = "DYNAMICAVATARS_STATE_DIR"
"""Environment variable overriding the folder of recovery files and the recent-projects list."""


def state_dir() -> Path:
    """$DYNAMICAVATARS_STATE_DIR, else $XDG_STATE_HOME/dynamicavatars, else ~/.local/state/dynamicavatars."""
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dynamicavatars"


def recovery_dir() -> Path:
    """Where recovery copies are written."""
    return state_dir() / "recovery"


@dataclass(frozen=True)
class RecoveryFile:
    """A recovery copy found at start."""

    path: Path  # the recovery .dap file (open it with load_project)
    project_path: Path | None  # the project it is a copy of; None for a project never saved
    saved_at: float  # when the copy was written, seconds since the epoch
    name: str  # the avatar's name, to show in the prompt


def pending_recovery(folder: str | os.PathLike | None = None) -> list[RecoveryFile]:
    """Readable recovery copies newer than their project (or of unsaved projects), newest first."""
    root = Path(folder) if folder is not None else recovery_dir()
    found: list[RecoveryFile] = []
    for file in root.glob(f"*{PROJECT_SUFFIX}") if root.is_dir() else []:
        try:
            manifest = read_manifest(file)
        except FileFormatError:
            continue  # not ours or damaged: never offered, never deleted
        origin = manifest.get("recovery_of")
        project = Path(origin) if isinstance(origin, str) else None
        saved_at = float(manifest.get("saved_at") or file.stat().st_mtime)
        if project is not None and project.is_file() and project.stat().st_mtime >= saved_at:
            continue  # the project was saved after this copy
        found.append(RecoveryFile(file, project, saved_at, str(manifest.get("name") or file.stem)))
    return sorted(found, key=lambda r: r.saved_at, reverse=True)


def discard_recovery(recovery: RecoveryFile | str | os.PathLike) -> None:
    """Delete a recovery copy (after it was restored and saved, or the user declined it)."""
    path = recovery.path if isinstance(recovery, RecoveryFile) else Path(recovery)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class Autosaver:
    """Writes a recovery copy of the project at most once per interval of unsaved changes.

    snapshot: returns the current Project (called only when a copy is written).
    now arguments are time.monotonic() seconds; tests pass their own clock.
    """

    def __init__(self, snapshot: Callable[[], Project], project_path: str | os.PathLike | None = None,
                 folder: str | os.PathLike | None = None, interval_s: float = 60.0) -> None:
        self._snapshot = snapshot
        self.folder = Path(folder) if folder is not None else recovery_dir()
        self.interval_s = interval_s  # longest time a change may stay without a recovery copy
        self._session = uuid.uuid4().hex[:10]
        self._project_path: Path | None = None
        self._since: float | None = None  # monotonic time of the oldest change not in a copy
        self.last_error: str | None = None  # why the last copy failed (it is retried next interval)
        self.set_project_path(project_path)

    @property
    def project_path(self) -> Path | None:
        return self._project_path

    @property
    def recovery_path(self) -> Path:
        """This session's recovery file (named per session: a copy left by a crashed session is never overwritten)."""
        if self._project_path is None:
            return self.folder / f"untitled-{self._session}{PROJECT_SUFFIX}"
        digest = hashlib.sha1(str(self._project_path).encode("utf-8")).hexdigest()[:10]
        return self.folder / f"{self._project_path.stem}-{digest}-{self._session}{PROJECT_SUFFIX}"

    @property
    def dirty(self) -> bool:
        """True when there are changes not yet in a recovery copy."""
        return self._since is not None

    def set_project_path(self, path: str | os.PathLike | None) -> None:
        """The project now lives at path (Open, Save As); the old recovery copy goes."""
        new = Path(path).resolve() if path is not None else None
        if new != self._project_path:
            self.discard()
            self._project_path = new

    def note_change(self, now: float | None = None) -> None:
        """Something in the project changed."""
        if self._since is None:
            self._since = time.monotonic() if now is None else now

    def maybe_save(self, now: float | None = None) -> Path | None:
        """Write the recovery copy if the oldest unsaved change is interval_s old; returns its path or None."""
        t = time.monotonic() if now is None else now
        if self._since is None or t - self._since < self.interval_s:
            return None
        return self._write(t)

    def save_now(self) -> Path | None:
        """Write the recovery copy now if anything changed since the last one (before a long job, the likeliest
        moment for a crash); returns its path, or None when nothing was pending or writing failed."""
        return None if self._since is None else self._write(time.monotonic())

    def _write(self, t: float) -> Path | None:
        try:
            path = save_project(self._snapshot(), self.recovery_path, recovery_of=self._project_path)
        except Exception as exc:  # noqa: BLE001 - a failed autosave must not take the app down
            self.last_error = f"autosave to {self.recovery_path} failed: {exc}"
            self._since = t  # try again one interval later
            return None
        self.last_error = None
        self._since = None
        return path

    def saved(self, path: str | os.PathLike | None = None) -> None:
        """The user saved the project (to path, if given): nothing is pending, the copy goes."""
        if path is not None:
            self.set_project_path(path)
        self._since = None
        self.discard()

    def discard(self) -> None:
        """Delete this session's recovery copy (clean exit, or the changes were thrown away)."""
        with contextlib.suppress(FileNotFoundError):
            self.recovery_path.unlink()

    def pending_recovery(self) -> list[RecoveryFile]:
        """Recovery copies in this saver's folder other than its own (see module pending_recovery)."""
        own = self.recovery_path
        return [r for r in pending_recovery(self.folder) if r.path != own]
