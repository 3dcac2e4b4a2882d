"""An OpenAI-compatible image-edit endpoint (POST /v1/images/edits, multipart: image, mask, prompt).

The mask follows the OpenAI convention: a PNG whose fully transparent pixels mark where to edit.
Responses carry `data[0].b64_json` (or `data[0].url`, fetched with the same timeout). Failed
requests (connection errors, timeouts, HTTP 429 and 5xx) are retried with a growing pause.
"""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import numpy as np
from torch import Tensor

from engine.edit.editors.base import (
    EditedImage, EditorError, ImageEditor, check_inputs, composite, from_uint8, resize_image, to_uint8,
)
from engine.models.secrets import api_key as api_key_for
from engine.prompting.plan import EditPlan

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


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
    """uint8 [H, W, 3] of PNG/JPEG bytes; EditorError naming origin when unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise EditorError(f"{origin}: the answer is not an image ({exc})") from None


class HttpImageEditor(ImageEditor):
    """Edits through an OpenAI-compatible /v1/images/edits endpoint."""

    name = "http"

    def __init__(self, url: str, api_key: str | None = None, model: str | None = None, size: int = 512,
                 timeout: float = 120.0, retries: int = 2, backoff: float = 1.0) -> None:
        self.url = edits_url(url)  # full endpoint URL
        self.api_key = api_key if api_key is not None else api_key_for("editor").key  # env, else keyring, or None
        self.model = model  # model name sent to the endpoint, or None for its default
        self.size = size  # square side the image is sent at
        self.timeout, self.retries, self.backoff = timeout, retries, backoff  # seconds, extra attempts, first pause

    def _request(self, body: bytes, content_type: str) -> dict[str, Any]:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                last = f"HTTP {exc.code}: {detail}"
                if exc.code not in RETRY_STATUS:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = f"{getattr(exc, 'reason', exc)}"
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise EditorError(f"{self.url}: the answer is not JSON ({exc})") from None
        raise EditorError(f"{self.url}: image edit failed after {self.retries + 1} attempt(s): {last}")

    def _image_from(self, answer: dict[str, Any]) -> np.ndarray:
        try:
            item = answer["data"][0]
        except (KeyError, IndexError, TypeError):
            raise EditorError(f"{self.url}: the answer has no data[0] ({str(answer)[:200]})") from None
        if item.get("b64_json"):
            try:
                return decode_png(base64.b64decode(item["b64_json"]), self.url)
            except (ValueError, TypeError) as exc:
                raise EditorError(f"{self.url}: bad base64 image ({exc})") from None
        if item.get("url"):
            try:
                with urllib.request.urlopen(item["url"], timeout=self.timeout) as response:
                    return decode_png(response.read(), item["url"])
            except (urllib.error.URLError, TimeoutError) as exc:
                raise EditorError(f"{item['url']}: cannot fetch the edited image ({exc})") from None
        raise EditorError(f"{self.url}: data[0] has neither b64_json nor url")

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
