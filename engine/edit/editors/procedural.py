"""The offline procedural editor: colour and material changes inside the mask in Oklab.

Colour: every masked pixel takes the target's Oklab hue and chroma and the target's lightness,
but keeps its own deviation from the region's mean lightness and opponent colour, so shading,
pores and strands survive. For a plain colour edit that deviation is soft-limited to about
SHADING_RANGE (Oklab distance, smoothly by tanh of its length): shading and fine texture stay as they
are while outliers — specks of another colour, the skin between brow hairs, a stray dark Gaussian —
take the new colour too, so the region comes out one even colour with its own shading. Material words
in the refined prompt change the lightness contrast instead: glossy / shiny / metallic raise it and lift
highlights, matte / velvet flatten it.

The region's mean is taken from the image being edited unless the editor was calibrated on several
views (`calibrated`): then one pooled mean (RegionStats) serves every view, so the same surface point
gets the same edited colour in every view — per-image means move with what each view happens to show
(a grazing view sees more of the darker lip line and would be lightened more than a frontal one).
A plan's `lightness` without a colour ("darker brows") shifts the region's mean lightness and keeps its
hue. Shape and accessory edits need a generative model; this editor refuses them with a clear error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from engine.edit.colour_space import oklab_to_srgb, srgb_to_oklab
from engine.edit.editors.base import EditedImage, EditorError, ImageEditor, check_inputs, composite
from engine.prompting.plan import EditKind, EditPlan

MATERIALS: dict[str, tuple[float, float, float]] = {
    # word: (lightness contrast gain, highlight lift, chroma-texture gain)
    "metallic": (1.6, 0.10, 0.6), "metal": (1.6, 0.10, 0.6), "chrome": (1.9, 0.14, 0.3),
    "glossy": (1.35, 0.08, 1.0), "gloss": (1.35, 0.08, 1.0), "shiny": (1.35, 0.08, 1.0),
    "wet": (1.3, 0.07, 1.0), "sparkling": (1.5, 0.12, 1.0), "porcelain": (0.7, 0.03, 0.5),
    "matte": (0.65, -0.03, 0.8), "velvet": (0.55, -0.04, 1.0), "powdered": (0.6, -0.02, 0.6),
}
"""Material words the procedural editor understands and what each does to the lightness."""


SHADING_RANGE = 0.05
"""Oklab distance from the region's mean colour that a plain colour edit keeps as shading and texture;
larger deviations are soft-limited toward it (tanh)."""


def colour_amount(intensity: float) -> float:
    """How far pixels move toward the target colour for a plan intensity in [0, 1] (0.6 and above: fully)."""
    return float(min(1.0, max(0.0, 0.4 + intensity)))


def material_of(plan: EditPlan) -> tuple[str, tuple[float, float, float]] | None:
    """The first material word of the refined prompt with its parameters, or None."""
    words = re.findall(r"[a-z]+", plan.refined_prompt.lower())
    for word in words:
        if word in MATERIALS:
            return word, MATERIALS[word]
    return None


@dataclass(frozen=True)
class RegionStats:
    """Oklab statistics of the edited region, shared by every view an edit touches."""

    mean: Tensor  # [3] mean Oklab (L, a, b) of the region's pixels
    spread: float  # typical largest lightness deviation from the mean (scales the highlight lift)

    def as_dict(self) -> dict[str, object]:
        return {"mean_oklab": [round(float(x), 5) for x in self.mean], "spread": round(self.spread, 5)}


def _region_mean(lab: Tensor, weight: Tensor) -> Tensor:
    """[3] mean Oklab of pixels lab [P, 3] weighted by weight [P]."""
    return (lab * weight[:, None]).sum(0) / weight.sum().clamp_min(1e-8)


def region_stats(images: list[Tensor], masks: list[Tensor], core: float = 0.5) -> RegionStats | None:
    """RegionStats pooled over views (images [H, W, 3] sRGB, masks [H, W]): pixels whose mask reaches
    `core` count with their mask weight (all masked pixels when no pixel reaches it); None when every
    mask is empty."""
    labs, weights = [], []
    for image, mask in zip(images, masks, strict=True):
        check_inputs(image, mask)
        labs.append(srgb_to_oklab(image.reshape(-1, 3).float()))
        weights.append(mask.reshape(-1).float().clamp(0, 1))
    if not labs:
        return None
    lab, weight = torch.cat(labs), torch.cat(weights)
    if float(weight.sum()) <= 0:
        return None
    if bool((weight >= core).any()):
        weight = torch.where(weight >= core, weight, torch.zeros_like(weight))
    mean = _region_mean(lab, weight)
    dev = (lab[weight > 0, 0] - mean[0]).abs()
    spread = float(torch.quantile(dev, 0.99)) if dev.numel() > 1 else float(dev.sum())
    return RegionStats(mean, max(spread, 1e-6))


def soft_limit(dev: Tensor, limit: float) -> Tensor:
    """Deviations dev [P, 3] with their lengths mapped through limit·tanh(length / limit) (≈ unchanged when small)."""
    length = dev.norm(dim=1, keepdim=True)
    return dev * (limit * torch.tanh(length / limit) / length.clamp_min(1e-12))


def recolour(image: Tensor, mask: Tensor, target: Tensor, amount: float,
             material: tuple[float, float, float] | None, reference: RegionStats | None = None,
             lightness: float = 0.0) -> Tensor:
    """image [H, W, 3] sRGB, mask [H, W], target sRGB [3] (NaN: keep colour) -> [H, W, 3].

    reference: the region's statistics pooled over views; None: the mask-weighted mean of this image.
    Without a material the deviation from the mean is soft-limited to SHADING_RANGE (module docstring).
    lightness: shift of the region's mean Oklab lightness when the target is NaN ("darker brows": -0.15);
    a named target colour already carries the plan's shift.
    """
    h, w, _ = image.shape
    lab = srgb_to_oklab(image.reshape(-1, 3).float())
    if reference is None:
        mean = _region_mean(lab, mask.reshape(-1).float().clamp(0, 1))
        spread = float((lab[:, 0] - mean[0]).abs().max().clamp_min(1e-6))
    else:
        mean, spread = reference.mean.to(lab), reference.spread
    dev = lab - mean if material is not None else soft_limit(lab - mean, SHADING_RANGE)
    contrast, lift, chroma_tex = material if material is not None else (1.0, 0.0, 1.0)
    goal = srgb_to_oklab(target.float()[None])[0] if bool(torch.isfinite(target).all()) else mean
    new_mean = mean + amount * (goal - mean)
    if lightness and not bool(torch.isfinite(target).all()):
        new_mean = torch.cat([(new_mean[:1] + lightness).clamp(0.02, 0.98), new_mean[1:]])
    light = dev[:, 0] * contrast
    if lift:
        light = light + lift * torch.relu(dev[:, 0]) / spread
    ab = dev[:, 1:] * chroma_tex
    out = torch.cat([(new_mean[0] + light)[:, None], new_mean[1:] + ab], dim=1)
    return oklab_to_srgb(out).reshape(h, w, 3).to(image.dtype)


def _target(plan: EditPlan) -> Tensor:
    """[3] the plan's target sRGB in [0, 1], NaN when it names no colour (keep the colour)."""
    if plan.colour is None:
        return torch.full((3,), float("nan"))
    return torch.tensor(plan.colour, dtype=torch.float32) / 255.0


