"""Repairing loose plan data (LLM answers, edited files, GUI forms) field by field, with notes.

`repair_fields(data) -> (fields, notes)`: the fields are ready for strict validation; every change
(clamped value, dropped word, alias, default) gives one note. Used through plan.sanitize_plan.
"""

from __future__ import annotations

import math
from typing import Any

from engine.head.components import COMPONENTS, GROUPS, PARTS, expand
from engine.prompting.colours import NAMED_COLOURS, colour_from_text, hex_to_rgb
from engine.prompting.plan import (
    ACTIONS, DEFAULTS, INT_FIELDS, MAX_RATIONALE, MAX_TEXT, RANGES, READABLE_VERSIONS, SCHEMA_VERSION, EditKind,
    PlanError, expression_range, is_expression_name, upgrade,
)
from engine.prompting.vocab import COMPONENT_WORDS

ALIASES: dict[str, str] = {
    "color": "colour", "target_colour": "colour", "target_color": "colour", "rgb": "colour",
    "color_name": "colour_name", "kind": "kinds", "edit_kind": "kinds", "edit_kinds": "kinds", "type": "kinds",
    "expressions": "expression", "expression_deltas": "expression", "target_components": "components",
    "negative": "negative_prompt", "refined": "refined_prompt", "prompt_refined": "refined_prompt",
    "cfg": "guidance_scale", "guidance": "guidance_scale", "text_guidance_scale": "guidance_scale",
    "image_guidance": "image_guidance_scale", "num_inference_steps": "steps", "num_keyframes": "keyframes",
    "optimisation_iterations": "iterations", "optimization_iterations": "iterations", "reason": "rationale",
}
"""Other names models and people use for plan fields."""

KIND_ALIASES: dict[str, EditKind] = {
    "color": EditKind.COLOUR, "recolour": EditKind.COLOUR, "material": EditKind.TEXTURE,
    "texture/material": EditKind.TEXTURE, "style": EditKind.TEXTURE, "size": EditKind.SHAPE,
    "shape/size": EditKind.SHAPE, "geometry": EditKind.SHAPE, "add": EditKind.ACCESSORY,
    "accessories": EditKind.ACCESSORY,
}
ACTION_ALIASES: dict[str, str] = {
    "delete": "remove", "removal": "remove", "erase": "remove", "take off": "remove", "take away": "remove",
    "modify": "change", "edit": "change", "alter": "change", "recolour": "change", "recolor": "change",
    "insert": "add", "put": "add", "put on": "add", "addition": "add",
}
"""Other words models and people use for plan actions."""
FIELDS: tuple[str, ...] = (
    "version", "prompt", "refined_prompt", "negative_prompt", "components", "kinds", "colour", "colour_name",
    "accessory", "part", "action", "lightness", "expression", "intensity", "guidance_scale", "image_guidance_scale",
    "steps", "strength",
    "keyframes", "iterations", "rationale",
)


def _number(name: str, value: Any, notes: list[str]) -> float | int:
    lo, hi = RANGES[name]
    default = DEFAULTS[name]
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            notes.append(f"{name}: {value!r} is not a number; using {default}")
            return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        notes.append(f"{name}: {value!r} is not a finite number; using {default}")
        return default
    clamped = min(hi, max(lo, value))
    if clamped != value:
        notes.append(f"{name} {value} clamped to {clamped} (safe range {lo}-{hi})")
    return int(round(clamped)) if name in INT_FIELDS else float(clamped)


def _components(value: Any, notes: list[str]) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.replace(";", ",").split(",")]
    if not isinstance(value, (list, tuple)):
        notes.append(f"components: expected a list, got {type(value).__name__}; ignored")
        return []
    names: list[str] = []
    for raw in value:
        word = str(raw).strip().lower().replace(" ", "_")
        if word in COMPONENTS or word in GROUPS:
            names.append(word)
        elif word.replace("_", " ") in COMPONENT_WORDS:
            names.extend(COMPONENT_WORDS[word.replace("_", " ")])
            notes.append(f"component {raw!r} read as {'/'.join(COMPONENT_WORDS[word.replace('_', ' ')])}")
        else:
            notes.append(f"unknown component {raw!r} dropped")
    return list(expand(names))


def _kinds(value: Any, notes: list[str]) -> list[str]:
    if isinstance(value, (str, EditKind)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise PlanError(f"kinds: expected a list of edit kinds, got {type(value).__name__}")
    out: list[str] = []
    for raw in value:
        word = raw.value if isinstance(raw, EditKind) else str(raw).strip().lower()
        kind = KIND_ALIASES.get(word) or next((k for k in EditKind if k.value == word), None)
        if kind is None:
            notes.append(f"unknown edit kind {raw!r} dropped")
        elif kind.value not in out:
            out.append(kind.value)
    return out


def _colour(value: Any, notes: list[str]) -> tuple[int, int, int] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        rgb = hex_to_rgb(value) or colour_from_text(value)
        if rgb is None:
            notes.append(f"colour {value!r} not understood; dropped")
        return rgb
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in value):
        scale = 255.0 if all(0.0 <= c <= 1.0 for c in value) and any(isinstance(c, float) for c in value) else 1.0
        rgb = tuple(int(round(min(255.0, max(0.0, c * scale)))) for c in value)
        if any(c * scale < 0 or c * scale > 255 for c in value):
            notes.append(f"colour {list(value)} clamped to {list(rgb)}")
        return rgb  # type: ignore[return-value]
    notes.append(f"colour {value!r} is not an RGB triple, hex code or colour name; dropped")
    return None


