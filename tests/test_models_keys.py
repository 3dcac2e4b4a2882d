"""API keys of the endpoints come from the environment or the system keyring, reach the endpoints, and
never a project file, the settings file, the CLI's output or a log."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from PIL import Image

from app.cli import main
from engine.models.secrets import store_api_key

IMAGE_KEY = "sk-image-ENV-7f3a2c"
LLM_KEY = "sk-llm-RING-91c2e4"
PLAN = {"refined_prompt": "make the lips blue", "components": ["lips"], "kinds": ["colour"], "colour": [20, 40, 230]}


class Endpoints:
    """An OpenAI-compatible stand-in: chat completions answer a plan, image edits a grey image."""

    def __init__(self) -> None:
        self.auth: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.auth.append(self.headers.get("Authorization", ""))
                if self.path.endswith("/chat/completions"):
                    answer = {"choices": [{"message": {"content": json.dumps(PLAN)}}]}
                else:
                    buffer = io.BytesIO()
                    Image.new("RGB", (32, 32), (120, 120, 120)).save(buffer, format="PNG")
                    answer = {"data": [{"b64_json": base64.b64encode(buffer.getvalue()).decode()}]}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> Endpoints:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_no_api_key_reaches_a_project_settings_file_output_or_log(private_hub: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from app.model_choices import current_settings, editor_settings
    from engine.avatar.demo import load_demo_avatar
    from engine.edit.editors import make_editor
    from engine.models.settings import pins_to_json
    from engine.project.project_file import Project, save_project

    log_file = tmp_path / "app.log"
    handler = logging.FileHandler(log_file)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    monkeypatch.setenv("DYNAMICAVATARS_IMAGE_API_KEY", IMAGE_KEY)
    store_api_key("refiner", LLM_KEY)
    try:
        with Endpoints() as server:
            assert main(["models", "use", "refiner", server.url, "--server-model", "tiny-chat"]) == 0
            assert main(["models", "use", "editor", server.url]) == 0
            assert main(["refine", "make the lips blue", "--json"]) == 0
            assert main(["models", "list", "--json"]) == 0
            settings, _ = editor_settings(current_settings(), size=32)
            image = torch.full((32, 32, 3), 0.5)
            mask = torch.zeros(32, 32)
            mask[8:24, 8:24] = 1
            from engine.prompting import refine

            make_editor(settings).edit(image, mask, refine("make the lips blue").plan)
            project = save_project(Project(load_demo_avatar(), models=pins_to_json(current_settings().choices)),
                                   tmp_path / "p.dap")
            assert main(["models", "use", "editor", server.url, "--project", str(project)]) == 0
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    assert f"Bearer {LLM_KEY}" in server.auth and f"Bearer {IMAGE_KEY}" in server.auth  # the keys were used
    out = capsys.readouterr()
    assert '"backend": "http"' in out.out  # the refiner really went through the endpoint
    written = {"stdout+stderr": out.out + out.err, "log": log_file.read_text()}
    for file in (private_hub.parent.parent / "config").rglob("*"):
        if file.is_file():
            written[str(file)] = file.read_text(errors="replace")
    with zipfile.ZipFile(project) as zf:
        for name in zf.namelist():
            written[f"{project}:{name}"] = zf.read(name).decode("latin-1")
    assert any("models.json" in name for name in written) and any(server.url in text for text in written.values())
    for where, text in written.items():
        assert IMAGE_KEY not in text and LLM_KEY not in text, f"an API key was written to {where}"
