"""Wires the Models dialog (widgets/models_dialog.py) to the model registry (engine.models): downloads on a
worker with progress and cancel, choices saved in the user's settings or pinned in the open project,
endpoint keys stored in the system keyring. `changed` carries the merged settings to the Edit and Prompt
controllers, which say which backend they will use.

Install with `install_models(window)` (adds Edit → Models…); `connect_models(...)` links it to the Edit and
Prompt panels and to the project file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from app.workers import Job, WorkCancelled, Worker
from engine.models import (
    ROLES,
    Choice,
    DownloadCancelled,
    ModelError,
    ModelSettings,
    card,
    describe,
    list_models,
    load_settings,
    recommended,
    remove_model,
    save_settings,
)
from engine.models.secrets import api_key, store_api_key
from engine.models.settings import pins_from_json, pins_to_json
from widgets.models_dialog import ENDPOINT_ROLES, ModelsDialog


def download_job(progress: Callable[[float, str], None], cancel: Callable[[], bool], model_id: str,
                 settings: ModelSettings, fp16: bool) -> Any:
    """Worker job: download_model; a cancel ends as WorkCancelled (the finished files stay in the cache)."""
    from engine.models import download_model

    try:
        return download_model(model_id, settings, progress, cancel, fp16=fp16)
    except DownloadCancelled:
        raise WorkCancelled() from None


class ModelsController(QObject):
    """The user's model settings, the open project's pins, and the Models dialog."""

    changed = Signal(object)  # ModelSettings (user settings merged with the project's pins) after any change
    pinsChanged = Signal()  # the project's pins changed (the project is modified)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.message = ""
        try:
            self.user = load_settings()
        except ValueError as exc:  # a damaged settings file: defaults, and say so
            self.user, self.message = ModelSettings(), str(exc)
        self.pins: dict[str, Choice] = {}
        self.pin_mode = False  # Use pins in the project instead of the user's settings
        self.dialog: ModelsDialog | None = None
        self.download = Job("get model", self)

    @property
    def settings(self) -> ModelSettings:
        return self.user.merged(self.pins)

    # ---- dialog ---------------------------------------------------------------------------------
    def open(self, role: str | None = None) -> ModelsDialog:
        """Show the dialog (built once); with role, preselect it and the model to get for it."""
        if self.dialog is None:
            self.dialog = self._build()
        self.refresh()
        if role is not None:
            import torch

            chosen = self.settings.choice(role)
            cuda = (self.settings.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
            target = chosen.source if chosen is not None and not chosen.is_url else recommended(role, cuda).id
            self.dialog.focus(role, target)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _build(self) -> ModelsDialog:
        d = ModelsDialog(self.parent_widget)
        d.get_requested.connect(self.get)
        d.use_requested.connect(self.use)
        d.remove_requested.connect(self.remove)
        d.cancel_requested.connect(self.cancel)
        d.key_save_requested.connect(self.save_key)
        d.offline_changed.connect(lambda on: self._set_user(offline=on))
        d.mirror_changed.connect(lambda url: self._set_user(hub_endpoint=url or None))
        d.pin_changed.connect(self._set_pin_mode)
        return d

    def refresh(self) -> None:
        """Show the current state in the dialog (when built)."""
        from engine.models.runtime import describe_device

        d = self.dialog
        if d is None:
            return
        s = self.settings
        d.set_entries([e.as_dict() for e in list_models(s)])
        d.set_roles({role: describe(role, s).reason for role in ROLES})
        d.set_device(describe_device(s.device, s.cpu_max_steps))
        for role in ENDPOINT_ROLES:
            d.set_key_status(role, api_key(role).source)
            choice = s.choice(role)
            if choice is not None and choice.is_url:
                d.set_endpoint(role, choice.source, choice.server_model or "")
        d.set_options(s.offline, s.hub_endpoint or "", self.pin_mode, can_pin=True)
        if self.message:
            d.show_message(self.message)

    def _say(self, text: str) -> None:
        self.message = text
        if self.dialog is not None:
            self.dialog.show_message(text)

    # ---- actions --------------------------------------------------------------------------------
    def get(self, model_id: str, role: str = "") -> Worker | None:
        """Download model_id on a worker; afterwards use it for role (when given)."""
        import torch

        if not model_id:
            self._say("Type a hub id (org/name) or pick a model in the list.")
            return None
        if self.download.busy:
            self._say("A download is running; cancel it or wait.")
            return None
        known = card(model_id)
        if role and known is not None and known.role != role:
            role = known.role  # a catalog model serves its own role
        fp16 = (self.settings.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        dialog = self.dialog
        if dialog is not None:
            dialog.set_running(True)

        def done() -> None:
            if dialog is not None:
                dialog.set_running(False)
            self.refresh()

        return self.download.start(
            download_job, model_id, self.settings, fp16,
            on_progress=dialog.set_progress if dialog is not None else None,
            on_finished=lambda result: self._got(result, role),
            on_errored=lambda msg: self._say(f"Get {model_id} failed: {msg}"),
            on_cancelled=lambda: self._say(
                f"Download of {model_id} cancelled; the files finished so far are kept, Get resumes."),
            on_done=done)

    def _got(self, result: Any, role: str) -> None:
        from engine.models.hub import format_bytes

        text = f"{result.plan.repo_id}: {format_bytes(result.plan.total_bytes)} ready ({result.path})"
        if role:
            self.use(role, result.plan.repo_id, "")
        self._say(text)

    def cancel(self) -> None:
        self.download.cancel()

    def use(self, role: str, source: str, server_model: str = "") -> bool:
        """Set role's model (source "" = the offline default), in the settings or the project's pins."""
        choice = Choice(source, server_model or None) if source else None
        try:
            if self.pin_mode:
                pins = {k: v for k, v in self.pins.items() if k != role} | ({role: choice} if choice else {})
                pins_from_json(pins_to_json(pins), "project")  # validates (an endpoint for the parser...)
                self.pins = pins
                self.pinsChanged.emit()
            else:
                self.user = self.user.with_choice(role, choice)
                save_settings(self.user)
        except (ValueError, OSError) as exc:
            self._say(str(exc))
            return False
        self._say(f"{role}: {describe(role, self.settings).reason}")
        self._changed()
        return True

    def remove(self, model_id: str) -> None:
        from engine.models.hub import format_bytes

        freed = remove_model(model_id) if model_id else 0
        self._say(f"Removed {model_id} ({format_bytes(freed)} freed)." if freed else f"{model_id or 'Nothing'} is not "
                  "in the model cache.")
        self._changed()

    def save_key(self, role: str, key: str) -> None:
        try:
            store_api_key(role, key)
        except ModelError as exc:
            self._say(str(exc))
            return
        self._say(f"The {role} endpoint key is {'kept in the system keyring' if key else 'removed'}.")
        self.refresh()

    def _set_user(self, **changes: Any) -> None:
        from dataclasses import replace

        self.user = replace(self.user, **changes)
        save_settings(self.user)
        self._changed()

    def _set_pin_mode(self, on: bool) -> None:
        self.pin_mode = on

    def _changed(self) -> None:
        self.refresh()
        self.changed.emit(self.settings)

    # ---- project part ---------------------------------------------------------------------------
    def pins_json(self) -> dict[str, Any]:
        return pins_to_json(self.pins)

    def set_pins(self, data: Any) -> None:
        """The opened project's pins (malformed ones are dropped with a message)."""
        try:
            self.pins = pins_from_json(data or {}, "project models.json")
        except ValueError as exc:
            self.pins = {}
            self._say(str(exc))
        self._changed()


