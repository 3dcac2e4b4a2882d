"""Diffusion editors through diffusers: InstructPix2Pix, Stable Diffusion inpainting, and img2img with a
(few-step) Stable Diffusion model such as SD-Turbo or an LCM, composited through the mask.

The model is a local folder or a hub id in huggingface_hub's cache (engine.models.resolve_local: nothing
is ever downloaded here), loaded on first use on CUDA when present (or the device asked for), else CPU,
the way engine.models.runtime decides: fp16 (the fp16 weight files when downloaded for CUDA) and
attention slicing on small cards; on a CPU full precision, few-step models at their own steps and
full-step models at most `cpu_max_steps` steps. The view is resized to the working size, edited with
the plan's prompt, negative prompt, steps and guidance values, resized back and composited.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor

from engine.edit.editors.base import (
    EditedImage, EditorError, ImageEditor, check_inputs, composite, from_uint8, resize_image, to_uint8,
)
from engine.models.runtime import DiffusionRun, pick_device, plan_diffusion
from engine.prompting.plan import EditPlan

MODES: tuple[str, ...] = ("instruct-pix2pix", "inpaint", "img2img")
PIPELINES: dict[str, str] = {"instruct-pix2pix": "StableDiffusionInstructPix2PixPipeline",
                             "inpaint": "StableDiffusionInpaintPipeline", "img2img": "AutoPipelineForImage2Image"}
"""The diffusers class of each mode."""
TORCHVISION_FALLBACK = "requires torchvision (not installed); falling back to"
"""What transformers logs, once per image processor, when diffusers' imports reach one without torchvision: the
PIL fallback it takes is all we use (no feature extractor is loaded), so the warning only alarms people."""


class _DropTorchvisionFallback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return TORCHVISION_FALLBACK not in record.getMessage()


@contextmanager
def _no_torchvision_fallback_warning() -> Iterator[None]:
    """Inside: transformers' import logger drops its torchvision-fallback warning (and nothing else)."""
    log = logging.getLogger("transformers.utils.import_utils")
    drop = _DropTorchvisionFallback()
    log.addFilter(drop)
    try:
        yield
    finally:
        log.removeFilter(drop)


def pipeline_class(mode: str) -> Any:
    """The diffusers pipeline class of mode, imported without transformers' torchvision-fallback warnings."""
    with _no_torchvision_fallback_warning():
        import diffusers

        return getattr(diffusers, PIPELINES[mode])


def plan_run(model: str, mode: str, device: torch.device, cpu_max_steps: int = 20) -> tuple[Any, DiffusionRun]:
    """(folder, how it runs) of a local folder or cached hub id, without loading anything (never downloads)."""
    from engine.models import ModelError, card, resolve_local

    try:
        folder = resolve_local(model)
    except ModelError as exc:
        raise EditorError(f"cannot load the {mode} model {model!r} without downloading: {exc}") from None
    return folder, plan_diffusion(folder, device, card(model), cpu_max_steps)


def load_pipeline(model: str, mode: str, device: torch.device, cpu_max_steps: int = 20) -> tuple[Any, DiffusionRun]:
    """A diffusers pipeline for mode from a local folder or cached hub id (never downloads), and how it runs."""
    folder, run = plan_run(model, mode, device, cpu_max_steps)
    cls = pipeline_class(mode)
    extra = {} if mode == "img2img" else {"requires_safety_checker": False}
    try:
        pipe = cls.from_pretrained(str(folder), local_files_only=True, dtype=run.dtype, variant=run.variant,
                                   safety_checker=None, feature_extractor=None, **extra)
    except (OSError, ValueError, EnvironmentError) as exc:
        raise EditorError(
            f"cannot load the {mode} model {model!r} without downloading: give a local diffusers folder "
            f"(model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/) or a hub id already in "
            f"the cache ({exc})"
        ) from exc
    pipe = pipe.to(device)
    if run.attention_slicing:
        pipe.enable_attention_slicing()
    pipe.set_progress_bar_config(disable=True)
    return pipe, run


