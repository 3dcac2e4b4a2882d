"""EditPlan schema: strict validation, repair with clamping notes, JSON round trip, versioning."""

from __future__ import annotations

import json

import pydantic
import pytest

from engine.prompting.llm_json import extract_first_json_object, plan_from_answer, system_prompt
from engine.prompting.plan import EditKind, EditPlan, PlanError, build_plan, plan_from_json, sanitize_plan

GOOD = {"refined_prompt": "make the hair blue", "components": ["hair"], "kinds": ["colour"], "colour": [0, 0, 255]}


def test_round_trip_json() -> None:
    plan, notes = sanitize_plan(GOOD, prompt="blue hair")
    assert notes == []
    again = plan_from_json(plan.to_json())
    assert again == plan
    data = json.loads(plan.to_json())
    assert data["version"] == 2 and data["kinds"] == ["colour"] and data["colour"] == [0, 0, 255]
    assert data["action"] == "change" and data["lightness"] == 0.0 and data["part"] is None


def test_strict_model_rejects_out_of_range_and_unknown() -> None:
    with pytest.raises(PlanError, match="guidance_scale"):
        build_plan({**GOOD, "guidance_scale": 99})
    with pytest.raises(PlanError, match="unknown facial component"):
        build_plan({**GOOD, "components": ["tail"]})
    with pytest.raises(PlanError, match="unknown expression"):
        build_plan({**GOOD, "expression": {"dance": 0.5}})
    with pytest.raises(PlanError, match="Extra inputs"):
        build_plan({**GOOD, "colour_space": "srgb"})
    with pytest.raises(PlanError, match="target component"):
        build_plan({**GOOD, "components": []})


def test_sanitize_clamps_and_reports() -> None:
    data = {**GOOD, "guidance_scale": 55, "steps": -3, "strength": "0.5", "keyframes": "lots",
            "expression": {"smile": 4, "expr_7": -9, "dance": 1}, "components": ["hair", "tail", "lip"],
            "kinds": ["color", "bogus"], "wings": True}
    plan, notes = sanitize_plan(data)
    assert plan.guidance_scale == 20.0 and plan.steps == 1 and plan.strength == 0.5 and plan.keyframes == 8
    assert plan.expression == {"smile": 1.0, "expr_7": -3.0}
    assert plan.components == ("hair", "upper_lip", "lower_lip")  # "lip" read as lips, "tail" dropped
    assert plan.kinds == (EditKind.COLOUR, EditKind.EXPRESSION)
    text = "\n".join(notes)
    for word in ("guidance_scale 55 clamped to 20", "steps -3 clamped to 1", "'lots' is not a number",
                 "smile 4.0 clamped", "unknown expression 'dance'", "unknown component 'tail'",
                 "unknown edit kind 'bogus'", "unknown field 'wings'", "expression kind added"):
        assert word in text, (word, text)


