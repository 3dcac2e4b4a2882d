"""Project files and export in the GUI: File > Save / Save As / Open Project / Open Recent Project /
Export…, autosave with crash recovery, and the unsaved-changes question on close.

A project (engine.project.Project) is a snapshot of the session: the base avatar, its layers, the
current selection (as the named selection "current") and any other named selections it was opened
with, the shown sequence and parameters, camera/pose/frame in `ui`, plus parts that other
controllers contribute with `add_part(save, load, changed)` (the prompt history does). Loading runs
on a worker; the session changes only once a file was read completely, so a bad file leaves the
current work as it was. Errors become dialogs, never tracebacks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import QObject, Qt, QTimer, Signal, SignalInstance
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QFileDialog, QMenu, QMessageBox, QProgressDialog

from app.workers import Job, WorkCancelled, Worker
from engine.avatar.posing import Pose
from engine.edit.layers import EditLayer
from engine.io.atomic import WriteFailed
from engine.project.autosave import Autosaver, RecoveryFile, discard_recovery
from engine.project.project_file import MissingFlameModelError, Project, load_project, save_project
from engine.project.recent import RecentProjects
from engine.view.camera import CameraState
from engine.view.posing import posed_params
from widgets.export_dialog import ExportDialog, ExportRequest

PROJECT_FILTER = "DynamicAvatars projects (*.dap);;All files (*)"
CURRENT_SELECTION = "current"  # name of the session's selection inside a project
AUTOSAVE_POLL_MS = 5_000  # how often the autosaver is asked whether a recovery copy is due


@dataclass(frozen=True)
class NeedsFlameModel:
    """Result of a load job when the project's FLAME model file is missing (ask the user for it)."""

    model_path: str


def load_project_job(progress: Callable[[float, str], None], cancel: Callable[[], bool], path: str,
                     head: str | None = None) -> Project | NeedsFlameModel:
    progress(0.0, f"Opening {Path(path).name}")
    try:
        return load_project(path, head=head)
    except MissingFlameModelError as exc:
        return NeedsFlameModel(str(exc.model_path))


def composed_mask(mask: torch.Tensor, layers: list[EditLayer], composed_count: int) -> torch.Tensor:
    """A base selection [N_base] carried to the Gaussians of compose(base, layers) [composed_count]
    (hidden ones dropped, added ones unselected)."""
    keep = torch.ones(mask.shape[0], dtype=torch.bool)
    for layer in layers:
        if layer.enabled:
            keep[layer.hidden] = False
    kept = mask.float()[keep]
    return torch.cat([kept, kept.new_zeros(composed_count - kept.shape[0])])


def export_job(progress: Callable[[float, str], None], cancel: Callable[[], bool], request: ExportRequest,
               project: Project, current: Any) -> Path:
    """Worker job: one export (current = the session's shown parameters [T=1], layer offsets included)."""
    from engine.export.splat_export import export_gaussianavatars, export_standard_ply
    from engine.export.video import ExportCancelled, VideoJob, export_frames, export_video, load_sequence

    avatar, offset = project.composed_avatar(), project.pose_offset()
    progress(0.0, "Preparing export")
    if request.kind == "splats":
        return export_standard_ply(avatar, request.path, current, None)
    if request.kind == "gaussianavatars":
        own = project.sequence if project.sequence is not None else project.avatar.params
        return export_gaussianavatars(avatar, request.path, own, offset)
    own = project.sequence if project.sequence is not None else project.avatar.params
    seq = current["held"] if request.motion == "held" else own
    if request.motion == "file":
        seq = load_sequence(request.sequence_file, project.avatar)
    mask = None
    if request.mask_selection:
        mask = composed_mask(project.selections[request.mask_selection], project.layers, avatar.gaussians.count)
    original = project.avatar if request.settings.side_by_side else None
    job = VideoJob(avatar, seq, request.camera_path, original, mask, offset)
    run = export_video if request.kind == "video" else export_frames
    try:
        return run(job, request.path, request.settings, progress=progress, cancel=cancel).path
    except ExportCancelled as exc:
        raise WorkCancelled(str(exc)) from None


@dataclass(frozen=True)
class ProjectPart:
    """Something another controller keeps in the project (prompt history, brushes, ...)."""

    save: Callable[[Project], None]  # write its data into the snapshot being saved
    load: Callable[[Project], None]  # take its data from a project just opened