def _expression(value: Any, notes: list[str]) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        notes.append(f"expression: expected an object of name: delta, got {type(value).__name__}; ignored")
        return {}
    out: dict[str, float] = {}
    for raw, delta in value.items():
        name = str(raw).strip().lower()
        if not is_expression_name(name):
            notes.append(f"unknown expression {raw!r} dropped")
            continue
        try:
            d = float(delta)
        except (TypeError, ValueError):
            notes.append(f"expression {name}: {delta!r} is not a number; dropped")
            continue
        if not math.isfinite(d):
            notes.append(f"expression {name}: {delta!r} is not finite; dropped")
            continue
        lo, hi = expression_range(name)
        if not lo <= d <= hi:
            notes.append(f"expression {name} {d} clamped to {min(hi, max(lo, d))} (safe range {lo}-{hi})")
            d = min(hi, max(lo, d))
        if d != 0.0:
            out[name] = d
    return out


def _part(value: Any, components: list[str], notes: list[str]) -> str | None:
    if value is None or value == "":
        return None
    word = str(value).strip().lower()
    if word not in PARTS:
        notes.append(f"unknown part {value!r} dropped")
        return None
    if not set(PARTS[word]) & set(components):
        notes.append(f"part {word!r} dropped: the plan targets none of {', '.join(PARTS[word])}")
        return None
    return word


def _action(value: Any, kinds: list[str], accessory: str | None, notes: list[str]) -> str:
    """The plan's action: read, aliased, or inferred (an accessory plan without one adds it)."""
    adds = EditKind.ACCESSORY.value in kinds and bool(accessory)
    if value is None or value == "":
        return "add" if adds else "change"
    word = str(value).strip().lower()
    word = ACTION_ALIASES.get(word, word)
    if word not in ACTIONS:
        notes.append(f"unknown action {value!r}; using {'add' if adds else 'change'}")
        return "add" if adds else "change"
    if word == "add" and not adds:
        notes.append("action 'add' needs an accessory to add; using 'change'")
        return "change"
    if word == "remove" and all(k == EditKind.EXPRESSION.value for k in kinds):
        notes.append("action 'remove' on an expression-only plan: negative deltas say it; using 'change'")
        return "change"
    return word


def _text(name: str, value: Any, limit: int, notes: list[str]) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        notes.append(f"{name} shortened to {limit} characters")
        text = text[:limit].rstrip()
    return text


def repair_fields(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Loose plan data -> (fields ready for EditPlan validation, notes). PlanError if beyond repair."""
    notes: list[str] = []
    raw: dict[str, Any] = {}
    for key, value in data.items():
        name = ALIASES.get(str(key).lower(), str(key).lower())
        if name not in FIELDS:
            notes.append(f"unknown field {key!r} ignored")
        elif name not in raw:
            raw[name] = value
    if raw.get("version", SCHEMA_VERSION) not in READABLE_VERSIONS:
        readable = " or ".join(str(v) for v in READABLE_VERSIONS)
        raise PlanError(f"plan version {raw['version']!r} is not supported (expected {readable})")
    raw = upgrade(raw)
    out: dict[str, Any] = {"version": SCHEMA_VERSION, "prompt": _text("prompt", raw.get("prompt"), 2000, notes)}
    out["refined_prompt"] = _text("refined_prompt", raw.get("refined_prompt"), MAX_TEXT, notes)
    if not out["refined_prompt"]:
        raise PlanError("the plan has no refined prompt")
    out["negative_prompt"] = _text("negative_prompt", raw.get("negative_prompt"), MAX_TEXT, notes)
    out["rationale"] = _text("rationale", raw.get("rationale"), MAX_RATIONALE, notes)
    out["components"] = _components(raw.get("components", []), notes)
    out["expression"] = _expression(raw.get("expression"), notes)
    kinds = _kinds(raw.get("kinds", []), notes)
    if EditKind.EXPRESSION.value in kinds and not out["expression"]:
        kinds.remove(EditKind.EXPRESSION.value)
        notes.append("expression edit without expression deltas: kind dropped")
    if out["expression"] and EditKind.EXPRESSION.value not in kinds:
        kinds.append(EditKind.EXPRESSION.value)
        notes.append("expression deltas given: expression kind added")
    if not kinds:
        raise PlanError("the plan names no valid edit kind")
    if any(k != EditKind.EXPRESSION.value for k in kinds) and not out["components"]:
        raise PlanError(f"a {kinds[0]} edit needs target components; none valid")
    out["kinds"] = kinds
    out["colour"] = _colour(raw.get("colour"), notes)
    out["colour_name"] = _text("colour_name", raw.get("colour_name"), 60, notes) or None
    if out["colour"] is None and out["colour_name"] and out["colour_name"] in NAMED_COLOURS:
        out["colour"] = NAMED_COLOURS[out["colour_name"]]
    out["accessory"] = _text("accessory", raw.get("accessory"), 60, notes) or None
    out["part"] = _part(raw.get("part"), out["components"], notes)
    out["action"] = _action(raw.get("action"), kinds, out["accessory"], notes)
    for name in RANGES:
        out[name] = _number(name, raw[name], notes) if name in raw else DEFAULTS[name]
    if any(k != EditKind.EXPRESSION.value for k in kinds) and out["keyframes"] < 1:
        notes.append("keyframes raised to 1: an appearance edit needs at least one keyframe")
        out["keyframes"] = 1
    return out, notes
