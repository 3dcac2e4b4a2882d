"""Diffusion editors through diffusers: InstructPix2Pix and Stable Diffusion inpainting.

The pipeline is loaded from a local folder or a cached hub id with local_files_only=True (nothing is
ever downloaded), on CUDA when present (or the device asked for), else CPU, on first use. The view is
resized to the working size, edited with the plan's prompt, negative prompt, steps and guidance
values, resized back and composited through the mask.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from engine.edit.editors.base import (
    EditedImage, EditorError, ImageEditor, check_inputs, composite, from_uint8, resize_image, to_uint8,
)
from engine.prompting.plan import EditPlan

MODES: tuple[str, ...] = ("instruct-pix2pix", "inpaint")


def default_device(device: str | None) -> torch.device:
    """The device asked for, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_pipeline(model: str, mode: str, device: torch.device) -> Any:
    """A diffusers pipeline for mode from a local folder or cached hub id (never downloads)."""
    import diffusers

    cls = {"instruct-pix2pix": diffusers.StableDiffusionInstructPix2PixPipeline,
           "inpaint": diffusers.StableDiffusionInpaintPipeline}[mode]
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    try:
        pipe = cls.from_pretrained(model, local_files_only=True, dtype=dtype, safety_checker=None,
                                   requires_safety_checker=False)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise EditorError(
            f"cannot load the {mode} model {model!r} without downloading: give a local diffusers folder "
            f"(model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/) or a hub id already in "
            f"the cache ({exc})"
        ) from exc
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class DiffusionEditor(ImageEditor):
    """InstructPix2Pix ("instruct-pix2pix") or inpainting ("inpaint") through diffusers."""

    def __init__(self, model: str, mode: str = "instruct-pix2pix", device: str | None = None, size: int = 512) -> None:
        if mode not in MODES:
            raise EditorError(f"unknown diffusion mode {mode!r}; choose one of {', '.join(MODES)}")
        if size % 8 or size < 8:
            raise EditorError(f"diffusion working size must be a positive multiple of 8, got {size}")
        self.model, self.mode, self.size = model, mode, size  # model path/id, pipeline kind, working side
        self.device = default_device(device)
        self.name = mode
        self._pipe: Any = None
        self._lock = threading.Lock()

    @property
    def pipeline(self) -> Any:
        """The loaded pipeline (loads on first access)."""
        with self._lock:
            if self._pipe is None:
                self._pipe = load_pipeline(self.model, self.mode, self.device)
            return self._pipe

    def _call(self, pil_image: Any, pil_mask: Any, plan: EditPlan, seed: int) -> np.ndarray:
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        common: dict[str, Any] = dict(prompt=plan.refined_prompt, negative_prompt=plan.negative_prompt or None,
                                      num_inference_steps=plan.steps, guidance_scale=plan.guidance_scale,
                                      generator=gen, output_type="np")
        if self.mode == "instruct-pix2pix":
            out = self.pipeline(image=pil_image, image_guidance_scale=plan.image_guidance_scale, **common)
        else:
            out = self.pipeline(image=pil_image, mask_image=pil_mask, strength=plan.strength,
                                height=self.size, width=self.size, **common)
        return np.asarray(out.images[0])

    def edit(self, image: Tensor, mask: Tensor, plan: EditPlan, seed: int = 0) -> EditedImage:
        from PIL import Image

        check_inputs(image, mask)
        h, w = image.shape[:2]
        start = time.perf_counter()
        work = resize_image(image.float(), self.size, self.size)
        work_mask = resize_image(mask.float()[..., None], self.size, self.size)[..., 0]
        pil_image = Image.fromarray(to_uint8(work))
        pil_mask = Image.fromarray(to_uint8(work_mask[..., None].expand(-1, -1, 3)))
        result = self._call(pil_image, pil_mask, plan, seed)
        if not np.isfinite(result).all():
            raise EditorError(f"the {self.mode} model {self.model!r} produced non-finite pixels")
        raw = resize_image(from_uint8(result, image), h, w).clamp(0, 1)
        info = {"backend": self.mode, "model": self.model, "device": str(self.device), "seed": int(seed),
                "seconds": time.perf_counter() - start}
        return EditedImage(composite(image, raw, mask), raw, info)
