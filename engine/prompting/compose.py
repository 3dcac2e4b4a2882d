"""Clause readings -> loose plan data (validated afterwards by plan.sanitize_plan): components, kinds,
action, part, colour or lightness shift, expression deltas, the editor's instruction and the diffusion
and optimisation values."""

from __future__ import annotations

from typing import Any

from engine.head.components import PARTS, expand
from engine.prompting.clauses import ClauseReading
from engine.prompting.context import AvatarContext, component_words
from engine.prompting.oklab import family_of, shift_lightness
from engine.prompting.plan import EditKind, expression_range

KIND_ORDER: tuple[EditKind, ...] = (
    EditKind.ACCESSORY, EditKind.TEXTURE, EditKind.SHAPE, EditKind.COLOUR, EditKind.EXPRESSION,
)
"""Order of kinds in a plan: the primary (first) kind is the most specific appearance edit."""

# Per kind: (guidance at intensity 0, at 1), image guidance (0, 1), steps, keyframes, iterations.
KIND_VALUES: dict[EditKind, dict[str, Any]] = {
    EditKind.COLOUR: {"g": (6.5, 9.5), "ig": (1.8, 1.2), "steps": 20, "keyframes": 8, "iterations": 1000},
    EditKind.TEXTURE: {"g": (7.0, 11.0), "ig": (1.6, 1.1), "steps": 30, "keyframes": 10, "iterations": 1500},
    EditKind.ACCESSORY: {"g": (8.0, 12.0), "ig": (1.4, 1.0), "steps": 30, "keyframes": 12, "iterations": 2000},
    EditKind.SHAPE: {"g": (7.5, 11.0), "ig": (1.5, 1.0), "steps": 30, "keyframes": 12, "iterations": 2000},
}

BASE_NEGATIVE = "blurry, distorted face, deformed, changed identity, artifacts, low quality"
EYE_MAKEUP = frozenset({"eyeshadow", "eye shadow", "eyeliner", "mascara"})
PART_WORDS = {"iris": "irises", "sclera": "whites of the eyes", "teeth": "teeth"}


def removed_thing(r: ClauseReading) -> tuple[EditKind, str]:
    """What a removal clause takes away, and the kind of edit that does it."""
    if r.accessory:
        return EditKind.ACCESSORY, r.accessory
    if r.makeup:
        return EditKind.COLOUR, r.makeup
    if r.texture:
        return EditKind.TEXTURE, " ".join(r.texture)
    if r.colour_kind:
        return EditKind.COLOUR, "colour"
    return EditKind.SHAPE, component_words(expand(r.components))


def reading_kinds(r: ClauseReading) -> set[EditKind]:
    """The edit kinds one appearance clause asks for."""
    if r.removal:
        return {removed_thing(r)[0]}
    kinds = set()
    if r.accessory and not r.accessory_owned:
        kinds.add(EditKind.ACCESSORY)
    if r.texture or (r.whole_head and not r.colour_kind):
        kinds.add(EditKind.TEXTURE)
    if r.shape:
        kinds.add(EditKind.SHAPE)
    if r.colour_kind:
        kinds.add(EditKind.COLOUR)
    return kinds


def reading_part(r: ClauseReading) -> str | None:
    """The part a clause targets: named ("teeth", "whites of her eyes"), or the irises for an eye colour."""
    if r.part is not None:
        return r.part
    eyes = set(PARTS["iris"])
    targets = set(expand(r.targets))
    if (r.colour_kind and not r.removal and targets and targets <= eyes and r.makeup not in EYE_MAKEUP
            and not r.accessory):
        return "iris"
    return None


def plan_part(appearance: list[ClauseReading], components: tuple[str, ...], notes: list[str]) -> str | None:
    """The plan's part when every appearance clause targets it inside its components."""
    parts = {reading_part(r) for r in appearance}
    if len(parts) != 1 or None in parts:
        named = sorted(p for p in parts if p)
        if named:
            notes.append(f"part {named[0]!r} not used: the edit covers other parts too")
        return None
    part = parts.pop()
    if not {c for c in components if c != "accessory"} <= set(PARTS[part]):
        notes.append(f"part {part!r} not used: the plan targets more than the {component_words(PARTS[part])}")
        return None
    return part


def diffusion_values(kinds: list[EditKind], intensity: float) -> dict[str, Any]:
    """Guidance, steps, strength, keyframes, iterations: the most demanding kind wins."""
    appearance = [KIND_VALUES[k] for k in kinds if k in KIND_VALUES]
    if not appearance:
        return {"keyframes": 0, "iterations": 0, "strength": 0.05 + 0.5 * intensity}
    lerp = lambda pair: round(pair[0] + (pair[1] - pair[0]) * intensity, 2)  # noqa: E731
    return {
        "guidance_scale": max(lerp(v["g"]) for v in appearance),
        "image_guidance_scale": min(lerp(v["ig"]) for v in appearance),
        "steps": max(v["steps"] for v in appearance),
        "strength": round(0.45 + 0.5 * intensity, 2),
        "keyframes": max(v["keyframes"] for v in appearance),
        "iterations": max(v["iterations"] for v in appearance),
    }


