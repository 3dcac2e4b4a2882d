"""The image-editor interface: (image, mask, plan, seed) -> EditedImage, plus shared helpers.

Every backend (procedural, diffusers, HTTP image-edit endpoint) edits one rendered view inside a
soft mask and returns the result composited through that mask, so pixels where the mask is 0 are
returned bit-identical to the input.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from engine.errors import UserError
from engine.io.images import to_uint8  # noqa: F401 - the editors take it from here
from engine.prompting.plan import EditPlan

EDITOR_BACKENDS: tuple[str, ...] = ("procedural", "instruct-pix2pix", "inpaint", "img2img", "http")
"""Backend names `make_editor` accepts."""


class EditorError(UserError, RuntimeError):
    """An editor cannot do what was asked (missing model, unsupported edit, unreachable endpoint)."""


@dataclass(frozen=True)
class EditedImage:
    """One edited view."""

    image: Tensor  # [H, W, 3] float in [0, 1]: the edit composited through the mask
    raw: Tensor  # [H, W, 3] float in [0, 1]: the editor's own output before compositing
    info: dict[str, Any] = field(default_factory=dict)  # backend, seed, model, timings…


@dataclass(frozen=True)
class EditorSettings:
    """How to build an editor (what the GUI's backend picker and the CLI flags fill in)."""

    backend: str = "procedural"  # one of EDITOR_BACKENDS
    model: str | None = None  # diffusers: local folder or cached hub id; http: model name sent to the endpoint
    device: str | None = None  # diffusers device; None: CUDA when present, else CPU
    size: int = 512  # diffusion / endpoint working resolution (square side, multiple of 8)
    url: str | None = None  # http: endpoint base URL (".../v1") or the full ".../images/edits" URL
    api_key: str | None = field(default=None, repr=False)  # http: bearer token (None: env or system keyring)
    timeout: float = 120.0  # http: seconds per request
    retries: int = 2  # http: extra attempts after a failed request
    cpu_max_steps: int = 20  # diffusers on a CPU: most denoising steps of a full-step model


class ImageEditor(abc.ABC):
    """Edits one image inside a mask according to an edit plan."""

    name: str = "editor"
    deterministic: bool = False
    """True when the result depends on the image alone, not on the seed nor on earlier results: the
    discriminator gate then does not retry with new seeds, and re-editing keyframes during the
    optimisation (iterative dataset update) is skipped because it would reproduce the same targets."""

    @abc.abstractmethod
    def edit(self, image: Tensor, mask: Tensor, plan: EditPlan, seed: int = 0) -> EditedImage:
        """image [H, W, 3] in [0, 1], mask [H, W] in [0, 1] (1 = edit here) -> EditedImage."""

    def load(self) -> None:
        """Load what editing needs (a diffusion model), so a missing or unreadable one raises EditorError before
        any other work; editors with nothing to load do nothing."""

    def calibrated(self, images: list[Tensor], masks: list[Tensor]) -> "ImageEditor":
        """This editor tuned to the region as seen in several views (images [H, W, 3], masks [H, W]).

        Editors whose result depends on statistics of the edited region (the procedural one) return a
        copy that uses statistics pooled over all the views, so every view gets the same colour
        mapping; generative editors have no such statistics and return themselves.
        """
        return self

    def colour_map(self, plan: EditPlan) -> Callable[[Tensor], Tensor] | None:
        """The colour function this editor's edit is, when it is one: sRGB colours [P, 3] -> [P, 3].

        A per-colour editor (the calibrated procedural one) gives every selected Gaussian its own target
        this way, also those no keyframe shows; generative editors return None.
        """
        return None


def check_inputs(image: Tensor, mask: Tensor) -> None:
    """Assert the shapes every editor expects."""
    assert image.ndim == 3 and image.shape[2] == 3, f"image must be [H, W, 3], got {tuple(image.shape)}"
    assert mask.shape == image.shape[:2], f"mask must be [H, W] = {tuple(image.shape[:2])}, got {tuple(mask.shape)}"


def composite(original: Tensor, edited: Tensor, mask: Tensor) -> Tensor:
    """original [H, W, 3] where mask [H, W] is 0, edited where it is 1, blended between."""
    m = mask.clamp(0.0, 1.0)[..., None].to(original.dtype)
    out = original + m * (edited.to(original.dtype) - original)
    return torch.where(m > 0, out, original)


def from_uint8(array: np.ndarray, like: Tensor) -> Tensor:
    """uint8 [H, W, 3] (or float in [0, 1]) numpy -> float tensor like `like`."""
    arr = np.asarray(array)
    values = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(values[..., :3])).to(device=like.device, dtype=like.dtype)


def resize_image(image: Tensor, height: int, width: int) -> Tensor:
    """[H, W, C] -> [height, width, C] bilinear (antialiased when shrinking)."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    chw = image.permute(2, 0, 1)[None].float()
    out = torch.nn.functional.interpolate(chw, size=(height, width), mode="bilinear", align_corners=False,
                                          antialias=height < image.shape[0] or width < image.shape[1])
    return out[0].permute(1, 2, 0).to(image.dtype)


def make_editor(settings: EditorSettings) -> ImageEditor:
    """The editor a settings object names (diffusion models load lazily on first edit)."""
    if settings.backend == "procedural":
        from engine.edit.editors.procedural import ProceduralEditor

        return ProceduralEditor()
    if settings.backend in ("instruct-pix2pix", "inpaint", "img2img"):
        from engine.edit.editors.diffusion import DiffusionEditor

        if not settings.model:
            raise EditorError(f"the {settings.backend} editor needs a model: a local folder or a cached hub id")
        return DiffusionEditor(settings.model, settings.backend, settings.device, settings.size, settings.cpu_max_steps)
    if settings.backend == "http":
        from engine.edit.editors.http_image import HttpImageEditor

        if not settings.url:
            raise EditorError("the http editor needs the endpoint URL (e.g. http://127.0.0.1:8000/v1)")
        return HttpImageEditor(settings.url, settings.api_key, settings.model, settings.size,
                               settings.timeout, settings.retries)
    raise EditorError(f"unknown editor backend {settings.backend!r}; choose one of {', '.join(EDITOR_BACKENDS)}")
