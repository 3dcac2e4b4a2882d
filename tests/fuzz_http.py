"""A stand-in server on 127.0.0.1 that answers with whatever a test scripts: good answers, hostile ones
(garbage, JSON of the wrong shape, nesting too deep, a body shorter than its Content-Length, one that
trickles, sizes far past the caps, images that are not images or are decompression bombs, URLs pointing
at local files, redirects), error statuses with or without Retry-After. It records every request (and
the Authorization header each carried).

`refiner_response` and `editor_response` run the HTTP refiner and the HTTP image editor against one
scripted exchange and classify the outcome like tests/fuzz_cases.attempt.
"""

from __future__ import annotations

import base64
import io
import json
import random
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

from tests.fuzz_cases import Outcome, attempt, png_declaring

Reply = Callable[[BaseHTTPRequestHandler], None]
PLAN = {"refined_prompt": "make the lips bright red", "components": ["lips"], "kinds": ["colour"],
        "colour": [240, 10, 20]}


def send(status: int, body: bytes, headers: dict[str, str] | None = None, length: int | None = None) -> Reply:
    def reply(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        h.wfile.write(body)
    return reply


def trickle(body: bytes, pause: float) -> Reply:
    """A body sent one byte at a time (each within any socket timeout, the whole far slower)."""
    def reply(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for byte in body:
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
            time.sleep(pause)
    return reply


def png(size: tuple[int, int] = (32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 120, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


class StandIn:
    """Serves scripted replies in order (the last one repeats); use as a context manager."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.auth: list[str | None] = []  # Authorization header of each request, in order
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.auth.append(self.headers.get("Authorization"))
                outer.paths.append(self.path)
                if outer.replies:
                    reply = outer.replies[min(len(outer.paths), len(outer.replies)) - 1]
                    try:
                        reply(self)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

            do_POST = do_GET = _any  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def script(self, replies: list[Reply]) -> None:
        self.replies, self.auth, self.paths = list(replies), [], []

    def __enter__(self) -> StandIn:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _chat(content: object) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


def _image_answer(data: bytes) -> bytes:
    return json.dumps({"data": [{"b64_json": base64.b64encode(data).decode()}]}).encode()


def hostile_reply(rnd: random.Random, server: StandIn, kind: str) -> Reply:
    """One reply, good or hostile, for the refiner ("refiner") or the image editor ("editor")."""
    from tests import fuzz_mutate as fm

    good = _chat(json.dumps(PLAN)) if kind == "refiner" else _image_answer(png())
    roll = rnd.randrange(14)
    if roll == 0:
        return send(200, good)
    if roll == 1:
        return send(rnd.choice([400, 401, 403, 404, 429, 500, 502, 503]), b'{"error": "no"}',
                    {"Retry-After": rnd.choice(["0", "1e9", "soon", "-5"])} if rnd.random() < 0.5 else None)
    if roll == 2:
        return send(200, fm.mutate_bytes(good, rnd))
    if roll == 3:
        return send(200, fm.mutate_json(good, rnd))
    if roll == 4:
        return send(200, fm.deep_json(100_000).encode())
    if roll == 5:
        return send(200, good[: len(good) // 2], length=len(good))  # the server hangs up early
    if roll == 6:
        return send(200, b"x" * 64, length=10**12)  # declares a terabyte
    if roll == 7:
        return trickle(good[:40], 0.01)
    if roll == 8:
        text = "{" * 200_000 if kind == "refiner" else ""
        return send(200, _chat(text) if kind == "refiner" else _image_answer(png_declaring((100_000, 100_000))))
    if roll == 9:
        target = rnd.choice(["file:///etc/passwd", f"{server.url}/image.png", "ftp://x/y.png", "not a url", ""])
        return send(200, json.dumps({"data": [{"url": target}]}).encode())
    if roll == 10:
        return send(302, b"", {"Location": f"{server.url}/elsewhere"})
    if roll == 11:
        return send(200, _chat(rnd.choice([None, 5, [], {"a": 1}])) if kind == "refiner"
                    else json.dumps({"data": [rnd.choice([None, 5, "x", [], {"b64_json": "!!!"}])]}).encode())
    if roll == 12:
        return send(200, _image_answer(rnd.randbytes(200)) if kind == "editor" else _chat("no json here"))
    return send(200, rnd.randbytes(rnd.randint(0, 300)))


def refiner_response(server: StandIn, replies: list[Reply]) -> Outcome:
    from engine.prompting.llm_http import HttpLLMConfig, HttpLLMRefiner
    from engine.prompting.llm_json import BackendError
    from engine.prompting.plan import PlanError

    server.script(replies)
    refiner = HttpLLMRefiner(HttpLLMConfig(base_url=f"{server.url}/v1", model="m", api_key="sk-SECRET-KEY",
                                           timeout=2.0, retries=2, backoff=0.01), sleep=lambda s: time.sleep(min(s, 0.05)))
    return attempt(lambda: refiner.refine("bright red lips"), (PlanError, BackendError), server.url)


def editor_response(server: StandIn, replies: list[Reply]) -> Outcome:
    import torch

    from engine.edit.editors.base import EditorError
    from engine.edit.editors.http_image import HttpImageEditor
    from engine.prompting.plan import sanitize_plan

    server.script(replies)
    editor = HttpImageEditor(f"{server.url}/v1", api_key="sk-SECRET-KEY", size=32, timeout=2.0, retries=2,
                             backoff=0.01, sleep=lambda s: time.sleep(min(s, 0.05)))
    image, mask = torch.rand(24, 24, 3), torch.zeros(24, 24)
    mask[6:18, 6:18] = 1.0
    plan = sanitize_plan(PLAN)[0]
    return attempt(lambda: editor.edit(image, mask, plan), (EditorError,), server.url)