def instruction(r: ClauseReading, part: str | None) -> str:
    """The image editor's instruction for one appearance clause."""
    targets = "whole head" if r.whole_head else component_words(expand([c for c in r.targets if c != "accessory"]))
    if part is not None:
        targets = PART_WORDS[part]
    if r.removal:
        kind, thing = removed_thing(r)
        if kind is EditKind.ACCESSORY:
            return f"remove the {thing}, showing the {component_words(r.accessory_place)} underneath"
        if kind is EditKind.SHAPE:
            return f"remove the {thing}"
        return f"remove the {thing} from the {targets}, natural {targets}"
    if r.accessory and not r.accessory_owned:
        colour = f"{r.colour_name} " if r.colour_name else ""
        return f"add {colour}{r.accessory}"
    if r.accessory_owned:
        targets = r.accessory or "accessory"
    parts: list[str] = []
    if r.shape:
        parts.append(f"make the {targets} {' '.join(r.shape)}")
    if r.texture:
        texture = " ".join(r.texture)
        colour = f"{r.colour_name} " if r.colour_name and r.colour_name not in texture else ""
        parts.append(f"give the {targets} a {colour}{texture} look")
    elif r.lightness:
        amount = "slightly " if abs(r.lightness) < 0.1 else "much " if abs(r.lightness) > 0.19 else ""
        parts.append(f"make the {targets} {amount}{'darker' if r.lightness < 0 else 'lighter'}, same hue")
    elif r.colour_kind:
        what = f" {r.makeup}" if r.makeup and r.makeup not in ("colour", "color", "dye") else ""
        parts.append(f"apply {r.colour_name or 'a new colour'}{what} to the {targets}" if what
                     else f"make the {targets} {r.colour_name or 'a new colour'}")
    return " and ".join(parts)


def _colour(appearance: list[ClauseReading], components: tuple[str, ...], lightness: float,
            context: AvatarContext | None, notes: list[str]) -> tuple[tuple[int, int, int] | None, str | None]:
    named = next(((r.colour, r.colour_name) for r in appearance if r.colour is not None), None)
    if named is not None:
        return named
    current = context.colour_of([c for c in components if c != "accessory"]) if context and lightness else None
    if current is None:
        return None, None
    shifted = shift_lightness(current, lightness)
    word = "darker" if lightness < 0 else "lighter"
    notes.append(f"{word}: the avatar's own {family_of(current)} {list(current)} shifted to {list(shifted)}")
    return shifted, f"{word} {family_of(current)}"


def plan_data(prompt: str, readings: list[ClauseReading], notes: list[str],
              context: AvatarContext | None = None) -> dict[str, Any]:
    """Combine consistent clause readings (see unclear.check_consistent) into loose plan data."""
    appearance = [r for r in readings if r.is_appearance and not r.negated]
    for r in readings:
        if r.negated and r.is_appearance and not r.expression:
            notes.append(f"ignored {r.text!r}: it says what not to change")
    expression: dict[str, float] = {}
    for r in readings:
        for name, delta in r.expression.items():
            lo, hi = expression_range(name)
            expression[name] = round(max(lo, min(hi, expression.get(name, 0.0) + delta)), 3)
    components = expand([c for r in appearance for c in r.targets])
    present = set().union(*(reading_kinds(r) for r in appearance)) | ({EditKind.EXPRESSION} if expression else set())
    kinds = [k for k in KIND_ORDER if k in present]
    actions = {r.action for r in appearance}
    action = "remove" if "remove" in actions else "add" if "add" in actions else "change"
    lightness = next((r.lightness for r in appearance if r.lightness), 0.0)
    colour, colour_name = _colour(appearance, components, lightness, context, notes)
    intensity = max((r.intensity for r in appearance), default=None)
    if intensity is None:
        intensity = max(r.intensity for r in readings if r.expression)
    part = plan_part(appearance, components, notes) if appearance else None
    instructions = [i for i in (instruction(r, part) for r in appearance) if i]
    if instructions:
        refined = "; ".join(instructions) + "; keep the face, identity and lighting unchanged elsewhere, photorealistic"
    else:
        refined = "the same person, " + ", ".join(f"{k.replace('_', ' ')} {v:+.2f}" for k, v in expression.items())
    negative = BASE_NEGATIVE
    targets = component_words([c for c in components if c != "accessory"], part)
    if EditKind.COLOUR in kinds and action != "remove":
        negative += f", colour bleeding outside the {targets}"
    if EditKind.ACCESSORY in kinds:
        negative += ", floating or duplicated objects" if action == "add" else ", leftover pieces, empty outline"
    expr_text = ", ".join(f"{k} {v:+.2f}" for k, v in expression.items())
    rationale = (f"{action} {'/'.join(k.value for k in kinds)} on {', '.join(components) or 'no components'}"
                 + (f" ({part})" if part else "") + f"; intensity {intensity:.2f}"
                 + (f"; expression {expr_text}" if expr_text else ""))
    return {
        "refined_prompt": refined, "negative_prompt": negative, "components": list(components),
        "kinds": [k.value for k in kinds], "colour": colour, "colour_name": colour_name,
        "accessory": next((r.accessory for r in appearance if r.accessory), None), "part": part,
        "action": action, "lightness": lightness, "expression": expression, "intensity": intensity,
        "rationale": rationale[:300], **diffusion_values(kinds, intensity),
    }