@pytest.mark.parametrize("data, message", [
    ({"components": ["hair"], "kinds": ["colour"]}, "no refined prompt"),
    ({"refined_prompt": "x", "components": ["hair"], "kinds": ["dance"]}, "no valid edit kind"),
    ({"refined_prompt": "x", "components": ["tail"], "kinds": ["colour"]}, "needs target components"),
    ({"refined_prompt": "x", "components": ["hair"], "kinds": 5}, "kinds"),
    ({"refined_prompt": "x", "kinds": ["colour"], "components": ["hair"], "version": 7}, "version 7 is not supported"),
])
def test_sanitize_rejects_what_cannot_be_repaired(data: dict, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        sanitize_plan(data)


def test_colour_forms() -> None:
    for colour, rgb in (("#ff8000", (255, 128, 0)), ("bright red", None), ([1.0, 0.5, 0.0], (255, 128, 0)),
                        ([300, -5, 10], (255, 0, 10))):
        plan, _ = sanitize_plan({**GOOD, "colour": colour})
        assert plan.colour is not None
        if rgb is not None:
            assert plan.colour == rgb
    plan, notes = sanitize_plan({**GOOD, "colour": "blurple"})
    assert plan.colour is None and any("blurple" in n for n in notes)


def test_expression_only_plan() -> None:
    plan, _ = sanitize_plan({"refined_prompt": "smile", "kinds": ["expression"], "expression": {"smile": 0.4},
                             "keyframes": 0, "iterations": 0})
    assert plan.is_expression_only and plan.kind is EditKind.EXPRESSION and plan.components == ()


def test_plan_from_json_errors_name_the_source() -> None:
    with pytest.raises(PlanError, match="edit.json: not JSON"):
        plan_from_json("{oops", source="edit.json")
    with pytest.raises(PlanError, match=r"edit.json: plan version 3 is not supported \(this build reads 1 and 2\)"):
        plan_from_json(json.dumps({**GOOD, "version": 3}), source="edit.json")
    with pytest.raises(PlanError, match="edit.json: .*an add plan adds an accessory"):
        plan_from_json(json.dumps({**GOOD, "version": 2, "action": "add"}), source="edit.json")


def test_version_1_files_are_read_and_upgraded() -> None:
    """A version-1 plan (written before `action` and `lightness`) reads as version 2: its accessory plans
    were additions, everything else a change."""
    v1_accessory = {"version": 1, "refined_prompt": "add glasses",
                    "components": ["left_eye", "right_eye", "nose", "accessory"],
                    "kinds": ["accessory"], "accessory": "glasses"}
    plan = plan_from_json(json.dumps(v1_accessory))
    assert plan.version == 2 and plan.action == "add" and plan.lightness == 0.0 and plan.accessory == "glasses"
    plan = plan_from_json(json.dumps({**GOOD, "version": 1}))
    assert plan.version == 2 and plan.action == "change"
    plan, notes = sanitize_plan({**GOOD, "version": 1})
    assert plan.version == 2 and plan.action == "change" and notes == []
    with pytest.raises(PlanError, match="Extra inputs"):  # version 1 had no such field
        plan_from_json(json.dumps({**GOOD, "version": 1, "shade": 3}))


def test_action_and_lightness_validated_and_repaired() -> None:
    removal = {"refined_prompt": "remove the glasses", "components": ["left_eye", "right_eye", "nose", "accessory"],
               "kinds": ["accessory"], "accessory": "glasses"}
    assert build_plan({**removal, "action": "remove"}).action == "remove"
    with pytest.raises(PlanError, match="add plan adds an accessory"):
        build_plan({**GOOD, "action": "add"})
    with pytest.raises(PlanError, match="remove plan needs an appearance kind"):
        build_plan({"refined_prompt": "x", "kinds": ["expression"], "expression": {"smile": -0.5}, "action": "remove",
                    "keyframes": 0, "iterations": 0})
    with pytest.raises(PlanError, match="lightness"):
        build_plan({**GOOD, "lightness": 0.9})
    plan, notes = sanitize_plan(removal)  # no action: an accessory plan adds, as in version 1
    assert plan.action == "add" and notes == []
    plan, notes = sanitize_plan({**removal, "action": "Delete", "lightness": -2})
    assert plan.action == "remove" and plan.lightness == -0.5 and any("lightness -2 clamped" in n for n in notes)
    plan, notes = sanitize_plan({**GOOD, "action": "add"})
    assert plan.action == "change" and any("needs an accessory" in n for n in notes)
    plan, notes = sanitize_plan({**GOOD, "action": "explode"})
    assert plan.action == "change" and any("unknown action 'explode'" in n for n in notes)


def test_part_needs_one_of_its_components() -> None:
    left = {"refined_prompt": "make the left iris green", "components": ["left_eye"], "kinds": ["colour"]}
    assert build_plan({**left, "part": "iris"}).part == "iris"
    with pytest.raises(PlanError, match="part 'teeth' lies in mouth_interior"):
        build_plan({**left, "part": "teeth"})
    plan, notes = sanitize_plan({**GOOD, "part": "iris"})
    assert plan.part is None and any("part 'iris' dropped" in n for n in notes)


def test_extract_first_json_object() -> None:
    text = 'Sure! Here: {"a": "}{", "b": {"c": 1}} and {"later": 2}'
    assert extract_first_json_object(text) == {"a": "}{", "b": {"c": 1}}
    assert extract_first_json_object('{bad} then {"ok": true}') == {"ok": True}
    for bad in ("no braces", '{"open": 1', "[1, 2]"):
        with pytest.raises(PlanError):
            extract_first_json_object(bad)


def test_plan_from_answer_and_system_prompt() -> None:
    plan, _ = plan_from_answer("```json\n" + json.dumps(GOOD) + "\n```", prompt="blue hair")
    assert plan.prompt == "blue hair" and plan.components == ("hair",)
    text = system_prompt()
    assert "upper_lip" in text and "guidance_scale" in text
    assert '"action" (one of: change, add, remove' in text and '"lightness"' in text and "iris" in text


def test_frozen() -> None:
    """Assigning a field is refused by pydantic's frozen check and leaves the plan as it was; an edit is a copy."""
    plan, _ = sanitize_plan(GOOD)
    before = plan.model_dump()
    with pytest.raises(pydantic.ValidationError, match="Instance is frozen"):
        plan.steps = 3  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="Instance is frozen"):
        plan.components = ("lips",)  # type: ignore[misc]
    assert plan.model_dump() == before and plan.steps == 20
    assert isinstance(plan.components, tuple) and isinstance(plan.kinds, tuple)  # no list to mutate in place
    edited = EditPlan.model_validate({**plan.model_dump(), "steps": 3})
    assert edited.steps == 3 and plan.steps == 20 and edited != plan