class DiffusionEditor(ImageEditor):
    """InstructPix2Pix ("instruct-pix2pix"), inpainting ("inpaint") or img2img ("img2img") through diffusers."""

    def __init__(self, model: str, mode: str = "instruct-pix2pix", device: str | None = None, size: int = 512,
                 cpu_max_steps: int = 20) -> None:
        if mode not in MODES:
            raise EditorError(f"unknown diffusion mode {mode!r}; choose one of {', '.join(MODES)}")
        if size % 8 or size < 8:
            raise EditorError(f"diffusion working size must be a positive multiple of 8, got {size}")
        self.model, self.mode, self.size = model, mode, size  # model path/id, pipeline kind, working side
        self.device = pick_device(device)
        self.cpu_max_steps = cpu_max_steps  # most steps of a full-step model on a CPU
        self.name = mode
        self._pipe: Any = None
        self.run: DiffusionRun | None = None  # how the loaded pipeline runs (set on load)
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._pipe is None:
                self._pipe, self.run = load_pipeline(self.model, self.mode, self.device, self.cpu_max_steps)

    @property
    def pipeline(self) -> Any:
        """The loaded pipeline (loads on first access)."""
        self.load()
        return self._pipe

    def run_plan(self) -> DiffusionRun:
        """How the model runs here (reads the model folder; loads nothing)."""
        if self.run is None:
            self.run = plan_run(self.model, self.mode, self.device, self.cpu_max_steps)[1]
        return self.run

    def steps_for(self, plan: EditPlan) -> int:
        """Denoising steps one edit of plan runs."""
        return self.run_plan().steps_for(plan.steps)

    def denoising_steps(self, plan: EditPlan) -> int:
        """Denoising steps one edit of plan really runs (img2img and inpainting run steps × strength)."""
        steps = self.steps_for(plan)
        if self.mode == "instruct-pix2pix":
            return steps
        run = self.run_plan()
        strength = plan.strength if run.strength is None or self.mode == "inpaint" else run.strength
        return max(1, int(max(steps, int(np.ceil(1.0 / strength))) * strength))

    def _call(self, pil_image: Any, pil_mask: Any, plan: EditPlan, seed: int, steps: int | None = None) -> np.ndarray:
        pipe = self.pipeline
        assert self.run is not None
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        guidance = plan.guidance_scale if self.run.guidance_scale is None else self.run.guidance_scale
        common: dict[str, Any] = dict(prompt=plan.refined_prompt, negative_prompt=plan.negative_prompt or None,
                                      num_inference_steps=steps or self.run.steps_for(plan.steps),
                                      guidance_scale=guidance, generator=gen, output_type="np")
        if guidance <= 1.0:
            common.pop("negative_prompt")  # without classifier-free guidance there is no negative branch
        if self.mode == "instruct-pix2pix":
            out = pipe(image=pil_image, image_guidance_scale=plan.image_guidance_scale, **common)
        elif self.mode == "inpaint":
            out = pipe(image=pil_image, mask_image=pil_mask, strength=plan.strength, height=self.size,
                       width=self.size, **common)
        else:
            strength = plan.strength if self.run.strength is None else self.run.strength
            common["num_inference_steps"] = max(common["num_inference_steps"], int(np.ceil(1.0 / strength)))
            out = pipe(image=pil_image, strength=strength, **common)
        return np.asarray(out.images[0])

    def seconds_per_step(self, plan: EditPlan) -> float:
        """Measured seconds of one denoising step at the working size (loads the pipeline; runs two 1-step edits,
        the first to warm up)."""
        from PIL import Image

        blank = Image.new("RGB", (self.size, self.size), (128, 128, 128))
        probe = plan.model_copy(update={"strength": 1.0})
        self._call(blank, blank, probe, 0, steps=1)
        start = time.perf_counter()
        self._call(blank, blank, probe, 0, steps=1)
        return time.perf_counter() - start

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
        assert self.run is not None
        info = {"backend": self.mode, "model": self.model, "device": str(self.device), "seed": int(seed),
                "steps": self.run.steps_for(plan.steps), "run": list(self.run.notes),
                "seconds": time.perf_counter() - start}
        return EditedImage(composite(image, raw, mask), raw, info)
