"""Reading JSON from untrusted files: size capped before reading, nesting too deep for the parser, bad
text and bad UTF-8 all become the caller's own error naming its file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

MAX_JSON_BYTES = 64 << 20
"""Largest JSON document read by default."""

Fail = Callable[[str], Exception]
"""Makes the caller's own error (naming its file) from a problem description."""


def loads_json(data: bytes | str, fail: Fail, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in data; raises fail(problem) when it is too large, not UTF-8, not JSON, or nested
    deeper than the parser can follow."""
    if len(data) > max_bytes:
        raise fail(f"{len(data) / 2**20:.0f} MiB of JSON, more than the {max_bytes / 2**20:.0f} MiB allowed")
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise fail(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise fail("not valid JSON (nested too deeply)") from None


def read_json(path: str | os.PathLike, fail: Fail, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in the file at path (see loads_json); missing or unreadable files raise fail too."""
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise fail(f"{size / 2**20:.0f} MiB of JSON, more than the {max_bytes / 2**20:.0f} MiB allowed")
        with open(path, "rb") as fh:
            data = fh.read(size + 1)  # read(n) allocates n bytes up front
    except OSError as exc:
        raise fail(f"cannot be read ({exc.strerror or exc})") from None
    return loads_json(data, fail, max_bytes)
