"""HTTP backend against a real local OpenAI-compatible stand-in server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from engine.head.components import COMPONENTS
from engine.prompting.context import AvatarContext
from engine.prompting.llm_http import HttpLLMConfig, HttpLLMRefiner
from engine.prompting.llm_json import BackendError
from engine.prompting.plan import NothingToEdit, PlanError
from engine.prompting.refine import RefineSettings, refine, refine_with

PLAN = {"refined_prompt": "make the lips bright red", "components": ["lips"], "kinds": ["colour"],
        "colour": [240, 10, 20], "guidance_scale": 42}


class Server:
    """Scripted server: each request takes the next behaviour from `script` (the last one repeats)."""

    def __init__(self) -> None:
        self.script: list[tuple[str, object]] = []
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                kind, value = outer.script[min(len(outer.requests), len(outer.script)) - 1]
                if kind == "sleep":
                    time.sleep(float(value))  # type: ignore[arg-type]
                    kind, value = "content", json.dumps(PLAN)
                if kind == "status":
                    self.send_response(int(value))  # type: ignore[arg-type]
                    self.end_headers()
                    self.wfile.write(b'{"error": "boom"}')
                    return
                payload = {"choices": [{"message": {"role": "assistant", "content": value}}]} \
                    if kind == "content" else value
                data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture()
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def _refiner(server: Server, **kw: object) -> HttpLLMRefiner:
    cfg = HttpLLMConfig(base_url=server.url, model="stand-in", api_key="sekrit", timeout=2.0, retries=1,
                        backoff=0.01, **kw)  # type: ignore[arg-type]
    return HttpLLMRefiner(cfg)


def test_valid_answer_is_accepted_and_clamped(server: Server) -> None:
    server.script = [("content", "Sure:\n" + json.dumps(PLAN))]
    result = refine_with(_refiner(server), "bright red lips")
    assert result.backend == "http" and result.fallback_reason is None
    assert result.plan.components == ("upper_lip", "lower_lip") and result.plan.colour == (240, 10, 20)
    assert result.plan.guidance_scale == 20.0
    assert any("guidance_scale 42 clamped to 20" in n for n in result.notes)
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sekrit"
    assert req["body"]["model"] == "stand-in" and req["body"]["messages"][1]["content"] == "bright red lips"
    assert req["body"]["response_format"] == {"type": "json_object"}


def test_answers_fill_the_version_2_fields(server: Server) -> None:
    """A model's answer validates into the same schema as the rules backend: action, part and lightness are
    read when given, inferred (an accessory answer without an action adds it) or repaired with a note."""
    removal = {"refined_prompt": "remove the glasses", "components": ["eyes", "nose", "accessory"],
               "kinds": ["accessory"], "accessory": "glasses", "action": "remove"}
    server.script = [("content", json.dumps(removal))]
    plan = refine_with(_refiner(server), "remove her glasses").plan
    assert plan.version == 2 and plan.action == "remove" and plan.accessory == "glasses"
    no_accessory = AvatarContext(frozenset(c for c in COMPONENTS if c != "accessory"))
    with pytest.raises(NothingToEdit, match="nothing to remove: this avatar has no glasses"):
        refine_with(_refiner(server), "remove her glasses", context=no_accessory)
    server.script = [("content", json.dumps({**removal, "action": None, "refined_prompt": "add glasses"}))]
    assert refine_with(_refiner(server), "add glasses").plan.action == "add"
    eyes = {"refined_prompt": "make the irises green", "components": ["eyes"], "kinds": ["colour"],
            "colour": [40, 160, 60], "part": "iris", "lightness": -0.9, "action": "paint"}
    server.script = [("content", json.dumps(eyes))]
    result = refine_with(_refiner(server), "green eyes")
    assert result.plan.part == "iris" and result.plan.lightness == -0.5 and result.plan.action == "change"
    assert any("unknown action 'paint'" in n for n in result.notes)
    assert any("lightness -0.9 clamped to -0.5" in n for n in result.notes)


def test_invalid_answer_falls_back(server: Server) -> None:
    server.script = [("content", "I think red lipstick would look lovely!")]
    with pytest.raises(PlanError, match="not a valid plan"):
        _refiner(server).refine("bright red lipstick")
    server.script = [("raw", {"unexpected": True})]
    result = refine_with(_refiner(server), "bright red lipstick")
    assert result.backend == "rules" and "choices" in result.fallback_reason
    assert result.plan.components == ("upper_lip", "lower_lip")


def test_slow_server_times_out_and_falls_back(server: Server) -> None:
    server.script = [("sleep", 1.5)]
    refiner = HttpLLMRefiner(HttpLLMConfig(base_url=server.url, timeout=0.3, retries=1, backoff=0.01))
    with pytest.raises(BackendError, match="timed out"):
        refiner.refine("make her smile")
    assert refiner.attempts == 2
    result = refine_with(refiner, "make her smile")
    assert result.backend == "rules" and "timed out" in result.fallback_reason


def test_500_then_success_retries(server: Server) -> None:
    server.script = [("status", 500), ("content", json.dumps(PLAN))]
    refiner = _refiner(server)
    plan, notes = refiner.refine("red lips")
    assert refiner.attempts == 2 and plan.kind.value == "colour"
    assert any("after 2 attempts" in n for n in notes)


def test_500_forever_gives_up(server: Server) -> None:
    server.script = [("status", 503)]
    with pytest.raises(BackendError, match="HTTP 503.*2 attempts"):
        _refiner(server).refine("red lips")


def test_400_retries_without_json_mode(server: Server) -> None:
    server.script = [("status", 400), ("content", json.dumps(PLAN))]
    plan, _ = _refiner(server).refine("red lips")
    assert "response_format" in server.requests[0]["body"]
    assert "response_format" not in server.requests[1]["body"]
    assert plan.components == ("upper_lip", "lower_lip")


def test_settings_from_environment(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    server.script = [("content", json.dumps(PLAN))]
    monkeypatch.setenv("DYNAMICAVATARS_LLM_BASE_URL", server.url)
    monkeypatch.setenv("DYNAMICAVATARS_LLM_MODEL", "env-model")
    monkeypatch.setenv("DYNAMICAVATARS_LLM_API_KEY", "env-key")
    result = refine("red lips", "http", RefineSettings())
    assert result.backend == "http"
    assert server.requests[0]["body"]["model"] == "env-model" and server.requests[0]["auth"] == "Bearer env-key"


def test_unreachable_server_falls_back() -> None:
    result = refine("make her frown", "http", RefineSettings(base_url="http://127.0.0.1:9/v1", retries=0,
                                                              timeout=1.0))
    assert result.backend == "rules" and "cannot connect" in result.fallback_reason
    assert result.plan.expression == {"frown": 0.6}
