"""The user's model choices turned into what the CLI and the GUI hand the engine: editor settings,
refiner settings, the reason shown beside them, and the time an edit will take (Qt-free)."""

from __future__ import annotations

import os
from typing import Any

from engine.edit.editors import EditorSettings
from engine.edit.run import DEFAULT_KEYFRAMES, EditConfig
from engine.models import ModelSettings, describe, load_settings
from engine.models.runtime import estimate_seconds, format_duration, timing_key
from engine.models.settings import pins_from_json, save_settings
from engine.prompting import RefineSettings
from engine.prompting.plan import EditKind, EditPlan

GENERATIVE_KINDS: frozenset[EditKind] = frozenset({EditKind.SHAPE, EditKind.ACCESSORY})
"""Edits only a diffusion model or an image endpoint can make."""


def current_settings(project: str | os.PathLike | None = None, pins: dict[str, Any] | None = None) -> ModelSettings:
    """The user's settings with a project's pins (read from the project file, or given) taking precedence."""
    settings = load_settings()
    if project is not None:
        from engine.project.project_file import read_model_pins

        pins = read_model_pins(project)
    return settings.merged(pins_from_json(pins or {}, str(project or "project")))


def editor_settings(settings: ModelSettings, size: int | None = None) -> tuple[EditorSettings, str]:
    """The editor the settings choose (procedural when none or when the choice cannot be used), and why;
    size: the diffusion working size (default: the settings')."""
    size = size or settings.diffusion_size
    chosen = describe("editor", settings)
    if chosen.backend == "http" and chosen.choice is not None:
        return EditorSettings("http", model=chosen.choice.server_model, url=chosen.choice.source,
                              size=size), chosen.reason
    if chosen.path is not None and chosen.choice is not None:
        return EditorSettings(chosen.backend, model=chosen.choice.source, device=settings.device, size=size,
                              cpu_max_steps=settings.cpu_max_steps), chosen.reason
    return EditorSettings("procedural"), chosen.reason


def refine_choice(settings: ModelSettings) -> tuple[str, RefineSettings, str]:
    """(backend name, RefineSettings, reason) of the refiner the settings choose."""
    chosen = describe("refiner", settings)
    if chosen.backend == "http" and chosen.choice is not None:
        return "http", RefineSettings(base_url=chosen.choice.source, http_model=chosen.choice.server_model), \
            chosen.reason
    if chosen.backend == "local" and chosen.choice is not None:
        device = settings.device or "cpu"
        return "local", RefineSettings(local_model=chosen.choice.source, device=device), chosen.reason
    return "rules", RefineSettings(), chosen.reason


def needs_generative(plan: EditPlan | None) -> bool:
    """True when the procedural editor cannot make (all of) the plan: shape or accessory edits, or texture
    edits with neither a colour nor a material word it knows (freckles, beard, older, thicker eyebrows)."""
    from engine.edit.editors.procedural import material_of

    if plan is None or plan.is_expression_only:
        return False
    return bool(GENERATIVE_KINDS & set(plan.kinds)) or (plan.colour is None and material_of(plan) is None)


def edits_expected(plan: EditPlan, config: EditConfig) -> int:
    """2D edits an edit run makes: one per keyframe plus the refreshes during optimisation."""
    k = config.keyframes if config.keyframes is not None else (plan.keyframes or DEFAULT_KEYFRAMES)
    cap = config.max_steps if config.max_steps is not None else plan.iterations
    steps = max(1, min(cap, max(config.min_steps, config.passes * k)))
    refresh = config.optim.refresh_every
    return k + (steps // refresh if refresh else 0)


def edit_estimate(editor: Any, plan: EditPlan, config: EditConfig, settings: ModelSettings,
                  measure: bool = True) -> tuple[float | None, str]:
    """(seconds, text) an edit with a diffusion editor will take; the time per step is remembered in the
    user's settings, or measured now (loads the model) when measure is set. (None, "") for other editors."""
    if not hasattr(editor, "seconds_per_step"):
        return None, ""
    key = timing_key(editor.model, editor.device, editor.size)
    per_step = settings.timings.get(key)
    if per_step is None:
        if not measure:
            return None, "time unknown until the model has run once"
        remembered = load_settings().with_timing(key, editor.seconds_per_step(plan))
        save_settings(remembered)
        per_step = remembered.timings[key]  # as remembered (rounded): the same estimate now and next time
    steps, edits = editor.denoising_steps(plan), edits_expected(plan, config)
    total = estimate_seconds(per_step, steps, edits)
    device = editor.device.type.upper() if editor.device.type == "cuda" else "CPU"
    return total, (f"about {format_duration(total)}: {edits} image edits × {steps} steps × {per_step:.2f} s/step "
                   f"on the {device}")



def label_maps_if_needed(dataset: str | os.PathLike, settings: ModelSettings, progress: Any = None,
                         cancel: Any = None, required: bool = False) -> str:
    """Make label maps with the chosen face parser for the dataset's frames that have none; a line saying what
    happened ("" when every frame has one). required: ValueError when no parser is set instead of a note."""
    from engine.semantics.parse_labels import frames_without_labels, write_label_maps

    missing = frames_without_labels(dataset)
    if not missing:
        return ""
    parser = describe("parser", settings)
    if parser.path is None or parser.choice is None:
        if required:
            raise ValueError(f"making label maps needs a face parser: {parser.reason} "
                             "(dynamicavatars models get jonathandinu/face-parsing --use parser)")
        return f"{missing} frames have no label map and {parser.reason}; the label loss skips them"
    from engine.semantics.face_parser import FaceParser

    written = write_label_maps(dataset, FaceParser.from_path(parser.choice.source), progress, cancel)
    return f"{written} label maps made by the face parser {parser.choice.source}"
