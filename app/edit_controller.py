"""Wires the Edit panel to the session: runs edits on a worker, adds their layers (the appearance edit and
the plan's expression layer) as one undo item, shows the keyframes the edit chose with their gate scores,
and turns the viewport's before/after split on after an edit. (The layer list, with toggle and delete, is the
Layers dock: widgets/layers_panel.py.)

Install in a built main window with one call: `install_edit_panel(window)`. Feed it the plan with `controller.set_plan(plan)`
(e.g. from PromptPanel.plan_edited / show_plan). The edited region is, in order of preference: what a
selection source set with `controller.set_selection_source(fn)` returns, the session's selection
(masks panel), or the Gaussians of the plan's components. `controller.config` (an EditConfig) says how
hard an edit works; the panel's keyframe count overrides its K. Keyframes come from the avatar's training
dataset when it records one that is still there, or from a folder chosen in the panel (engine/edit/dataset_source.py),
else from rendered views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QObject, QSignalBlocker, Signal

from app.session import SessionModel
from app.workers import Job
from engine.avatar.avatar import Avatar
from engine.edit.dataset_source import DatasetSource, dataset_source
from engine.edit.layers import compose
from engine.edit.run import EditConfig, EditResult
from engine.prompting.plan import EditPlan
from widgets.edit_panel import EditPanel


def edit_job(progress: Callable[[float, str], None], cancel: Callable[[], bool], avatar: Avatar,
             selection: torch.Tensor, plan: EditPlan, settings: dict, preview: Callable[[Any], None],
             config: EditConfig | None = None, source: DatasetSource | None = None) -> EditResult | None:
    """Worker job: run_edit with the panel's settings over config, on the training frames of the source's dataset
    when it has a usable one (read here, off the GUI thread); the EditResult, or None when cancelled."""
    from engine.edit.editors import EditorSettings, make_editor
    from engine.edit.run import run_edit

    chosen = settings.get("editor_settings")  # backend "auto": what the model settings choose
    editor = make_editor(chosen or EditorSettings(settings["backend"], model=settings.get("model"),
                                                  url=settings.get("url")))
    config = config or EditConfig()
    if settings.get("keyframes"):
        config = replace(config, keyframes=int(settings["keyframes"]))
    config = replace(config, optim=replace(config.optim, device=settings.get("device") or "cpu"))
    if settings.get("models") is not None:
        from app.model_choices import edit_estimate

        progress(0.0, "Loading the model and measuring its speed…")
        _, text = edit_estimate(editor, plan, config, settings["models"])
        if text:
            progress(0.0, f"Estimate: {text}")
    dataset = None
    if source is not None and source.usable:
        progress(0.0, f"Reading the dataset {source.path}…")
        dataset = source.open()
    show = lambda i, before, after: preview((i, before.numpy(), after.numpy()))
    return run_edit(avatar, selection, plan, editor, config, dataset, progress, cancel, show)


def keyframe_thumbnails(result: EditResult) -> list[tuple[np.ndarray, str, str]]:
    """(before|after image [H, 2W, 3], caption, tooltip) of every keyframe the edit tried, in slot order."""
    out = []
    for shot in result.shots:
        image = np.concatenate([shot.before.numpy(), shot.after.numpy()], axis=1)
        judged = shot.threshold > 0.0
        verdict = ("passed" if shot.accepted else "rejected") if judged else "no gate"
        retried = shot.note.startswith("replaced")
        caption = (f"t={shot.timestep} · cam {shot.camera_index}\n"
                   + (f"realness {shot.score:.2f} {'✓' if shot.accepted else '✗'}" if judged else "not judged")
                   + (" · retried" if retried else "") + ("" if shot.used else " · unused"))
        tip = (f"keyframe {shot.slot}: frame {shot.timestep}, camera {shot.camera_index} (before | after)\n"
               + (f"discriminator realness {shot.score:.2f}, gate {shot.threshold:.2f}: {verdict}" if judged
                  else "no discriminator judged it")
               + ("" if shot.note == "ok" else f"\n{shot.note}")
               + ("\nfitted by the optimisation" if shot.used else "\nnot used"))
        out.append((image, caption, tip))
    return out


class EditController(QObject):
    """Connects one EditPanel to one SessionModel."""

    started = Signal()  # an edit job is starting (the project writes its recovery copy first)

    def __init__(self, model: SessionModel, panel: EditPanel, config: EditConfig | None = None) -> None:
        super().__init__(panel)
        self.model, self.panel = model, panel
        self.config = config or EditConfig()  # how hard edits work (size, steps, discriminator...)
        self.plan: EditPlan | None = None
        self.selection_source: Callable[[], torch.Tensor | None] | None = None
        self.models: Any = None  # engine.models.ModelSettings (user settings + project pins), for backend "auto"
        self.job = Job("edit", self)
        panel.edit_requested.connect(self.start_edit)
        panel.cancel_requested.connect(self.cancel)
        self.source: DatasetSource = dataset_source(None)  # where the next edit's keyframes come from
        self._compare_buttons: list[Any] = []  # other checkable buttons showing the split (bind_compare)
        panel.compare_toggled.connect(self.set_compare)
        panel.dataset_chosen.connect(self.choose_dataset)
        panel.backend_changed.connect(lambda _: self._show_backend())
        model.avatarChanged.connect(self._on_avatar)
        for signal in (model.compareChanged, model.layersChanged, model.previewChanged):
            signal.connect(self._sync_compare)
        self._on_avatar()

    def set_plan(self, plan: EditPlan | None) -> None:
        self.plan = plan
        self._show_backend()

    def set_model_settings(self, settings: Any) -> None:
        """The model settings (engine.models.ModelSettings) the Automatic backend follows."""
        self.models = settings
        self._show_backend()

    def _show_backend(self) -> None:
        """Tell the panel which editor an edit will use and why; offer "Get a model…" where the plan needs one."""
        from app.model_choices import edit_estimate, editor_settings, needs_generative
        from engine.models import ModelSettings

        backend = self.panel.backend_box.currentData()
        if backend != "auto":
            self.panel.set_backend_note(f"{backend}: chosen above", False)
            return
        models = self.models or ModelSettings()
        chosen, reason = editor_settings(models)
        needs = needs_generative(self.plan)
        text = reason
        if chosen.backend == "procedural" and needs:
            text += " — this plan (texture, shape or accessory) needs a diffusion model or an image endpoint"
        elif chosen.backend in ("instruct-pix2pix", "inpaint", "img2img") and self.plan is not None:
            from engine.edit.editors import make_editor

            try:
                _, estimate = edit_estimate(make_editor(chosen), self.plan, self.config, models, measure=False)
            except Exception as exc:  # never let a note break the panel
                estimate = str(exc)
            text += f"; {estimate}"
        self.panel.set_backend_note(text, chosen.backend == "procedural" and needs)

    def set_selection_source(self, source: Callable[[], torch.Tensor | None] | None) -> None:
        """A function returning the painted/lifted selection [N] (bool or float), or None for the plan's components."""
        self.selection_source = source

    def _selection(self, avatar: Avatar, plan: EditPlan) -> torch.Tensor:
        if self.selection_source is not None:
            sel = self.selection_source()
            if sel is not None:
                return sel
        if self.model.selection is not None and bool((self.model.selection > 0).any()):
            return self.model.selection
        from engine.head.components import labels_of

        return torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(list(plan.components)) or [-1]))

    def _editable_avatar(self) -> Avatar:
        """The avatar with the enabled layers applied when they keep Gaussian order (no hides/adds), else the base."""
        avatar = self.model.avatar
        layers = [layer for layer in self.model.layers if layer.enabled]
        if any(layer.hidden.numel() or layer.added is not None for layer in layers):
            return avatar
        return Avatar(avatar.head, compose(avatar.gaussians, layers), avatar.params, avatar.name,
                      dataset=avatar.dataset)

    def start_edit(self, settings: dict) -> None:
        if self.model.avatar is None:
            self.panel.show_message("Open an avatar first.")
            return
        if self.plan is None:
            self.panel.show_message("Refine a prompt first: the edit follows the plan.")
            return
        if self.job.busy:
            return
        if settings.get("backend") == "auto":
            from app.model_choices import editor_settings
            from engine.models import ModelSettings

            models = self.models or ModelSettings()
            settings = {**settings, "editor_settings": editor_settings(models)[0], "models": models}
        avatar = self._editable_avatar()
        selection = self._selection(avatar, self.plan)
        plan, base = self.plan, self.model.avatar
        self.started.emit()
        self.panel.show_keyframes([])
        self.job.start(edit_job, avatar, selection, plan, settings, config=self.config, source=self.source,
                       on_progress=self.panel.set_progress, on_preview=lambda p: self.panel.show_preview(*p),
                       on_finished=lambda result: self._finished(result, base),
                       on_errored=lambda msg: self.panel.show_message(f"Edit failed: {msg}"),
                       on_cancelled=lambda: self.panel.show_message("Edit cancelled; the avatar is unchanged."),
                       on_done=lambda: self.panel.set_running(False))
        self.panel.set_running(True)

    def cancel(self) -> None:
        self.job.cancel()

    def _finished(self, result: EditResult | None, base: Avatar | None = None) -> None:
        if result is None:
            self.panel.show_message("Edit cancelled; the avatar is unchanged.")
            return
        if base is not None and self.model.avatar is not base:
            self.panel.show_message("Another avatar was opened while editing; the edit was dropped.")
            return
        added = list(result.layers)
        self.model.set_layers(list(self.model.layers) + added, text=added[0].name)
        self.model.set_compare({layer.id for layer in added}, 0.5)
        self.panel.show_keyframes(keyframe_thumbnails(result))
        self.panel.show_message(_summary(result))

    def set_compare(self, on: bool) -> None:
        """The viewport's before/after split on (divider in the middle) or off."""
        self.model.set_compare(None, 0.5 if on else None)

    def bind_compare(self, button: Any) -> None:
        """Another checkable button (the Layers panel's) that turns the split on and off and shows its state."""
        button.toggled.connect(self.set_compare)
        self._compare_buttons.append(button)
        self._sync_compare()

    def _sync_compare(self) -> None:
        """The split toggles show whether the split is on, and are enabled while there is something to compare
        (layers an edit added, or a preview)."""
        model = self.model
        available = model.preview_layer is not None or any(layer.id in model.compared for layer in model.layers)
        on = model.split is not None and available
        self.panel.set_compare(on, available)
        for button in self._compare_buttons:
            with QSignalBlocker(button):
                button.setChecked(on)
            button.setEnabled(available)

    def choose_dataset(self, folder: str) -> None:
        """Take keyframes from the dataset in folder (recorded in the avatar, so a saved project keeps it)."""
        source = dataset_source(folder, recorded=False)
        self.source = source
        self.panel.set_dataset(source.text, source.problem is not None)
        if source.usable and self.model.avatar is not None:
            self.model.avatar.dataset = str(Path(folder).resolve())

    def _on_avatar(self) -> None:
        avatar = self.model.avatar
        self.source = dataset_source(avatar.dataset if avatar is not None else None)
        self.panel.set_dataset(self.source.text, self.source.problem is not None)
        self.panel.show_keyframes([])
        self._sync_compare()


def _summary(result: EditResult) -> str:
    """One status line: what changed, the expression layer, what to check."""
    parts = []
    if result.appearance is not None:
        parts.append(f"{result.appearance.name}: {result.appearance.indices.numel()} Gaussians changed")
    if result.expression is not None:
        parts.append(f"layer {result.expression.name}")
    text = "; ".join(parts)
    if result.warnings:
        text += ". Check the result: " + "; ".join(result.warnings)
    return text


def install_edit_panel(window: Any) -> EditController:
    """Add the Edit dock to a built MainWindow and return its controller (window.features["edit"])."""
    from app.main_window import PanelSpec
    from engine.render.rasterize import available_devices

    panel = EditPanel(devices=available_devices())
    return window.add_feature("edit", EditController(window.model, panel), PanelSpec("edit", "Edit", lambda w: panel))
