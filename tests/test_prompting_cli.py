"""`dynamicavatars refine` through app/cli.py's subcommand mechanism; engine/prompting imports no Qt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_refine_prints_plan_json(capsys) -> None:
    assert main(["refine", "give her bright red lipstick and make her smile a little", "--no-embeddings"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["version"] == 2 and plan["components"] == ["upper_lip", "lower_lip"] and plan["action"] == "change"
    assert plan["kinds"] == ["colour", "expression"] and plan["expression"] == {"smile": 0.3}


def test_refine_json_reports_fallback(capsys) -> None:
    code = main(["refine", "make her frown", "--backend", "http", "--base-url", "http://127.0.0.1:9/v1",
                 "--timeout", "1", "--json", "--no-embeddings"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backend"] == "rules" and out["requested_backend"] == "http"
    assert "cannot connect" in out["fallback_reason"] and out["plan"]["expression"] == {"frown": 0.6}


def test_unclear_prompt_is_a_message_with_suggestions(capsys) -> None:
    assert main(["refine", "make it glossy", "--no-embeddings"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and lines[0].startswith("I can't tell what to change: 'make it glossy'")
    assert "  try: make the lips glossy" in lines and 3 <= len(lines) <= 5 and "Traceback" not in captured.err
    assert main(["refine", "make it glossy", "--no-embeddings", "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["error"] == "unclear" and out["message"].startswith("I can't tell what to change")
    assert "make the lips glossy" in out["suggestions"]


def test_refine_for_an_avatar_refuses_what_it_lacks(capsys) -> None:
    assert main(["refine", "remove her glasses", "--avatar", "demo", "--no-embeddings"]) == 2
    assert capsys.readouterr().err.strip() == "nothing to remove: this avatar has no glasses"
    assert main(["refine", "remove her glasses", "--no-embeddings"]) == 0  # no avatar given: a removal plan
    assert json.loads(capsys.readouterr().out)["action"] == "remove"


def test_empty_prompt_is_a_user_error(capsys) -> None:
    assert main(["refine", "  ", "--no-embeddings"]) == 2
    assert "error: the prompt is empty" in capsys.readouterr().err


def test_engine_prompting_imports_no_qt() -> None:
    code = ("import sys, engine.prompting, engine.prompting.rules, engine.prompting.llm_http, "
            "engine.prompting.llm_local, engine.prompting.embed_match;"
            "bad=[m for m in sys.modules if m.startswith(('PySide6','app','widgets','torch'))];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
