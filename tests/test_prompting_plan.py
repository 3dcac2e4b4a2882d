"""EditPlan schema: strict validation, repair with clamping notes, JSON round trip, versioning."""

from __future__ import annotations

import json

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
    assert data["version"] == 1 and data["kinds"] == ["colour"] and data["colour"] == [0, 0, 255]


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
    ({"refined_prompt": "x", "kinds": ["colour"], "components": ["hair"], "version": 7}, "version"),
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
    with pytest.raises(PlanError, match="edit.json: plan version 2"):
        plan_from_json(json.dumps({**GOOD, "version": 2}), source="edit.json")


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
    assert "upper_lip" in system_prompt() and "guidance_scale" in system_prompt()


def test_frozen() -> None:
    plan, _ = sanitize_plan(GOOD)
    with pytest.raises(Exception):
        plan.steps = 3  # type: ignore[misc]
    assert isinstance(plan, EditPlan)
