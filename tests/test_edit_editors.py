"""Image editors: procedural colour edit, tiny diffusers pipelines loaded by path, HTTP endpoint stand-in."""

from __future__ import annotations

import base64
import io
import json
import logging
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.edit.colour_space import srgb_to_oklab
from engine.edit.editors import EditorError, EditorSettings, make_editor
from engine.prompting import refine
from tests.helpers_net import closed_port
from tiny_models import tiny_diffusers


def _image_and_mask(h: int = 64, w: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    yy = torch.linspace(0.3, 0.8, h)[:, None, None]
    image = (torch.tensor([0.8, 0.4, 0.4]) * yy + 0.05 * torch.rand(h, w, 3, generator=gen)).clamp(0, 1)
    mask = torch.zeros(h, w)
    mask[16:48, 12:52] = 1.0
    return image, mask


def test_procedural_colour_reaches_target_and_keeps_outside_and_shading() -> None:
    image, mask = _image_and_mask()
    plan = refine("make the lips blue").plan
    out = make_editor(EditorSettings("procedural")).edit(image, mask, plan, 0).image
    assert torch.equal(out[mask == 0], image[mask == 0])
    inside = out[mask > 0]
    target = srgb_to_oklab(torch.tensor(plan.colour, dtype=torch.float32)[None] / 255)[0]
    before = (srgb_to_oklab(image[mask > 0]).mean(0) - target).norm()
    after = (srgb_to_oklab(inside).mean(0) - target).norm()
    assert after < 0.02 < before
    # shading kept: lightness still correlates with the original's
    l0, l1 = srgb_to_oklab(image[mask > 0])[:, 0], srgb_to_oklab(inside)[:, 0]
    assert float(torch.corrcoef(torch.stack([l0, l1]))[0, 1]) > 0.9


def test_procedural_refuses_shape_edits() -> None:
    image, mask = _image_and_mask()
    with pytest.raises(EditorError, match="diffusion"):
        make_editor(EditorSettings("procedural")).edit(image, mask, refine("make the nose bigger").plan)


@pytest.mark.parametrize("mode", ["instruct-pix2pix", "inpaint"])
def test_diffusion_editor_end_to_end_from_a_saved_tiny_pipeline(tmp_path: Path, mode: str) -> None:
    tiny_diffusers(tmp_path / "model", mode)
    image, mask = _image_and_mask(48, 40)
    plan = refine("make the lips blue").plan.model_copy(update={"steps": 2})
    editor = make_editor(EditorSettings(mode, model=str(tmp_path / "model"), size=32))
    result = editor.edit(image, mask, plan, seed=3)
    assert result.image.shape == image.shape and result.raw.shape == image.shape
    assert torch.equal(result.image[mask == 0], image[mask == 0])
    assert not torch.allclose(result.image[mask > 0], image[mask > 0], atol=1e-3)
    again = editor.edit(image, mask, plan, seed=3)
    assert torch.equal(again.image, result.image)  # seeded


def test_loading_diffusion_models_prints_no_torchvision_fallback_warning(tmp_path: Path,
                                                                        capfd: pytest.CaptureFixture) -> None:
    from engine.edit.editors.diffusion import MODES, TORCHVISION_FALLBACK, pipeline_class

    # fresh interpreters: transformers warns once per process, so an earlier test may have used the warning up
    bare = subprocess.run([sys.executable, "-c", "import diffusers; diffusers.AutoPipelineForImage2Image"],
                          capture_output=True, text=True, check=True)
    if TORCHVISION_FALLBACK not in bare.stderr:
        pytest.skip("transformers does not warn about torchvision here (is torchvision installed?)")
    folders = {mode: str(tiny_diffusers(tmp_path / mode, mode)) for mode in MODES}
    capfd.readouterr()  # what building the models printed
    code = ("import torch\nfrom engine.edit.editors.diffusion import load_pipeline\n"
            f"for mode, folder in {folders!r}.items():\n"
            "    load_pipeline(folder, mode, torch.device('cpu'))\n"
            "print('loaded')\n")
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], check=True)
    out, err = capfd.readouterr()
    assert "loaded" in out
    assert "torchvision" not in err, err
    assert pipeline_class("inpaint").__name__ == "StableDiffusionInpaintPipeline"
    assert logging.getLogger("transformers.utils.import_utils").filters == []  # the filter lives only around the import


def test_diffusion_editor_never_downloads(tmp_path: Path) -> None:
    image, mask = _image_and_mask()
    editor = make_editor(EditorSettings("instruct-pix2pix", model="nobody/not-a-cached-model", size=32))
    with pytest.raises(EditorError, match="without downloading"):
        editor.edit(image, mask, refine("make the lips blue").plan)


class _Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []
    fail_first = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).requests.append({"path": self.path, "body": body, "type": self.headers["Content-Type"]})
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), (10, 20, 230)).save(buffer, format="PNG")
        answer = json.dumps({"data": [{"b64_json": base64.b64encode(buffer.getvalue()).decode()}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture()
def server():
    _Handler.requests, _Handler.fail_first = [], 1
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_http_editor_posts_image_mask_prompt_and_retries(server: str) -> None:
    from engine.edit.editors.http_image import HttpImageEditor

    image, mask = _image_and_mask()
    editor = HttpImageEditor(server, api_key="k", size=32, timeout=5, retries=2, backoff=0.01)
    result = editor.edit(image, mask, refine("make the lips blue").plan, 0)
    assert len(_Handler.requests) == 2  # one 503, then success
    req = _Handler.requests[-1]
    assert req["path"] == "/v1/images/edits" and req["type"].startswith("multipart/form-data")
    for part in (b'name="image"', b'name="mask"', b'name="prompt"', b"make the lips blue", b"\x89PNG"):
        assert part in req["body"]
    assert torch.equal(result.image[mask == 0], image[mask == 0])
    assert torch.allclose(result.image[32, 32], torch.tensor([10, 20, 230]) / 255, atol=0.02)


def test_http_editor_reports_unreachable_endpoint() -> None:
    from engine.edit.editors.http_image import HttpImageEditor

    image, mask = _image_and_mask()
    editor = HttpImageEditor("http://127.0.0.1:9/v1", size=32, timeout=1, retries=1, backoff=0.01)
    with pytest.raises(EditorError, match="failed after 2 attempt"):
        editor.edit(image, mask, refine("make the lips blue").plan)


def test_http_editor_load_probes_the_endpoint_without_editing(server: str) -> None:
    from engine.edit.editors.http_image import HttpImageEditor

    HttpImageEditor(server, api_key="k", size=32, timeout=5).load()  # the stand-in answers (501 to a HEAD)
    assert _Handler.requests == []  # nothing was posted: the probe edits nothing


def test_http_editor_load_fails_at_once_on_a_closed_port() -> None:
    from engine.edit.editors.http_image import HttpImageEditor

    url = f"http://127.0.0.1:{closed_port()}/v1"
    editor = HttpImageEditor(url, size=32, timeout=1, retries=0)
    with pytest.raises(EditorError) as caught:
        editor.load()
    assert str(caught.value).startswith(f"{url}/images/edits: the image-edit endpoint cannot be reached (")
    assert "refused" in str(caught.value)
