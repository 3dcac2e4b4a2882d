"""`dynamicavatars models list | get | use | remove` (with --json) against the stand-in hub, found through
huggingface_hub's endpoint setting (HF_ENDPOINT); `edit` and `refine` follow the chosen models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_stub import StubHub

from app.cli import main
from engine.models import installed, load_settings


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_models_cli_list_get_use_remove(private_hub: Path, tiny_repos: dict[str, Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    listing = _json(capsys, ["models", "list", "--json"])
    assert listing["roles"]["editor"].startswith("procedural") and listing["cache"] == str(private_hub)
    assert {m["id"] for m in listing["models"]} >= {"timbrooks/instruct-pix2pix", "jonathandinu/face-parsing"}

    with StubHub({"tiny/chat-lm": tiny_repos["tiny/chat-lm"]}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        got = _json(capsys, ["models", "get", "tiny/chat-lm", "--use", "refiner", "--json"])
        assert got["fetched_bytes"] == got["total_bytes"] > 0 and got["used_for"] == "refiner"
        assert main(["models", "get", "nobody/nothing"]) == 2
        assert "no such model" in capsys.readouterr().err
    assert installed("tiny/chat-lm").complete and load_settings().choice("refiner").source == "tiny/chat-lm"

    listing = _json(capsys, ["models", "list", "--json"])
    row = next(m for m in listing["models"] if m["id"] == "tiny/chat-lm")
    assert row["status"] == "installed" and row["used_for"] == ["refiner"] and row["disk_bytes"] > 0
    assert listing["roles"]["refiner"] == "local: tiny/chat-lm"

    used = _json(capsys, ["models", "use", "editor", "timbrooks/instruct-pix2pix", "--json"])
    assert "models get timbrooks/instruct-pix2pix" in used["note"]
    assert main(["models", "use", "parser", "http://127.0.0.1:9/v1"]) == 2
    assert "cannot be an HTTP endpoint" in capsys.readouterr().err
    assert _json(capsys, ["models", "use", "editor", "none", "--json"])["uses"].startswith("procedural")

    removed = _json(capsys, ["models", "remove", "tiny/chat-lm", "--json"])
    assert removed["freed_bytes"] > 0 and removed["still_chosen_for"] == ["refiner"]
    assert installed("tiny/chat-lm") is None
    assert main(["models", "remove", "tiny/chat-lm"]) == 2


@pytest.mark.slow
def test_models_use_pins_a_project(private_hub: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from app.model_choices import current_settings
    from engine.avatar.demo import load_demo_avatar
    from engine.project.project_file import Project, load_project, read_model_pins, save_project

    project = save_project(Project(load_demo_avatar()), tmp_path / "p.dap")
    assert read_model_pins(project) == {}
    pinned = _json(capsys, ["models", "use", "refiner", "http://127.0.0.1:8080/v1", "--server-model", "qwen",
                            "--project", str(project), "--json"])
    assert pinned["uses"] == "http: endpoint http://127.0.0.1:8080/v1 (qwen)"
    assert read_model_pins(project) == {"refiner": {"source": "http://127.0.0.1:8080/v1", "server_model": "qwen"}}
    assert load_settings().choice("refiner") is None  # the user's settings are untouched
    assert current_settings(project).choice("refiner").server_model == "qwen"
    assert load_project(project).models["refiner"]["server_model"] == "qwen"  # the rest of the project still reads


def test_edit_and_refine_follow_the_chosen_models(private_hub: Path, tiny_repos: dict[str, Path],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from app.model_choices import current_settings, edit_estimate, editor_settings, needs_generative, refine_choice
    from engine.edit.editors import make_editor
    from engine.edit.run import EditConfig
    from engine.prompting import refine

    plan = refine("give him freckles").plan
    assert needs_generative(plan) and not needs_generative(refine("make the lips blue").plan)
    settings, reason = editor_settings(current_settings())
    assert settings.backend == "procedural" and reason == "procedural: no image editor model set"
    with StubHub({"tiny/turbo": tiny_repos["tiny/turbo"]}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert main(["models", "get", "tiny/turbo", "--use", "editor"]) == 0
    settings, reason = editor_settings(current_settings(), size=32)
    assert (settings.backend, settings.model, reason) == ("img2img", "tiny/turbo", "img2img: tiny/turbo")
    editor = make_editor(settings)
    config = EditConfig(keyframes=2, max_steps=30)
    seconds, text = edit_estimate(editor, plan, config, current_settings())
    assert seconds > 0 and text.startswith("about") and "5 image edits" in text and "on the CPU" in text
    assert any(k.startswith("tiny/turbo|cpu|32") for k in load_settings().timings)  # remembered for next time
    again, _ = edit_estimate(make_editor(settings), plan, config, current_settings(), measure=False)
    assert again == pytest.approx(seconds, rel=1e-3)
    assert refine_choice(current_settings())[0] == "rules"
    assert _json(capsys, ["refine", "make the lips blue", "--json"])["backend"] == "rules"
