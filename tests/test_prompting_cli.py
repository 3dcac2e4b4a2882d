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
    assert plan["version"] == 1 and plan["components"] == ["upper_lip", "lower_lip"]
    assert plan["kinds"] == ["colour", "expression"] and plan["expression"] == {"smile": 0.3}


def test_refine_json_reports_fallback(capsys) -> None:
    code = main(["refine", "make her frown", "--backend", "http", "--base-url", "http://127.0.0.1:9/v1",
                 "--timeout", "1", "--json", "--no-embeddings"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backend"] == "rules" and out["requested_backend"] == "http"
    assert "cannot connect" in out["fallback_reason"] and out["plan"]["expression"] == {"frown": 0.6}


def test_refine_nothing_to_edit_is_a_user_error(capsys) -> None:
    assert main(["refine", "hello there", "--no-embeddings"]) == 2
    assert "no edit found" in capsys.readouterr().err


def test_engine_prompting_imports_no_qt() -> None:
    code = ("import sys, engine.prompting, engine.prompting.rules, engine.prompting.llm_http, "
            "engine.prompting.llm_local, engine.prompting.embed_match;"
            "bad=[m for m in sys.modules if m.startswith(('PySide6','app','widgets','torch'))];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
