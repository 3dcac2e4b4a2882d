"""Prompt panel in the main window: refinement on a worker, plan shown, expression applied (undoable),
component edits drive the session selection, errors shown in the panel."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from engine.edit.adjust import selection_from_components
from engine.prompting import EditKind, RefineSettings
from tests.gui_windows import new_window


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    # closing with unsaved changes asks; here the answer is always "Discard" (pytest-qt closes windows first)
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard))
    win = new_window(tmp_path, "auto", 128, refine_settings=RefineSettings(use_embeddings=False))
    model = win.model
    controller = win.controller
    qtbot.addWidget(win)
    win.resize(1100, 900)
    for key, dock in win.docks.items():
        dock.setVisible(key == "prompt")
    win.show()
    with qtbot.waitSignal(model.avatarChanged, timeout=60_000):
        win.open_avatar(None)
    yield win
    win.close()
    controller.shutdown()


def test_refine_runs_on_a_worker_and_shows_the_plan(window, qtbot):
    prompt = window.features["prompt"]
    panel = prompt.panel
    qtbot.keyClicks(panel.prompt_box.lineEdit(), "give her bright red lipstick")
    with qtbot.waitSignal(prompt.refined, timeout=60_000) as blocker:
        qtbot.mouseClick(panel.refine_button, Qt.MouseButton.LeftButton)
        assert prompt.busy and not panel.refine_button.isEnabled(), "the click returns while refinement runs"
    result = blocker.args[0]
    plan = panel.plan
    assert plan is result.plan and plan.prompt == "give her bright red lipstick"
    assert set(plan.components) == {"upper_lip", "lower_lip"} and plan.kinds[0] is EditKind.COLOUR
    r, g, b = plan.colour
    assert r > 200 and g < 60 and b < 60
    assert panel.component_checks["upper_lip"].isChecked() and not panel.component_checks["nose"].isChecked()
    qtbot.waitUntil(lambda: not prompt.busy and panel.refine_button.isEnabled(), timeout=5_000)
    assert [e["prompt"] for e in prompt.history] == ["give her bright red lipstick"]
    assert prompt.history[0]["plan"]["colour"] == list(plan.colour)


def test_component_edit_selects_those_gaussians(window, qtbot):
    prompt = window.features["prompt"]
    panel, model = prompt.panel, window.model
    qtbot.keyClicks(panel.prompt_box.lineEdit(), "give her bright red lipstick")
    with qtbot.waitSignal(prompt.refined, timeout=60_000):
        qtbot.mouseClick(panel.refine_button, Qt.MouseButton.LeftButton)
    assert model.selection is None, "a new plan alone does not change the selection"
    with qtbot.waitSignal(model.selectionChanged, timeout=2_000):
        panel.component_checks["nose"].click()
    expected = selection_from_components(model.avatar.gaussians, ["upper_lip", "lower_lip", "nose"])
    assert torch.equal(model.selection > 0.5, expected) and int(expected.sum()) > 0
    model.undo_stack.undo()
    assert model.selection is None


def test_apply_expression_only_plan_changes_pose_and_undo_restores(window, qtbot):
    prompt = window.features["prompt"]
    panel, model = prompt.panel, window.model
    before = model.pose
    qtbot.keyClicks(panel.prompt_box.lineEdit(), "make her smile")
    with qtbot.waitSignal(prompt.refined, timeout=60_000):
        qtbot.mouseClick(panel.refine_button, Qt.MouseButton.LeftButton)
    plan = panel.plan
    assert plan.is_expression_only and plan.expression["smile"] > 0
    assert panel.apply_expression_button.isEnabled()
    params_before = model.current_params().expr.clone()
    with qtbot.waitSignal(model.poseChanged, timeout=2_000):
        qtbot.mouseClick(panel.apply_expression_button, Qt.MouseButton.LeftButton)
    assert model.pose.expressions == {"smile": plan.expression["smile"]}
    index = model.avatar.head.expression_index("smile")
    delta = model.current_params().expr - params_before
    assert abs(float(delta[0, index]) - plan.expression["smile"]) < 1e-6
    model.undo_stack.undo()
    assert model.pose == before


def test_an_unclear_prompt_shows_why_and_suggestions_that_refine_at_a_click(window, qtbot):
    prompt = window.features["prompt"]
    panel = prompt.panel
    qtbot.keyClicks(panel.prompt_box.lineEdit(), "make it glossy")
    with qtbot.waitSignal(prompt.refused, timeout=60_000) as blocker:
        qtbot.mouseClick(panel.refine_button, Qt.MouseButton.LeftButton)
    reason = blocker.args[0]
    assert panel.message_label.text().startswith("I can't tell what to change: 'make it glossy'")
    assert "#b00020" not in panel.message_label.styleSheet(), "a normal message, not an error"
    assert "make the lips glossy" in reason.suggestions and "make the lips glossy" in panel.suggestion_label.text()
    assert panel.plan is None and prompt.history[-1]["suggestions"] == list(reason.suggestions)
    qtbot.waitUntil(lambda: panel.refine_button.isEnabled(), timeout=5_000)
    with qtbot.waitSignal(prompt.refined, timeout=60_000):
        panel.suggestion_label.linkActivated.emit("make the lips glossy")
    assert panel.plan.components == ("upper_lip", "lower_lip") and panel.suggestion_label.text() == ""


def test_removing_what_the_avatar_lacks_says_so(window, qtbot):
    prompt = window.features["prompt"]
    panel = prompt.panel
    qtbot.keyClicks(panel.prompt_box.lineEdit(), "remove her glasses")
    with qtbot.waitSignal(prompt.refused, timeout=60_000):
        qtbot.mouseClick(panel.refine_button, Qt.MouseButton.LeftButton)
    assert panel.message_label.text() == "nothing to remove: this avatar has no glasses" and panel.plan is None
