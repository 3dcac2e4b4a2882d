"""Images for judging edits: corrupted copies (what a broken editor returns) and clean procedural edits
(what a working one returns), drawn at random for training and calibrating the edit discriminator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.edit.editors.base import composite
from engine.edit.editors.procedural import MATERIALS, recolour
from engine.edit.views import dilate


def _region(h: int, w: int, gen: torch.Generator) -> Tensor:
    """[H, W] 0/1 mask: the whole image, a rectangle, or an ellipse."""
    kind = int(torch.randint(3, (1,), generator=gen))
    if kind == 0:
        return torch.ones(h, w)
    cy, cx = float(torch.rand(1, generator=gen)) * h, float(torch.rand(1, generator=gen)) * w
    ry, rx = (0.12 + 0.3 * torch.rand(2, generator=gen)).tolist()
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    if kind == 1:
        return (((yy - cy).abs() < ry * h) & ((xx - cx).abs() < rx * w)).float()
    return ((((yy - cy) / (ry * h)) ** 2 + ((xx - cx) / (rx * w)) ** 2) < 1).float()


ARTEFACTS: tuple[str, ...] = ("noise", "mosaic", "stripes", "shuffle", "speckle", "ringing")
"""The kinds of corruption the discriminator learns to catch."""


def _artefact(image: Tensor, gen: torch.Generator, kind: int | None = None) -> Tensor:
    """image [H, W, 3] broken all over by one artefact (ARTEFACTS[kind]; None: a random kind)."""
    h, w, _ = image.shape
    kind = int(torch.randint(len(ARTEFACTS), (1,), generator=gen)) if kind is None else kind
    if kind == 0:  # heavy noise
        return image + (0.15 + 0.3 * float(torch.rand(1, generator=gen))) * torch.randn(image.shape, generator=gen)
    if kind == 1:  # mosaic
        b = int(torch.randint(6, 14, (1,), generator=gen))
        small = F.interpolate(image.permute(2, 0, 1)[None], size=(max(1, h // b), max(1, w // b)), mode="area")
        return F.interpolate(small, size=(h, w), mode="nearest")[0].permute(1, 2, 0)
    if kind == 2:  # stripes
        period = int(torch.randint(3, 9, (1,), generator=gen))
        stripe = ((torch.arange(h if float(torch.rand(1, generator=gen)) < 0.5 else w) // period) % 2).float()
        stripe = stripe[:, None, None] if stripe.shape[0] == h else stripe[None, :, None]
        return image * (1 - 0.6 * stripe) + 0.6 * stripe * torch.rand(3, generator=gen)
    if kind == 3:  # shuffled 8x8 patches
        ph, pw = h // 8, w // 8
        tiles = image[: ph * 8, : pw * 8].reshape(ph, 8, pw, 8, 3).permute(0, 2, 1, 3, 4).reshape(ph * pw, 8, 8, 3)
        tiles = tiles[torch.randperm(ph * pw, generator=gen)]
        bad = image.clone()
        bad[: ph * 8, : pw * 8] = tiles.reshape(ph, pw, 8, 8, 3).permute(0, 2, 1, 3, 4).reshape(ph * 8, pw * 8, 3)
        return bad
    if kind == 4:  # salt and pepper speckle
        salt = (torch.rand(h, w, 1, generator=gen) < 0.2).float()
        return image * (1 - salt) + salt * torch.rand(h, w, 1, generator=gen).round()
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")  # ringing
    return image + 0.35 * torch.sin(xx * 1.7 + yy * 2.3)[..., None] * torch.ones(3)


def corrupt(image: Tensor, gen: torch.Generator, region: Tensor | None = None, kind: int | None = None) -> Tensor:
    """A broken copy of image [H, W, 3]: one artefact (ARTEFACTS[kind], None: random) inside region [H, W]
    (None: a random region)."""
    h, w, _ = image.shape
    region = (_region(h, w, gen) if region is None else region.float())[..., None]
    return (image * (1 - region) + _artefact(image, gen, kind).clamp(0, 1) * region).clamp(0, 1)


def corrupt_inside(image: Tensor, mask: Tensor, gen: torch.Generator, kind: int | None = None) -> Tensor:
    """image [H, W, 3] broken inside its edit mask [H, W] (dilated by 2 px): what a failed editor returns."""
    return corrupt(image, gen, dilate((mask > 0.02).float(), 2), kind)


def clean_edit(image: Tensor, mask: Tensor, gen: torch.Generator) -> Tensor:
    """A clean procedural edit of image [H, W, 3] inside mask [H, W]: a random target colour (one time in
    three with a material) in Oklab, keeping the region's shading."""
    colour = torch.rand(3, generator=gen)
    amount = 0.5 + 0.5 * float(torch.rand(1, generator=gen))
    names = sorted(MATERIALS)
    pick = int(torch.randint(3 * len(names), (1,), generator=gen))
    material = MATERIALS[names[pick]] if pick < len(names) else None
    return composite(image, recolour(image, mask, colour, amount, material), mask)


def recolour_blob(image: Tensor, gen: torch.Generator) -> Tensor:
    """image [H, W, 3] with a smooth random colour change in a soft random region (real-side augmentation)."""
    h, w, _ = image.shape
    region = _region(h, w, gen)
    region = F.avg_pool2d(region[None, None], 9, 1, 4)[0, 0][..., None]
    colour = torch.rand(3, generator=gen)
    lum = image.mean(-1, keepdim=True)
    recoloured = (colour * (0.4 + lum)).clamp(0, 1)
    return image + region * 0.8 * (recoloured - image)
