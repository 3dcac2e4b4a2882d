"""Running models well where they run.

CUDA: half precision (the fp16 weight variant when the folder has it) and attention slicing when the
card has little memory. CPU: full precision; few-step models (SD-Turbo, LCM) run at the steps and
guidance they are made for, full-step models at the plan's steps up to a cap; the time an edit will
take is estimated from a measured time per denoising step before it starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.models.catalog import ModelCard
from engine.models.files import is_fp16_variant

SLICING_BELOW_GB = 8.0  # CUDA cards with less memory than this get attention slicing
FEW_STEP_SCHEDULERS = ("LCMScheduler",)


def pick_device(device: str | None) -> torch.device:
    """The device asked for, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class DiffusionRun:
    """How a diffusion pipeline is loaded and called on one device."""

    device: str  # torch device
    dtype: torch.dtype  # weights and activations
    variant: str | None  # "fp16" when the folder holds fp16 weight files and they are used
    attention_slicing: bool  # trade speed for memory in attention
    fixed_steps: int | None  # few-step models (SD-Turbo, LCM): the steps they are made for, whatever the plan says
    max_steps: int | None  # full-step models on a CPU: the most steps run
    guidance_scale: float | None  # the guidance a few-step model needs (None: the plan's)
    strength: float | None  # img2img strength of a few-step model (None: the plan's)
    notes: tuple[str, ...]  # what was decided, for the log

    def steps_for(self, plan_steps: int) -> int:
        """Denoising steps to run for a plan asking plan_steps."""
        if self.fixed_steps is not None:
            return self.fixed_steps
        return min(plan_steps, self.max_steps) if self.max_steps is not None else plan_steps


def folder_has_fp16(folder: Path) -> bool:
    """True when every weight folder of a diffusers folder holds fp16-variant files (as downloaded for CUDA)."""
    weights = [p for p in folder.rglob("*") if p.suffix in (".safetensors", ".bin") and p.parent != folder]
    folders = {p.parent for p in weights}
    return bool(folders) and all(any(is_fp16_variant(p.name) for p in weights if p.parent == d) for d in folders)


def scheduler_class(folder: Path) -> str | None:
    config = folder / "scheduler" / "scheduler_config.json"
    try:
        return json.loads(config.read_text()).get("_class_name") if config.is_file() else None
    except (OSError, ValueError):
        return None


def plan_diffusion(folder: Path, device: torch.device, card: ModelCard | None = None,
                   cpu_max_steps: int = 20) -> DiffusionRun:
    """How to load and run the diffusers model in folder on device."""
    notes: list[str] = []
    cuda = device.type == "cuda"
    dtype = torch.float16 if cuda else torch.float32
    variant = "fp16" if cuda and folder_has_fp16(folder) else None
    slicing = False
    if cuda:
        total = torch.cuda.get_device_properties(device).total_memory / 1e9
        slicing = total < SLICING_BELOW_GB
        notes.append(f"CUDA fp16{' (fp16 weights)' if variant else ''}"
                     f"{f', attention slicing ({total:.0f} GB card)' if slicing else ''}")
    few = (card is not None and card.steps is not None) or scheduler_class(folder) in FEW_STEP_SCHEDULERS
    if few:
        steps = card.steps if card is not None and card.steps else 4
        guidance = card.guidance if card is not None else None
        notes.append(f"few-step model: {steps} steps" + (f", guidance {guidance:g}" if guidance is not None else ""))
        return DiffusionRun(str(device), dtype, variant, slicing, steps, None, guidance,
                            card.strength if card is not None else None, tuple(notes))
    if not cuda:
        notes.append(f"CPU: at most {cpu_max_steps} steps")
    return DiffusionRun(str(device), dtype, variant, slicing, None, None if cuda else cpu_max_steps, None, None,
                        tuple(notes))


def timing_key(model: str, device: torch.device | str, size: int) -> str:
    """The settings key of a measured time per step."""
    return f"{model}|{torch.device(device).type}|{size}"


def estimate_seconds(seconds_per_step: float, steps: int, images: int, attempts: float = 1.0) -> float:
    """Time for `images` edits of `steps` steps each (attempts: average tries per image, e.g. with re-seeding)."""
    return seconds_per_step * steps * images * attempts


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe_device(device: str | None, cpu_max_steps: int = 20) -> str:
    """One line on where models will run and what that means for the choice of model."""
    dev = pick_device(device)
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        gb = props.total_memory / 1e9
        slicing = ", attention slicing" if gb < SLICING_BELOW_GB else ""
        return f"Device: CUDA {props.name} ({gb:.0f} GB): fp16 weights{slicing}; every model runs well."
    return (f"Device: CPU (no CUDA GPU): few-step editors (SD-Turbo, LCM) take seconds to minutes per view; "
            f"full-step ones run at most {cpu_max_steps} steps and take minutes. Small refiners (< 1 GB) are fine.")
