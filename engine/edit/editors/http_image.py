"""An OpenAI-compatible image-edit endpoint (POST /v1/images/edits, multipart: image, mask, prompt).

The mask follows the OpenAI convention: a PNG whose fully transparent pixels mark where to edit.
Responses carry `data[0].b64_json` (or `data[0].url`, fetched with the same timeout). Failed
requests (connection errors, timeouts, HTTP 429 and 5xx) are retried with a growing pause.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import Tensor

from engine.edit.editors.base import (
    EditedImage,
    EditorError,
    ImageEditor,
    check_inputs,
    composite,
    from_uint8,
    resize_image,
    to_uint8,
)
from engine.io.http_fetch import TooLarge, display_url, read_capped, redact, retry_after
from engine.io.images import IMAGE_ERRORS, open_image
from engine.models.secrets import api_key as api_key_for
from engine.prompting.plan import EditPlan

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_ANSWER_BYTES = 64 << 20  # largest answer read (a 1024² PNG in base64 is about 4 MB)
MAX_IMAGE_PIXELS = 4096 * 4096  # largest edited image decoded
PROBE_TIMEOUT_S = 5.0  # longest load() waits for the endpoint to answer its probe


def edits_url(url: str) -> str:
    """The full .../images/edits URL for a base URL (".../v1") or the full URL itself."""
    url = url.rstrip("/")
    return url if url.endswith("/images/edits") else f"{url}/images/edits"


def png_bytes(array: np.ndarray) -> bytes:
    """PNG file bytes of a uint8 [H, W, 3|4] array."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request; files are sent as PNGs."""
    boundary = f"----dynamicavatars{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, data in files.items():
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
                "Content-Type: image/png\r\n\r\n")
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def decode_png(data: bytes, origin: str) -> np.ndarray:
    """uint8 [H, W, 3] of PNG/JPEG bytes; EditorError naming origin when unreadable or larger than
    MAX_IMAGE_PIXELS (checked from the header, before decoding)."""
    fail = lambda problem: EditorError(f"{origin}: the answer is not a usable image ({problem})")
    with open_image(data, fail, max_pixels=MAX_IMAGE_PIXELS) as im:
        try:
            return np.asarray(im.convert("RGB"))
        except IMAGE_ERRORS as exc:
            raise fail(f"{type(exc).__name__}: {exc}") from None