class ProceduralEditor(ImageEditor):
    """Colour and material edits in Oklab that keep the original's shading and texture. Deterministic."""

    name = "procedural"
    deterministic = True

    def __init__(self, reference: RegionStats | None = None) -> None:
        self.reference = reference  # pooled statistics of the region (None: each image's own)

    def calibrated(self, images: list[Tensor], masks: list[Tensor]) -> "ProceduralEditor":
        """A copy whose region statistics are pooled over these views (this editor when every mask is empty)."""
        stats = region_stats(images, masks)
        return self if stats is None else ProceduralEditor(stats)

    def _check_plan(self, plan: EditPlan) -> tuple[str, tuple[float, float, float]] | None:
        """The plan's material (None: none); EditorError when the plan asks for more than colour and material."""
        material = material_of(plan)
        if plan.colour is None and material is None and not plan.lightness:
            unsupported = [k.value for k in plan.kinds if k in (EditKind.SHAPE, EditKind.ACCESSORY)]
            what = f"{'/'.join(unsupported)} edits" if unsupported else f"{plan.refined_prompt!r}"
            raise EditorError(
                f"the procedural editor changes colour and material ({', '.join(sorted(MATERIALS))}) only; "
                f"{what} need a diffusion editor (instruct-pix2pix, inpaint) or the http endpoint"
            )
        return material

    def colour_map(self, plan: EditPlan) -> Callable[[Tensor], Tensor] | None:
        """sRGB colours [P, 3] -> [P, 3] through the calibrated mapping (None before calibration)."""
        material = self._check_plan(plan)
        if self.reference is None:
            return None
        target, amount = _target(plan), colour_amount(plan.intensity)
        reference = self.reference

        def mapping(rgb: Tensor) -> Tensor:
            assert rgb.ndim == 2 and rgb.shape[1] == 3, f"colours must be [P, 3], got {tuple(rgb.shape)}"
            image = rgb[:, None, :]
            out = recolour(image, torch.ones(image.shape[:2]), target, amount, material[1] if material else None,
                           reference, plan.lightness)
            return out[:, 0, :]

        return mapping

    def edit(self, image: Tensor, mask: Tensor, plan: EditPlan, seed: int = 0) -> EditedImage:
        check_inputs(image, mask)
        material = self._check_plan(plan)
        if float(mask.max()) <= 0.0:
            return EditedImage(image, image, {"backend": self.name, "empty_mask": True})
        target, amount = _target(plan), colour_amount(plan.intensity)
        raw = recolour(image, mask, target, amount, material[1] if material else None, self.reference, plan.lightness)
        info = {"backend": self.name, "amount": amount, "material": material[0] if material else None,
                "colour": list(plan.colour) if plan.colour else None, "lightness": plan.lightness,
                "reference": self.reference.as_dict() if self.reference is not None else None}
        return EditedImage(composite(image, raw, mask), raw, info)
