"""Prompt panel: signals out, plans in, form edits become new validated plans."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402

from engine.prompting.plan import EditKind, EditPlan, sanitize_plan  # noqa: E402
from engine.prompting.rules import RulesConfig, RulesRefiner  # noqa: E402
from widgets.prompt_panel import PromptPanel  # noqa: E402


@pytest.fixture()
def panel(qtbot) -> PromptPanel:
    widget = PromptPanel()
    qtbot.addWidget(widget)
    return widget


def test_refine_requested_with_prompt_and_backend(panel: PromptPanel, qtbot) -> None:
    panel.backend_box.setCurrentText("http")
    qtbot.keyClicks(panel.prompt_box.lineEdit(), "give her red lipstick")
    with qtbot.waitSignal(panel.refine_requested, timeout=1000) as blocker:
        qtbot.mouseClick(panel.refine_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["give her red lipstick", "http"]
    panel.prompt_box.setEditText("make her smile")
    with qtbot.waitSignal(panel.refine_requested, timeout=1000) as blocker:
        qtbot.keyClick(panel.prompt_box.lineEdit(), Qt.Key.Key_Return)
    assert blocker.args == ["make her smile", "http"]
    history = [panel.prompt_box.itemText(i) for i in range(panel.prompt_box.count())]
    assert history == ["make her smile", "give her red lipstick"]


def test_empty_prompt_shows_error_not_signal(panel: PromptPanel, qtbot) -> None:
    with qtbot.assertNotEmitted(panel.refine_requested):
        panel.request_refine()
    assert "prompt" in panel.message_label.text().lower()


def test_show_clamped_plan_then_edit_slider(panel: PromptPanel, qtbot) -> None:
    plan, notes = sanitize_plan({"refined_prompt": "make the hair blue", "components": ["hair", "wings"],
                                 "kinds": ["colour"], "colour": [0, 0, 255], "guidance_scale": 80})
    panel.show_plan(plan, notes)
    assert "clamped to 20" in panel.message_label.text() and "wings" in panel.message_label.text()
    assert panel.spins["guidance_scale"].value() == 20.0
    assert panel.component_checks["hair"].isChecked() and not panel.component_checks["skin"].isChecked()
    assert "rgb(0,0,255)" in panel.colour_button.styleSheet()
    with qtbot.waitSignal(panel.plan_edited, timeout=1000) as blocker:
        panel.sliders["guidance_scale"].setValue(125)  # 12.5 at 10 steps per unit
    edited = blocker.args[0]
    assert isinstance(edited, EditPlan) and edited.guidance_scale == 12.5
    assert panel.plan == edited and panel.spins["guidance_scale"].value() == 12.5


def test_form_edits_write_new_plans(panel: PromptPanel, qtbot) -> None:
    plan, _ = RulesRefiner(RulesConfig(use_embeddings=False)).refine(
        "give her bright red lipstick and make her smile a little")
    panel.show_plan(plan)
    assert not panel.apply_expression_button.isEnabled()
    with qtbot.waitSignal(panel.plan_edited, timeout=1000) as blocker:
        panel.component_checks["hair"].click()
    assert blocker.args[0].components == ("hair", "upper_lip", "lower_lip")
    with qtbot.waitSignal(panel.plan_edited, timeout=1000) as blocker:
        panel.expression_spins["jaw_open"].setValue(0.4)
    assert blocker.args[0].expression == {"smile": 0.3, "jaw_open": 0.4}
    with qtbot.waitSignal(panel.plan_edited, timeout=1000) as blocker:
        panel.set_colour(QColor(10, 200, 30))
    assert blocker.args[0].colour == (10, 200, 30)
    with qtbot.waitSignal(panel.plan_edited, timeout=1000) as blocker:
        panel.spins["steps"].setValue(42)
    assert blocker.args[0].steps == 42 and blocker.args[0].colour == (10, 200, 30)


def test_refused_edit_keeps_plan_and_form(panel: PromptPanel, qtbot) -> None:
    plan, _ = sanitize_plan({"refined_prompt": "blue hair", "components": ["hair"], "kinds": ["colour"]})
    panel.show_plan(plan)
    with qtbot.assertNotEmitted(panel.plan_edited):
        panel.component_checks["hair"].click()  # no component left for a colour edit
    assert panel.plan == plan and panel.component_checks["hair"].isChecked()
    assert "refused" in panel.message_label.text()


def test_expression_only_plan_apply(panel: PromptPanel, qtbot) -> None:
    plan, _ = RulesRefiner(RulesConfig(use_embeddings=False)).refine("raise her eyebrows in surprise")
    panel.show_plan(plan, ["note one"])
    assert panel.apply_expression_button.isEnabled()
    assert panel.kind_checks[EditKind.EXPRESSION].isChecked()
    with qtbot.waitSignal(panel.apply_expression_requested, timeout=1000) as blocker:
        qtbot.mouseClick(panel.apply_expression_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == {"brow_raise": 0.6, "jaw_open": 0.3}


def test_indexed_expression_row_added(panel: PromptPanel) -> None:
    plan, _ = sanitize_plan({"refined_prompt": "x", "kinds": ["expression"], "expression": {"expr_12": 1.5}})
    panel.show_plan(plan)
    assert panel.expression_spins["expr_12"].value() == 1.5


def test_malformed_plans_never_crash(panel: PromptPanel) -> None:
    panel.show_plan({"refined_prompt": "x", "components": "hair", "kinds": "colour", "steps": "many",
                     "strength": 7})
    assert panel.plan is not None and panel.plan.strength == 1.0 and panel.plan.steps == 20
    assert "clamped" in panel.message_label.text()
    before = panel.plan
    panel.show_plan({"kinds": 3})
    assert panel.plan == before and "rejected" in panel.message_label.text().lower()
    panel.show_plan(None)
    assert panel.plan == before


def test_show_error(panel: PromptPanel) -> None:
    panel.show_error("local backend not used: cannot load model")
    assert panel.message_label.text() == "local backend not used: cannot load model"


def test_refusal_shows_suggestions_that_refine_when_clicked(panel: PromptPanel, qtbot) -> None:
    panel.show_refusal("I can't tell what to change: 'blue' does not say which part", ["make the hair blue",
                                                                                      "make the lips <blue>"])
    assert panel.message_label.text().startswith("I can't tell") and panel.message_label.styleSheet() == ""
    text = panel.suggestion_label.text()
    assert 'href="make the hair blue"' in text and "&lt;blue&gt;" in text
    with qtbot.waitSignal(panel.refine_requested, timeout=1000) as blocker:
        panel.suggestion_label.linkActivated.emit("make the hair blue")
    assert blocker.args[0] == "make the hair blue" and panel.prompt_box.currentText() == "make the hair blue"
    panel.show_error("oops")
    assert panel.suggestion_label.text() == ""
