"""What both HTTP clients (the prompt refiner and the image-edit endpoint) need from a response they do
not trust: a size cap and an overall deadline on reading it (a socket timeout alone lets a server that
trickles one byte at a time hold a request forever), a bounded wait for Retry-After, and messages that
never carry an API key or a password written into a URL."""

from __future__ import annotations

import time
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

MAX_RETRY_AFTER_S = 30.0
"""Longest a Retry-After header may make a client wait before its next attempt."""


class TooLarge(Exception):
    """A response larger than its cap."""


class Readable(Protocol):
    headers: object

    def read1(self, n: int = -1) -> bytes: ...


def read_capped(response: Readable, limit: int, deadline: float) -> bytes:
    """The body of response, refusing more than limit bytes (TooLarge) or reading past deadline
    (time.monotonic() seconds; TimeoutError). Each read returns what one receive brought."""
    declared = getattr(response, "headers", None)
    length = declared.get("Content-Length") if hasattr(declared, "get") else None
    if length is not None and str(length).isdigit() and int(length) > limit:
        raise TooLarge(f"the answer declares {int(length)} bytes, more than the {limit} accepted")
    chunks: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("the answer did not arrive in time")
        chunk = response.read1(65536)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise TooLarge(f"the answer is larger than the {limit} bytes accepted")
        chunks.append(chunk)


def retry_after(headers: object, fallback: float) -> float:
    """Seconds to wait before retrying: the server's Retry-After (in seconds, at most MAX_RETRY_AFTER_S)
    when it sent one, else fallback."""
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return min(MAX_RETRY_AFTER_S, max(0.0, float(value))) if value is not None else fallback
    except ValueError:
        return fallback


def display_url(url: str) -> str:
    """url without a user name or password in it (for messages and logs)."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))
    except ValueError:
        return "<unreadable URL>"


def redact(text: str, *secrets: str | None) -> str:
    """text with every secret (an API key) replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