class ProjectController(QObject):
    """Save / open / recent / autosave / recovery / export for one MainWindow."""

    opened = Signal(str)  # project path after a successful open (the recovery file for a restore)
    saved = Signal(str)
    exported = Signal(str)

    def __init__(self, window: Any, state_folder: str | os.PathLike | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent or window)
        self.window, self.model = window, window.model
        folder = Path(state_folder) if state_folder is not None else None
        self.autosaver = Autosaver(self.snapshot, folder=None if folder is None else folder / "recovery")
        self.recent = RecentProjects(None if folder is None else folder / "recent_projects.json")
        self.path: Path | None = None
        self.modified = False
        self.parts: list[ProjectPart] = []
        self.selections: dict[str, torch.Tensor] = {}  # named selections of the project besides the current one
        self.presets: dict[str, Any] = {}
        self.opening = Job("open project", self, exclusive=False)  # the newest open wins
        self.exporting = Job("export", self, exclusive=False)
        self._loading = False
        m = self.model
        m.undo_stack.indexChanged.connect(self._changed)
        m.sequenceChanged.connect(self._sequence_changed)
        m.avatarChanged.connect(self._avatar_changed)
        self._timer = QTimer(self, interval=AUTOSAVE_POLL_MS)
        self._timer.timeout.connect(self.autosave_tick)
        self._timer.start()

    # ---- snapshot ----------------------------------------------------------------------------
    def add_part(self, save: Callable[[Project], None], load: Callable[[Project], None],
                 changed: SignalInstance | None = None) -> None:
        """Let another controller keep data in the project; `changed` marks the project modified."""
        self.parts.append(ProjectPart(save, load))
        if changed is not None:
            changed.connect(self._changed)

    def snapshot(self) -> Project:
        """The session as a Project (raises RuntimeError without an avatar)."""
        m = self.model
        if m.avatar is None:
            raise RuntimeError("no avatar loaded")
        selections = dict(self.selections)
        if m.selection is not None:
            selections[CURRENT_SELECTION] = m.selection.clone()
        ui = {"camera": asdict(m.camera), "pose": asdict(m.pose), "frame": m.frame, "sequence_name": m.sequence_name}
        project = Project(avatar=m.avatar, layers=list(m.layers), selections=selections, presets=dict(self.presets),
                          ui=ui, sequence=None if m.sequence is m.avatar.params else m.sequence,
                          current_params=m.current_params())
        for part in self.parts:
            part.save(project)
        return project

    def apply_project(self, project: Project) -> None:
        """Show a project in the session (undo history starts empty)."""
        m, ui = self.model, project.ui
        self._loading = True
        try:
            m.set_avatar(project.avatar, None)
            if project.sequence is not None:
                m.set_sequence(project.sequence, str(ui.get("sequence_name") or "project sequence"))
            if project.layers:
                m.set_layers(project.layers, "Open project")
            if isinstance(ui.get("pose"), dict):
                m.set_pose(Pose(**ui["pose"]))
            sel = project.selections.get(CURRENT_SELECTION)
            if sel is not None and sel.shape == (project.avatar.gaussians.count,):
                m.set_selection(sel.float())
            if isinstance(ui.get("camera"), dict):
                cam = dict(ui["camera"])
                m.set_camera(CameraState(**{**cam, "target": tuple(cam.get("target", (0.0, 0.0, 0.0)))}))
            m.set_frame(int(ui.get("frame", 0)), force=True)
            self.selections = {k: v for k, v in project.selections.items() if k != CURRENT_SELECTION}
            self.presets = dict(project.presets)
            for part in self.parts:
                part.load(project)
            m.undo_stack.clear()
            m.undo_stack.setClean()
        finally:
            self._loading = False

    # ---- save --------------------------------------------------------------------------------
    def save(self) -> bool:
        return self.save_to(self.path) if self.path is not None else self.save_as()

    def save_as(self) -> bool:
        if self.model.avatar is None:
            return False
        start = str(self.path or Path(str(self.window.settings.value("last_dir", str(Path.home())))) / "untitled.dap")
        chosen, _ = QFileDialog.getSaveFileName(self.window, "Save project", start, PROJECT_FILTER)
        if not chosen:
            return False
        path = Path(chosen)
        return self.save_to(path if path.suffix else path.with_suffix(".dap"))

    def save_to(self, path: str | os.PathLike) -> bool:
        """Write the project (atomically); False after showing why it failed."""
        path = Path(path)
        try:
            self.window.setCursor(Qt.CursorShape.WaitCursor)
            save_project(self.snapshot(), path)
        except (OSError, ValueError, RuntimeError) as exc:
            message = str(exc) if isinstance(exc, WriteFailed) else f"{path}: {exc}"  # WriteFailed names the file
            QMessageBox.critical(self.window, "Could not save project", message)
            return False
        finally:
            self.window.unsetCursor()
        self.path = path.resolve()
        self.autosaver.saved(self.path)
        self.recent.add(self.path)
        self.model.undo_stack.setClean()
        self._set_modified(False)
        self.model.message.emit(f"Saved {path.name}")
        self.saved.emit(str(self.path))
        return True

    # ---- open --------------------------------------------------------------------------------
    def choose_project(self) -> Worker | None:
        if not self.confirm_discard():
            return None
        path, _ = QFileDialog.getOpenFileName(self.window, "Open project", str(self.path or Path.home()), PROJECT_FILTER)
        return self.open_project(path, ask=False) if path else None

    def open_project(self, path: str | os.PathLike, head: str | None = None, ask: bool = True,
                     recovery: RecoveryFile | None = None) -> Worker | None:
        """Read a project on a worker, then show it; on failure a dialog, and the session stays as it was."""
        if ask and not self.confirm_discard():
            return None
        worker = self.opening.start(load_project_job, str(path), head,
                                    on_finished=lambda result: self._loaded(result, Path(path), recovery),
                                    on_errored=lambda message: self._open_failed(Path(path), message))
        self.model.message.emit(f"Opening {Path(path).name}…")
        return worker

    def _loaded(self, result: Project | NeedsFlameModel, path: Path, recovery: RecoveryFile | None) -> None:
        if isinstance(result, NeedsFlameModel):
            QMessageBox.information(self.window, "FLAME model needed",
                                    f"{path.name} needs the FLAME model {result.model_path}, which is missing. "
                                    "Please locate it.")
            model_file, _ = QFileDialog.getOpenFileName(self.window, "Locate the FLAME model", "",
                                                        "FLAME model (*.pkl *.npz);;All files (*)")
            if model_file:
                self.open_project(path, head=model_file, ask=False, recovery=recovery)
            return
        try:
            self.apply_project(result)
        except (ValueError, RuntimeError, TypeError) as exc:
            self._open_failed(path, f"the project's contents do not fit together: {exc}")
            return
        if recovery is not None:
            self._restored(recovery)
        else:
            self.path = path.resolve()
            self.autosaver.set_project_path(self.path)
            self.recent.add(self.path)
            self._set_modified(False)
            self.model.message.emit(f"Opened {path.name}")
        self.opened.emit(str(path))

    def _restored(self, recovery: RecoveryFile) -> None:
        """A recovery copy is shown: it belongs to its project (if any) and is unsaved work."""
        self.path = recovery.project_path
        self.autosaver.set_project_path(self.path)
        self._set_modified(True)
        self.autosaver.note_change()
        if self.autosaver.save_now() is not None:
            discard_recovery(recovery)  # a fresh copy of this session replaces it
        self.model.message.emit(f"Restored unsaved work from {time.ctime(recovery.saved_at)}")

    def _open_failed(self, path: Path, message: str) -> None:
        QMessageBox.critical(self.window, "Could not open project", message)
        self.model.message.emit(f"Could not open {path.name}")

    def fill_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        paths = self.recent.paths()
        for path in paths:
            action = menu.addAction(f"{path.name}  —  {path.parent}")
            action.triggered.connect(lambda _=False, p=path: self.open_project(p))
        if not paths:
            menu.addAction("No recent projects").setEnabled(False)

    # ---- recovery, autosave, close -----------------------------------------------------------
    def offer_recovery(self) -> bool:
        """Ask about each recovery copy left by a crash (before anything is opened); True when restoring."""
        for rec in self.autosaver.pending_recovery():
            of = f"project {rec.project_path.name}" if rec.project_path else "a project that was never saved"
            answer = QMessageBox.question(
                self.window, "Recover unsaved work",
                f"DynamicAvatars found unsaved work on {rec.name} ({of}) from {time.ctime(rec.saved_at)}.\n\n"
                "Open restores it, Discard deletes it, Ignore keeps it for the next start.",
                QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Ignore,
                QMessageBox.StandardButton.Open)
            if answer == QMessageBox.StandardButton.Open:
                self.open_project(rec.path, ask=False, recovery=rec)
                return True
            if answer == QMessageBox.StandardButton.Discard:
                discard_recovery(rec)
        return False

    def checkpoint(self) -> None:
        """Write the recovery copy now if there are changes not in it (a long job is starting)."""
        if self.model.avatar is None or not self.autosaver.dirty:
            return
        if self.autosaver.save_now() is None:
            self.model.message.emit(self.autosaver.last_error or "Autosave failed")

    def autosave_tick(self) -> None:
        if self.model.avatar is None or not self.autosaver.dirty:
            return
        written = self.autosaver.maybe_save()
        if self.autosaver.last_error:
            self.model.message.emit(self.autosaver.last_error)
        elif written is not None:
            self.model.message.emit("Autosaved a recovery copy")

    def confirm_discard(self) -> bool:
        """True when there are no unsaved changes, or the user saved or discarded them."""
        if not self.modified or self.model.avatar is None:
            return True
        answer = QMessageBox.question(
            self.window, "Unsaved changes", "The project has unsaved changes. Save them first?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def close_hook(self) -> bool:
        """Main window closing: ask about unsaved changes; a clean exit drops the recovery copy."""
        if not self.confirm_discard():
            return False
        self._timer.stop()
        self.autosaver.discard()
        return True

    def _sequence_changed(self) -> None:
        if self.model.avatar is not None and self.model.sequence is not self.model.avatar.params:
            self._changed()

    def _avatar_changed(self) -> None:
        """Another avatar opened outside a project: a new, untitled project with nothing to save yet."""
        if self._loading:
            return
        self.path = None
        self.autosaver.set_project_path(None)
        self.autosaver.saved()
        self._set_modified(False)

    def _changed(self, *_: Any) -> None:
        if self._loading or self.model.avatar is None:
            return
        self.autosaver.note_change()
        self._set_modified(True)

    def _set_modified(self, modified: bool) -> None:
        self.modified = modified
        avatar = self.model.avatar
        name = self.path.name if self.path is not None else (avatar.name if avatar is not None else "DynamicAvatars")
        self.window.setWindowTitle(f"{'*' if modified else ''}{name} — DynamicAvatars")

    # ---- export ------------------------------------------------------------------------------
    def choose_export(self) -> Worker | None:
        if self.model.avatar is None:
            return None
        dialog = ExportDialog(self.window, self.model.sequence_name, has_original=bool(self.model.layers),
                              selections=[CURRENT_SELECTION] * (self.model.selection is not None) + list(self.selections))
        if dialog.exec() != QDialog.DialogCode.Accepted or dialog.request() is None:
            return None
        return self.start_export(dialog.request())

    def start_export(self, request: ExportRequest) -> Worker:
        """Run one export on a worker with a progress dialog (Cancel stops it, leaving no file)."""
        m = self.model
        project = self.snapshot()
        renderer = "auto" if self.window.controller.backend == "gl" else "fast"  # EGL+EGL is safe; no GLX here
        request = replace(request, settings=replace(request.settings, renderer=renderer))
        held = posed_params(m.avatar, m.sequence, m.pose, m.frame)  # without layer offsets (the job adds them)
        current = m.current_params() if request.kind == "splats" else {"held": held}
        dialog = QProgressDialog(f"Exporting {request.path.name}…", "Cancel", 0, 1000, self.window)
        dialog.setWindowTitle("Export")
        dialog.setMinimumDuration(300)
        worker = self.exporting.start(
            export_job, request, project, current,
            on_progress=lambda f, text: (dialog.setValue(int(f * 1000)), dialog.setLabelText(text)),
            on_finished=lambda path: (m.message.emit(f"Exported {path}"), self.exported.emit(str(path))),
            on_errored=lambda message: QMessageBox.critical(self.window, "Export failed", message),
            on_cancelled=lambda: m.message.emit("Export cancelled; nothing was written"), on_done=dialog.reset)
        dialog.canceled.connect(worker.cancel)
        self.export_progress = dialog
        return worker


def install_project(window: Any, state_folder: str | os.PathLike | None = None) -> ProjectController:
    """File menu entries (Save, Save As, Open Project, Open Recent Project, Export…), autosave, close hook."""
    pc = ProjectController(window, state_folder)
    menu = window.file_menu
    first = menu.actions()[0] if menu.actions() else None
    actions = []
    for text, slot, keys in (("Open &project…", pc.choose_project, "Ctrl+Shift+P"),
                             ("&Save project", pc.save, QKeySequence.StandardKey.Save),
                             ("Save project &as…", pc.save_as, QKeySequence.StandardKey.SaveAs),
                             ("&Export…", pc.choose_export, "Ctrl+E")):
        action = QAction(text, window)
        action.setShortcut(QKeySequence(keys))
        action.triggered.connect(lambda _=False, s=slot: s())
        actions.append(action)
    menu.insertActions(first, actions[:1])
    pc.recent_menu = QMenu("Open &recent project", menu)
    menu.insertMenu(first, pc.recent_menu)
    pc.recent_menu.aboutToShow.connect(pc.fill_recent_menu)
    menu.insertActions(first, actions[1:])
    menu.insertSeparator(first)
    window.close_hooks.append(pc.close_hook)
    return window.add_feature("project", pc)
