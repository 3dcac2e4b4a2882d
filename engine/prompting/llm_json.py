"""What language-model backends share: the instruction asking for a JSON plan, extraction of the
first JSON object from an answer, and validation/repair of that object into an EditPlan."""

from __future__ import annotations

import json
from typing import Any

from engine.errors import UserError
from engine.head.components import COMPONENTS, GROUPS, PARTS
from engine.prompting.plan import ACTIONS, EXPRESSION_NAMES, RANGES, EditKind, EditPlan, PlanError, sanitize_plan


def system_prompt() -> str:
    """The instruction that asks a model for one JSON edit plan (kept short for small models)."""
    ranges = ", ".join(f"{k} {lo}-{hi}" for k, (lo, hi) in RANGES.items())
    return (
        "You turn a request to edit a 3D head avatar into one JSON object and nothing else. Keys: "
        '"refined_prompt" (a clear instruction for an image editor), "negative_prompt", '
        f'"components" (list from: {", ".join(COMPONENTS)}; groups: {", ".join(GROUPS)}), '
        f'"kinds" (list from: {", ".join(k.value for k in EditKind)}), '
        '"colour" ([r, g, b] 0-255 or null), "colour_name", "accessory" (or null), '
        f'"part" (or null; one of: {", ".join(PARTS)}, e.g. "iris" for eye colour, "teeth" for teeth), '
        f'"action" (one of: {", ".join(ACTIONS)}; "add" puts on an accessory, "remove" takes away an accessory, '
        'makeup or facial hair), "lightness" (-0.5..0.5: darker < 0 < lighter, for "darker"/"lighter" without a '
        'colour name), '
        f'"expression" (object of name: delta in -1..1; names: {", ".join(EXPRESSION_NAMES)}, or expr_<i>), '
        f'"intensity", "guidance_scale", "image_guidance_scale", "steps", "strength", "keyframes", '
        f'"iterations", "rationale" (one sentence). Ranges: {ranges}. '
        "Expression-only requests use kinds [\"expression\"], keyframes 0 and iterations 0; \"no longer smile\" "
        "is a negative smile delta."
    )


def build_messages(prompt: str) -> list[dict[str, str]]:
    """Chat messages (system + user) for an OpenAI-style chat or a chat template."""
    example = {"refined_prompt": "make the hair bright blue", "components": ["hair"], "kinds": ["colour"],
               "colour": [30, 90, 255], "expression": {}}
    return [
        {"role": "system", "content": system_prompt() + " Example: " + json.dumps(example)},
        {"role": "user", "content": prompt},
    ]


def plain_prompt(prompt: str) -> str:
    """A single text prompt for models without a chat template."""
    msgs = build_messages(prompt)
    return f"{msgs[0]['content']}\nRequest: {prompt}\nJSON:"


MAX_STARTS = 64
"""Most '{' positions tried as the start of the plan object."""
MAX_OBJECT_CHARS = 16_384
"""Longest plan object looked for (a plan is a few hundred characters)."""


def extract_first_json_object(text: str) -> dict[str, Any]:
    """The first balanced {...} in `text` that parses as a JSON object (strings and escapes respected).

    Raises PlanError saying what was wrong (no object, unbalanced, not JSON).
    """
    start = text.find("{")
    if start < 0:
        raise PlanError(f"the answer holds no JSON object: {text[:80]!r}")
    last_error = "unbalanced braces"
    for _ in range(MAX_STARTS):  # at most MAX_STARTS × MAX_OBJECT_CHARS characters scanned, whatever the answer
        if start < 0:
            break
        depth, in_str, escape = 0, False, False
        for i in range(start, min(len(text), start + MAX_OBJECT_CHARS)):
            ch = text[i]
            if in_str:
                if escape:
                    escape = False
                elif ch == "\\":
                    escape = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    try:
                        obj = json.loads(text[start:i + 1])
                    except json.JSONDecodeError as exc:
                        last_error = f"not valid JSON ({exc.msg})"
                        break
                    except RecursionError:
                        last_error = "nested too deeply"
                        break
                    if isinstance(obj, dict):
                        return obj
                    break
        start = text.find("{", start + 1)
    raise PlanError(f"no JSON object could be read from the answer: {last_error}")


def plan_from_answer(answer: str, prompt: str) -> tuple[EditPlan, list[str]]:
    """Validate (and repair) a model's answer into a plan; PlanError explains a rejection."""
    data = extract_first_json_object(answer)
    return sanitize_plan(data, prompt=prompt)


class BackendError(UserError, RuntimeError):
    """A backend could not answer at all (model missing, server unreachable, timeout)."""
