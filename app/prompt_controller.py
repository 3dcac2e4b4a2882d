"""Wires the Prompt panel (widgets/prompt_panel.py) to prompt refinement and the session model.

- Refine runs `engine.prompting.refine` on a worker thread (the rules backend may load a sentence-
  embedding model for unknown words; a language model may take longer): the GUI never blocks. A
  request made while one runs waits, and only the newest waiting one runs next.
- Refinement knows the avatar: the job reads the components and colours of its Gaussians (edit layers
  composed), so what the avatar lacks cannot be changed or removed.
- The result's plan and messages (fallback reason first, then clamping/repair notes) go to the
  panel; a prompt the refiner cannot read (UnclearPrompt) or that asks for what the avatar lacks
  (NothingToEdit) shows as a normal message with prompts to try; a failure shows as the error line.
- Apply expression (expression-only plans) sets the named expressions on the session pose as one
  undo item.
- When the user edits the plan's component checkboxes, the session selection becomes those
  components' Gaussians (one undo item), so the viewport and the Adjust panel work on them.
- Prompt history (one JSON-able entry per refinement) is part of the project: the project controller
  saves `history` and restores it with `set_history`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, QSignalBlocker, Signal

from app.session import SessionModel
from app.workers import Job, WorkCancelled
from engine.edit.adjust import selection_from_components
from engine.prompting import EditPlan, NothingToEdit, RefineResult, RefineSettings, UnclearPrompt
from engine.prompting.plan import UNCLEAR_PREFIX
from widgets.prompt_panel import PromptPanel

HISTORY_KEEP = 200
"""Prompt history entries kept in a project (oldest dropped first)."""


def refine_job(progress: Callable[[float, str], None], cancel: Callable[[], bool], prompt: str, backend: str,
               settings: RefineSettings | None, avatar: Any = None,
               layers: tuple[Any, ...] = ()) -> RefineResult | UnclearPrompt | NothingToEdit:
    """Worker job: refine one prompt for the avatar (with its edit layers) when one is given. A prompt that
    gives no plan for a reason the user can act on returns that reason (UnclearPrompt / NothingToEdit)."""
    from engine.edit.layers import compose
    from engine.prompting import gaussians_context, refine

    progress(0.0, f"Refining with the {backend} backend")
    context = None if avatar is None else gaussians_context(compose(avatar.gaussians, list(layers)))
    try:
        return interruptible(cancel, refine, prompt, backend, settings, context)
    except (UnclearPrompt, NothingToEdit) as exc:
        return exc


def interruptible(cancel: Callable[[], bool], fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) on a daemon thread, raising WorkCancelled as soon as cancel() says so (checked every 0.1 s): a
    request to a server that hangs cannot be interrupted, so its late answer is dropped instead of awaited."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001  (handed to the caller below)
            box["error"] = exc

    thread = threading.Thread(target=run, name="refine", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        if thread.is_alive() and cancel():
            raise WorkCancelled("refinement cancelled")
    if "error" in box:
        raise box["error"]
    return box["value"]


class PromptController(QObject):
    """Prompt panel <-> refinement worker, session pose and selection, prompt history."""

    refined = Signal(object)  # RefineResult shown in the panel
    refused = Signal(object)  # UnclearPrompt / NothingToEdit shown in the panel with suggestions
    failed = Signal(str)  # error shown in the panel
    historyChanged = Signal()

    def __init__(self, model: SessionModel, panel: PromptPanel, settings: RefineSettings | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model, self.panel, self.settings = model, panel, settings
        self.job = Job("refine prompt", self)
        self._waiting: tuple[str, str] | None = None  # newest request made while a refinement ran
        self._history: list[dict[str, Any]] = []
        self._components: tuple[str, ...] = ()  # components of the plan the panel shows
        panel.refine_requested.connect(self.request)
        panel.cancel_requested.connect(self.job.cancel)
        panel.plan_edited.connect(self._plan_edited)
        panel.apply_expression_requested.connect(self.apply_expression)

    # ---- refinement --------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.job.busy

    def request(self, prompt: str, backend: str) -> None:
        """Refine prompt with backend on a worker (queued behind a running one; the newest wins)."""
        if self.job.busy:
            self._waiting = (prompt, backend)
            self.panel.show_error("Still refining the previous prompt; this one runs next.")
            return
        self.panel.set_refining(True)
        self.model.message.emit(f"Refining “{prompt}”…")
        self.job.start(refine_job, prompt, backend, self.settings, self.model.avatar, self.model.layers,
                       on_finished=lambda result: self._refined(prompt, backend, result),
                       on_errored=lambda message: self._failed(prompt, backend, message),
                       on_cancelled=lambda: self._failed(prompt, backend, "Refinement cancelled."), on_done=self._done)

    def _refined(self, prompt: str, backend: str, result: RefineResult | UnclearPrompt | NothingToEdit) -> None:
        if isinstance(result, (UnclearPrompt, NothingToEdit)):
            self._refused(prompt, backend, result)
            return
        self._components = result.plan.components
        self.panel.show_plan(result.plan, result.messages())
        self._add_history({"prompt": prompt, "backend": backend, "used_backend": result.backend,
                           "plan": result.plan.model_dump(mode="json"), "notes": result.messages()})
        self.model.message.emit(f"Plan ready ({result.backend} backend)")
        self.refined.emit(result)

    def _refused(self, prompt: str, backend: str, reason: UnclearPrompt | NothingToEdit) -> None:
        suggestions = list(getattr(reason, "suggestions", ()))
        text = UNCLEAR_PREFIX + reason.reason if isinstance(reason, UnclearPrompt) else str(reason)
        self.panel.show_refusal(text, suggestions)
        self._add_history({"prompt": prompt, "backend": backend, "refused": text, "suggestions": suggestions})
        self.model.message.emit("No plan: " + text)
        self.refused.emit(reason)

    def _failed(self, prompt: str, backend: str, message: str) -> None:
        self.panel.show_error(message)
        self._add_history({"prompt": prompt, "backend": backend, "error": message})
        self.failed.emit(message)

    def _done(self) -> None:
        self.panel.set_refining(False)
        if self._waiting is not None:
            prompt, backend = self._waiting
            self._waiting = None
            self.request(prompt, backend)

    # ---- plan -> session ---------------------------------------------------------------------
    def apply_expression(self, deltas: dict[str, float]) -> bool:
        """Set the plan's named expressions on the session pose (one undo item); False when refused."""
        plan = self.panel.plan
        if plan is None or not plan.is_expression_only:
            self.panel.show_error("Apply expression works on expression-only plans; this plan needs an edit.")
            return False
        avatar = self.model.avatar
        if avatar is None:
            self.panel.show_error("No avatar is loaded.")
            return False
        try:
            for name in deltas:
                avatar.head.check_expression(name)
        except ValueError as exc:
            self.panel.show_error(str(exc))
            return False
        exprs = dict(self.model.pose.expressions)
        for name, value in deltas.items():
            if value == 0.0:
                exprs.pop(name, None)
            else:
                exprs[name] = float(value)
        words = ", ".join(f"{k} {v:+.2f}" for k, v in deltas.items())
        self.model.set_pose(replace(self.model.pose, expressions=exprs), text=f"Apply expression ({words})")
        return True

    def _plan_edited(self, plan: EditPlan) -> None:
        """The user changed the plan in the form; a change of components changes the selection."""
        if plan.components == self._components:
            return
        self._components = plan.components
        avatar = self.model.avatar
        if avatar is None:
            return
        if not plan.components:
            self.model.set_selection(None, "Clear selection")
            return
        mask = selection_from_components(avatar.gaussians, list(plan.components))
        self.model.set_selection(mask.float(), f"Select {', '.join(plan.components)}")

    # ---- history (saved in the project) ------------------------------------------------------
    @property
    def history(self) -> list[dict[str, Any]]:
        """JSON-able entries, oldest first."""
        return list(self._history)

    def set_history(self, entries: list[Any]) -> None:
        """Replace the history (project opened); the prompt box lists the prompts newest first."""
        self._history = [dict(e) for e in entries if isinstance(e, dict) and isinstance(e.get("prompt"), str)]
        box = self.panel.prompt_box
        with QSignalBlocker(box):
            box.clear()
            seen: set[str] = set()
            for entry in reversed(self._history):
                if entry["prompt"] not in seen:
                    seen.add(entry["prompt"])
                    box.addItem(entry["prompt"])
            box.setCurrentIndex(-1)
            box.setEditText("")
        self.historyChanged.emit()

    def _add_history(self, entry: dict[str, Any]) -> None:
        entry["time"] = time.time()
        self._history = (self._history + [entry])[-HISTORY_KEEP:]
        self.historyChanged.emit()


def install_prompt(window: object, settings: RefineSettings | None = None) -> PromptController:
    """Dock the Prompt panel in a MainWindow."""
    from app.main_window import PanelSpec

    panel = PromptPanel()
    controller = PromptController(window.model, panel, settings, parent=window)
    return window.add_feature("prompt", controller, PanelSpec("prompt", "Prompt", lambda w: panel))
