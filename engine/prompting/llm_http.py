"""OpenAI-compatible HTTP backend (/v1/chat/completions): Ollama, llama.cpp server, vLLM, LM Studio
or a hosted API. Standard library only (urllib). Timeouts and retries with backoff; the answer is
validated like the local model's (PlanError when it is not a plan)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.io.http_fetch import TooLarge, display_url, read_capped, redact, retry_after
from engine.prompting.context import AvatarContext
from engine.prompting.llm_json import BackendError, build_messages, extract_first_json_object
from engine.prompting.plan import EditPlan, PlanError, sanitize_plan

ENV_BASE_URL = "DYNAMICAVATARS_LLM_BASE_URL"
ENV_MODEL = "DYNAMICAVATARS_LLM_MODEL"
ENV_API_KEY = "DYNAMICAVATARS_LLM_API_KEY"
RETRY_STATUS: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying."""
MAX_ANSWER_BYTES = 1 << 20
"""Largest answer read (a plan is under 2 kB; an answer of 400 tokens under 10 kB)."""


@dataclass(frozen=True)
class HttpLLMConfig:
    """Settings of the HTTP backend."""

    base_url: str = "http://127.0.0.1:11434/v1"  # server root ending in /v1 (Ollama's default here)
    model: str = "llama3.2"  # model name the server knows
    api_key: str | None = field(default=None, repr=False)  # bearer token, when the server wants one
    timeout: float = 30.0  # seconds per request
    retries: int = 2  # extra attempts after a timeout, connection error or retryable status
    backoff: float = 0.5  # seconds before the first retry, doubled each time
    max_tokens: int = 400  # longest answer requested
    json_mode: bool = True  # ask for response_format json_object (dropped if the server refuses it)

    @classmethod
    def from_env(cls, **overrides: Any) -> "HttpLLMConfig":
        """Settings from DYNAMICAVATARS_LLM_BASE_URL / _MODEL, the key from DYNAMICAVATARS_LLM_API_KEY or the
        system keyring; `overrides` that are not None win."""
        from engine.models.secrets import api_key

        values: dict[str, Any] = {}
        for key, env in (("base_url", ENV_BASE_URL), ("model", ENV_MODEL)):
            if os.environ.get(env):
                values[key] = os.environ[env]
        stored = api_key("refiner").key  # ENV_API_KEY first, then the keyring
        if stored:
            values["api_key"] = stored
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class HttpLLMRefiner:
    """Refines prompts through an OpenAI-compatible chat completions endpoint."""

    name = "http"

    def __init__(self, config: HttpLLMConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep  # waits between retries
        self.attempts = 0  # requests made by the last call

    @property
    def url(self) -> str:
        return self.config.base_url.rstrip("/") + "/chat/completions"

    def _body(self, prompt: str, json_mode: bool) -> bytes:
        body: dict[str, Any] = {"model": self.config.model, "messages": build_messages(prompt),
                                "temperature": 0, "max_tokens": self.config.max_tokens, "stream": False}
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        return json.dumps(body).encode("utf-8")

    @property
    def shown_url(self) -> str:
        """The endpoint as messages show it (no password written into the URL)."""
        return display_url(self.url)

    def _post(self, payload: bytes) -> dict[str, Any]:
        if not self.url.lower().startswith(("http://", "https://")):
            raise BackendError(f"{self.shown_url}: the refiner's URL must start with http:// or https://")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        req = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        if self.config.api_key:  # never forwarded to where a redirect points
            req.add_unredirected_header("Authorization", f"Bearer {self.config.api_key}")
        deadline = time.monotonic() + self.config.timeout
        with urllib.request.urlopen(req, timeout=self.config.timeout) as resp:
            try:
                raw = read_capped(resp, MAX_ANSWER_BYTES, deadline)
            except TooLarge as exc:
                raise BackendError(f"{self.shown_url}: {exc}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise PlanError(f"{self.shown_url} answered something that is not JSON: {raw[:80]!r}") from exc
        if not isinstance(data, dict):
            raise PlanError(f"{self.shown_url} answered a JSON {type(data).__name__}, not an object")
        return data

    def complete(self, prompt: str) -> str:
        """The assistant message text for the plan instruction; BackendError when the server fails."""
        json_mode = self.config.json_mode
        delay = self.config.backoff
        self.attempts = 0
        last = "no attempt made"
        for attempt in range(self.config.retries + 1):
            self.attempts += 1
            wait = delay
            try:
                data = self._post(self._body(prompt, json_mode))
                return _message_text(data, self.shown_url)
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason}"
                if exc.code == 400 and json_mode:  # server may not know response_format: ask plainly
                    json_mode = False
                    continue
                if exc.code not in RETRY_STATUS:
                    raise BackendError(self._redact(f"{self.shown_url}: {last}")) from None
                wait = retry_after(exc.headers, delay)
            except (socket.timeout, TimeoutError):
                last = f"timed out after {self.config.timeout:g} s"
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, ssl.SSLError):  # an untrusted certificate does not get better by retrying
                    raise BackendError(self._redact(f"{self.shown_url}: TLS failed ({exc.reason})")) from None
                if isinstance(exc.reason, (socket.timeout, TimeoutError)):
                    last = f"timed out after {self.config.timeout:g} s"
                else:
                    last = f"cannot connect ({exc.reason})"
            except (ConnectionError, OSError, http.client.HTTPException) as exc:
                last = f"connection failed ({exc})"
            if attempt < self.config.retries:
                self._sleep(wait)
                delay *= 2
        attempts = f"{self.attempts} attempt{'s' if self.attempts > 1 else ''}"
        raise BackendError(self._redact(f"{self.shown_url}: {last} ({attempts})"))

    def _redact(self, text: str) -> str:
        return redact(text, self.config.api_key)

    def refine(self, prompt: str, context: AvatarContext | None = None) -> tuple[EditPlan, list[str]]:
        """A validated plan from the server's answer; PlanError / BackendError explain a failure.
        The context is not sent to the server: refine_with checks the plan against it."""
        answer = self.complete(prompt)
        try:
            plan, notes = sanitize_plan(extract_first_json_object(answer), prompt=prompt)
        except PlanError as exc:
            raise PlanError(f"{self.shown_url}: the server's answer is not a valid plan: {exc}") from exc
        if self.attempts > 1:
            notes.insert(0, f"{self.shown_url} answered after {self.attempts} attempts")
        return plan, notes


def _message_text(data: dict[str, Any], url: str) -> str:
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise PlanError(f"{url}: answer has no choices[0].message.content") from exc
    if not isinstance(content, str):
        raise PlanError(f"{url}: message content is {type(content).__name__}, not text")
    return content