def install_models(window: Any) -> ModelsController:
    """Add Edit → Models… to a MainWindow; returns the controller (window.features["models"])."""
    controller = ModelsController(window)
    action = window.edit_menu.addAction("&Models…")
    action.triggered.connect(lambda: controller.open())
    return window.add_feature("models", controller)


def connect_models(models: ModelsController, edit: Any, prompt: Any, project: Any = None) -> None:
    """Feed the model settings to the Edit and Prompt controllers; keep the pins in the project file."""
    edit.set_model_settings(models.settings)
    prompt_models(prompt, models.settings)
    models.changed.connect(edit.set_model_settings)
    models.changed.connect(lambda s: prompt_models(prompt, s))
    edit.panel.get_model_requested.connect(lambda: models.open("editor"))
    if project is not None:
        project.add_part(save=lambda p: setattr(p, "models", models.pins_json()),
                         load=lambda p: models.set_pins(p.models), changed=models.pinsChanged)


def prompt_models(prompt: Any, settings: ModelSettings) -> None:
    """Give the Prompt controller the refiner settings of the chosen model and say which backend runs."""
    from app.model_choices import refine_choice

    backend, refine_settings, reason = refine_choice(settings)
    prompt.settings = refine_settings
    prompt.panel.backend_box.setCurrentText(backend)
    prompt.panel.set_backend_note(f"Refiner: {reason}")
