"""The Models dialog (headless) against the stand-in hub: Get with progress, Cancel, Use, Remove, endpoint
and key; "Get a model…" from the Edit panel when a plan needs a diffusion model, after which the edit
runs with the downloaded model; the Prompt panel says which refiner runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_stub import StubHub
from PySide6.QtCore import Qt

from app.models_controller import ModelsController, connect_models
from engine.models import Choice, installed, load_settings, save_settings
from engine.models.secrets import api_key

KEY = "sk-gui-test-5e1d9"


def _click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _wait_done(qtbot, controller: ModelsController) -> None:
    qtbot.waitUntil(lambda: not controller.download.busy, timeout=60_000)
    qtbot.waitUntil(lambda: controller.dialog.cancel_button.isEnabled() is False, timeout=5_000)


@pytest.mark.slow
def test_models_dialog_get_cancel_use_remove_and_keys(qtbot, private_hub: Path, tiny_repos: dict[str, Path]) -> None:
    controller = ModelsController()
    dialog = controller.open()
    qtbot.addWidget(dialog)
    assert dialog.row_of("timbrooks/instruct-pix2pix") >= 0 and "CPU" in dialog.device_label.text()
    assert dialog.role_labels["editor"].text() == "procedural: no image editor model set"

    with StubHub({"tiny/chat-lm": tiny_repos["tiny/chat-lm"]}, delay=2.0) as hub:
        dialog.mirror_edit.setText(hub.url)
        dialog.mirror_edit.editingFinished.emit()
        assert load_settings().hub_endpoint == hub.url
        dialog.id_edit.setText("tiny/chat-lm")
        dialog.role_box.setCurrentIndex(dialog.role_box.findData("refiner"))
        progress: list[str] = []
        _click(qtbot, dialog.get_button)
        controller.download.worker.progress.connect(lambda f, t: progress.append(t))
        assert dialog.cancel_button.isEnabled() and not dialog.get_button.isEnabled()
        qtbot.waitUntil(lambda: len(progress) >= 2, timeout=30_000)  # bytes are arriving
        _click(qtbot, dialog.cancel_button)
        _wait_done(qtbot, controller)
        assert "cancelled" in dialog.status_label.text() and "Get resumes" in dialog.status_label.text()
        assert dialog.table.item(dialog.row_of("tiny/chat-lm"), 2).text() == "partial"

        _click(qtbot, dialog.get_button)  # resume
        _wait_done(qtbot, controller)
    assert "ready" in dialog.status_label.text() and "B/s" in " ".join(progress)
    assert installed("tiny/chat-lm").complete and load_settings().choice("refiner") == Choice("tiny/chat-lm")
    assert dialog.role_labels["refiner"].text() == "local: tiny/chat-lm"
    assert dialog.table.item(dialog.row_of("tiny/chat-lm"), 2).text() == "installed"

    box = dialog.endpoints["refiner"]
    box.url_edit.setText("http://127.0.0.1:11434/v1")
    box.model_edit.setText("qwen2.5")
    _click(qtbot, box.use_button)
    assert load_settings().choice("refiner") == Choice("http://127.0.0.1:11434/v1", "qwen2.5")
    box.key_edit.setText(KEY)
    _click(qtbot, box.key_button)
    assert box.key_edit.text() == "" and box.key_status.text() == "key: system keyring"
    assert api_key("refiner").key == KEY
    assert KEY not in (private_hub.parent.parent / "config" / "models.json").read_text()

    dialog.id_edit.setText("tiny/chat-lm")
    _click(qtbot, dialog.remove_button)
    assert installed("tiny/chat-lm") is None and "freed" in dialog.status_label.text()
    dialog.role_box.setCurrentIndex(dialog.role_box.findData("refiner"))
    _click(qtbot, dialog.default_button)
    assert load_settings().choice("refiner") is None and dialog.role_labels["refiner"].text().startswith("rules")


def test_get_a_model_from_the_edit_panel_then_the_edit_uses_it(qtbot, private_hub: Path,
                                                               tiny_repos: dict[str, Path]) -> None:
    from test_edit_controller import QUICK

    from app.edit_controller import EditController
    from app.prompt_controller import PromptController
    from app.session import SessionModel
    from engine.avatar.demo import load_demo_avatar
    from engine.models import ModelSettings
    from engine.prompting import refine
    from widgets.edit_panel import EditPanel
    from widgets.prompt_panel import PromptPanel

    with StubHub({"tiny/turbo": tiny_repos["tiny/turbo"]}) as hub:
        save_settings(ModelSettings(hub_endpoint=hub.url, keep_free_gb=0.0, diffusion_size=32))
        model = SessionModel()
        model.set_avatar(load_demo_avatar(count=4000))
        panel, prompt_panel = EditPanel(), PromptPanel()
        qtbot.addWidget(panel)
        qtbot.addWidget(prompt_panel)
        edit = EditController(model, panel, QUICK)
        prompt = PromptController(model, prompt_panel)
        models = ModelsController()
        connect_models(models, edit, prompt)
        assert prompt_panel.backend_note.text() == "Refiner: rules: no prompt refiner model set"
        assert prompt_panel.backend_box.currentText() == "rules"

        edit.set_plan(refine("give him freckles").plan)
        assert panel.backend_box.currentData() == "auto"
        assert "procedural: no image editor model set" in panel.backend_note.text()
        assert "needs a diffusion model" in panel.backend_note.text() and not panel.get_model_button.isHidden()
        edit.set_plan(refine("make the lips blue").plan)  # the procedural editor can do this one
        assert panel.get_model_button.isHidden()
        edit.set_plan(refine("give him freckles").plan)

        _click(qtbot, panel.get_model_button)
        dialog = models.dialog
        qtbot.addWidget(dialog)
        assert dialog.isVisible() and dialog.role() == "editor"
        assert dialog.model_id() == "SimianLuo/LCM_Dreamshaper_v7"  # CPU: the first few-step editor is offered
        dialog.id_edit.setText("tiny/turbo")
        _click(qtbot, dialog.get_button)
        _wait_done(qtbot, models)
    assert panel.backend_note.text().startswith("img2img: tiny/turbo") and panel.get_model_button.isHidden()

    layers: list[int] = []
    model.layersChanged.connect(lambda: layers.append(len(model.layers)))
    messages: list[str] = []
    _click(qtbot, panel.edit_button)
    worker = edit.job.worker
    worker.progress.connect(lambda f, m: messages.append(m))
    qtbot.waitUntil(lambda: not worker.is_running(), timeout=180_000)
    qtbot.waitUntil(lambda: panel.edit_button.isEnabled(), timeout=10_000)
    assert layers and len(model.layers) == 1, panel.status_label.text()
    assert model.layers[0].info["editor"] == "img2img"
    assert any(m.startswith("Estimate: about") for m in messages)
    assert "s/step" in panel.backend_note.text() or any("tiny/turbo|cpu|32" in k for k in load_settings().timings)
    assert json.loads((private_hub.parent.parent / "config" / "models.json").read_text())["choices"]["editor"] == \
        {"source": "tiny/turbo", "server_model": None}