class HttpImageEditor(ImageEditor):
    """Edits through an OpenAI-compatible /v1/images/edits endpoint."""

    name = "http"

    def __init__(self, url: str, api_key: str | None = None, model: str | None = None, size: int = 512,
                 timeout: float = 120.0, retries: int = 2, backoff: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = edits_url(url)  # full endpoint URL
        self.api_key = api_key if api_key is not None else api_key_for("editor").key  # env, else keyring, or None
        self.model = model  # model name sent to the endpoint, or None for its default
        self.size = size  # square side the image is sent at
        self.timeout, self.retries, self.backoff = timeout, retries, backoff  # seconds, extra attempts, first pause
        self._sleep = sleep  # waits between attempts

    @property
    def shown_url(self) -> str:
        """The endpoint as messages show it (no password written into the URL)."""
        return display_url(self.url)

    def _check_scheme(self) -> None:
        if not self.url.lower().startswith(("http://", "https://")):
            raise EditorError(f"{self.shown_url}: the image-edit URL must start with http:// or https://")

    def load(self) -> None:
        """Probe the endpoint (a HEAD request without the key, at most PROBE_TIMEOUT_S): any HTTP answer, an
        error status included, shows a server is there; no answer raises EditorError naming the URL."""
        self._check_scheme()
        request = urllib.request.Request(self.url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=min(self.timeout, PROBE_TIMEOUT_S)):
                return
        except urllib.error.HTTPError as exc:  # a server answered (405, 404, 501…): reachable
            exc.close()
            return
        except urllib.error.URLError as exc:
            problem = f"{exc.reason}"
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError, ValueError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        raise EditorError(f"{self.shown_url}: the image-edit endpoint cannot be reached ({problem}); check the URL "
                          "and that the server is running")

    def _request(self, body: bytes, content_type: str) -> Any:
        """The endpoint's JSON answer; EditorError (never holding the key) when it cannot be had."""
        self._check_scheme()
        last, wait = "", 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(wait)
            wait = self.backoff * 2**attempt
            request = urllib.request.Request(self.url, data=body, method="POST",
                                             headers={"Content-Type": content_type, "Accept": "application/json"})
            if self.api_key:  # never forwarded to where a redirect points
                request.add_unredirected_header("Authorization", f"Bearer {self.api_key}")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = read_capped(response, MAX_ANSWER_BYTES, time.monotonic() + self.timeout)
                return json.loads(raw.decode("utf-8"))
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {self._error_detail(exc)}"
                if exc.code not in RETRY_STATUS:
                    break
                wait = retry_after(exc.headers, wait)
            except urllib.error.URLError as exc:
                last = f"{exc.reason}"
                if isinstance(exc.reason, ssl.SSLError):  # an untrusted certificate does not get better by retrying
                    break
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            except TooLarge as exc:
                raise EditorError(f"{self.shown_url}: {exc}") from None
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
                raise EditorError(f"{self.shown_url}: the answer is not JSON ({str(exc)[:200]})") from None
        message = f"{self.shown_url}: image edit failed after {attempt + 1} attempt(s): {last}"
        raise EditorError(redact(message, self.api_key))

    def _error_detail(self, exc: urllib.error.HTTPError) -> str:
        """The first 300 characters of an error answer, read with the same caps (the key redacted)."""
        try:
            raw = read_capped(exc, 4096, time.monotonic() + self.timeout)
        except (TooLarge, TimeoutError, OSError, http.client.HTTPException):
            raw = b""
        return redact(raw[:300].decode("utf-8", "replace"), self.api_key)

    def _image_from(self, answer: Any) -> np.ndarray:
        try:
            item = answer["data"][0]
        except (KeyError, IndexError, TypeError):
            raise EditorError(f"{self.shown_url}: the answer has no data[0] ({str(answer)[:200]})") from None
        if not isinstance(item, dict):
            raise EditorError(f"{self.shown_url}: data[0] is not an object")
        if item.get("b64_json"):
            try:
                data = base64.b64decode(item["b64_json"], validate=False)
            except (ValueError, TypeError) as exc:
                raise EditorError(f"{self.shown_url}: bad base64 image ({exc})") from None
            return decode_png(data, self.shown_url)
        url = item.get("url")
        if isinstance(url, str) and url:
            return self._fetch(url)
        raise EditorError(f"{self.shown_url}: data[0] has neither b64_json nor url")

    def _fetch(self, url: str) -> np.ndarray:
        """The edited image at the URL the answer named: http(s) only (never a local file), capped, in time."""
        shown = display_url(url)[:200]
        if not url.lower().startswith(("http://", "https://")):
            raise EditorError(f"{self.shown_url}: the answer points at {shown}, not an http(s) URL")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                data = read_capped(response, MAX_ANSWER_BYTES, time.monotonic() + self.timeout)
        except (urllib.error.URLError, TimeoutError, TooLarge, OSError, http.client.HTTPException, ValueError) as exc:
            raise EditorError(f"{shown}: cannot fetch the edited image ({exc})") from None
        return decode_png(data, shown)

    def edit(self, image: Tensor, mask: Tensor, plan: EditPlan, seed: int = 0) -> EditedImage:
        check_inputs(image, mask)
        h, w = image.shape[:2]
        start = time.perf_counter()
        work = to_uint8(resize_image(image.float(), self.size, self.size))
        work_mask = resize_image(mask.float()[..., None], self.size, self.size)[..., 0]
        alpha = to_uint8((1.0 - (work_mask > 0.5).float())[..., None])  # transparent = edit here
        rgba_mask = np.concatenate([work, alpha], axis=2)
        fields = {"prompt": plan.refined_prompt, "n": "1", "size": f"{self.size}x{self.size}",
                  "response_format": "b64_json"}
        if self.model:
            fields["model"] = self.model
        body, content_type = multipart(fields, {"image": png_bytes(work), "mask": png_bytes(rgba_mask)})
        result = self._image_from(self._request(body, content_type))
        raw = resize_image(from_uint8(result, image), h, w).clamp(0, 1)
        info = {"backend": self.name, "url": self.url, "model": self.model, "seconds": time.perf_counter() - start}
        return EditedImage(composite(image, raw, mask), raw, info)
