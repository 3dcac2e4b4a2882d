"""A PatchGAN-style discriminator that judges edited views of one avatar.

It is trained on the avatar's own renders and training photos (real) against corrupted copies of
them (fake: noise, mosaic, stripes, shuffled patches, speckle, ringing, in random regions or the whole
image). Reals get smooth local recolourings as augmentation, so a clean colour or material change still
looks real while broken pixels do not. It then (1) gates every edited keyframe: the realness of the
patches under the edit mask must reach a threshold calibrated between real and fake scores, and
(2) gives a small non-saturating adversarial term on renders while optimising.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger(__name__)


class PatchDiscriminator(nn.Module):
    """Fully convolutional: image [B, 3, H, W] in [0, 1] -> patch logits [B, 1, H/8, W/8]."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.GroupNorm(8, 2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.GroupNorm(8, 4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 3, 1, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x * 2.0 - 1.0)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Training of the edit discriminator."""

    steps: int = 120  # optimiser steps
    batch: int = 8  # images per step (half real, half corrupted)
    size: int = 64  # training crops are resized to size × size
    lr: float = 2e-4  # Adam learning rate
    width: int = 32  # channels of the first convolution
    seed: int = 0  # RNG seed for augmentation and corruption


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


def corrupt(image: Tensor, gen: torch.Generator) -> Tensor:
    """A broken copy of image [H, W, 3]: one artefact of several kinds in a random region."""
    h, w, _ = image.shape
    kind = int(torch.randint(6, (1,), generator=gen))
    if kind == 0:  # heavy noise
        bad = image + (0.15 + 0.3 * float(torch.rand(1, generator=gen))) * torch.randn(image.shape, generator=gen)
    elif kind == 1:  # mosaic
        b = int(torch.randint(6, 14, (1,), generator=gen))
        small = F.interpolate(image.permute(2, 0, 1)[None], size=(max(1, h // b), max(1, w // b)), mode="area")
        bad = F.interpolate(small, size=(h, w), mode="nearest")[0].permute(1, 2, 0)
    elif kind == 2:  # stripes
        period = int(torch.randint(3, 9, (1,), generator=gen))
        stripe = ((torch.arange(h if float(torch.rand(1, generator=gen)) < 0.5 else w) // period) % 2).float()
        stripe = stripe[:, None, None] if stripe.shape[0] == h else stripe[None, :, None]
        bad = image * (1 - 0.6 * stripe) + 0.6 * stripe * torch.rand(3, generator=gen)
    elif kind == 3:  # shuffled 8x8 patches
        ph, pw = h // 8, w // 8
        tiles = image[: ph * 8, : pw * 8].reshape(ph, 8, pw, 8, 3).permute(0, 2, 1, 3, 4).reshape(ph * pw, 8, 8, 3)
        tiles = tiles[torch.randperm(ph * pw, generator=gen)]
        bad = image.clone()
        bad[: ph * 8, : pw * 8] = tiles.reshape(ph, pw, 8, 8, 3).permute(0, 2, 1, 3, 4).reshape(ph * 8, pw * 8, 3)
    elif kind == 4:  # salt and pepper speckle
        salt = (torch.rand(h, w, 1, generator=gen) < 0.2).float()
        bad = image * (1 - salt) + salt * torch.rand(h, w, 1, generator=gen).round()
    else:  # ringing: sharp high-frequency pattern
        yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
        bad = image + 0.35 * torch.sin(xx * 1.7 + yy * 2.3)[..., None] * torch.ones(3)
    region = _region(h, w, gen)[..., None]
    return (image * (1 - region) + bad.clamp(0, 1) * region).clamp(0, 1)


def recolour_blob(image: Tensor, gen: torch.Generator) -> Tensor:
    """image [H, W, 3] with a smooth random colour change in a soft random region (real-side augmentation)."""
    h, w, _ = image.shape
    region = _region(h, w, gen)
    region = F.avg_pool2d(region[None, None], 9, 1, 4)[0, 0][..., None]
    colour = torch.rand(3, generator=gen)
    lum = image.mean(-1, keepdim=True)
    recoloured = (colour * (0.4 + lum)).clamp(0, 1)
    return image + region * 0.8 * (recoloured - image)


def _augment(image: Tensor, size: int, gen: torch.Generator) -> Tensor:
    """A random crop (70–100%) of image [H, W, 3], maybe flipped, resized to [size, size, 3]."""
    h, w, _ = image.shape
    s = 0.7 + 0.3 * float(torch.rand(1, generator=gen))
    ch, cw = max(8, int(h * s)), max(8, int(w * s))
    y0 = int(torch.randint(h - ch + 1, (1,), generator=gen))
    x0 = int(torch.randint(w - cw + 1, (1,), generator=gen))
    crop = image[y0:y0 + ch, x0:x0 + cw]
    if float(torch.rand(1, generator=gen)) < 0.5:
        crop = crop.flip(1)
    return F.interpolate(crop.permute(2, 0, 1)[None], size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)[0].permute(1, 2, 0)


def auc(positives: Tensor, negatives: Tensor) -> float:
    """Area under the ROC curve of scores: P(positive score > negative score), ties count half."""
    diff = positives[:, None] - negatives[None, :]
    return float(((diff > 0).float() + 0.5 * (diff == 0).float()).mean())


class EditDiscriminator:
    """A trained PatchDiscriminator with a calibrated gate threshold."""

    def __init__(self, net: PatchDiscriminator, threshold: float) -> None:
        self.net = net.eval()  # the trained network (frozen)
        self.threshold = threshold  # masked realness below this fails the gate
        for p in self.net.parameters():
            p.requires_grad_(False)

    def patch_logits(self, images: Tensor) -> Tensor:
        """images [B, H, W, 3] -> patch logits [B, h, w]."""
        assert images.ndim == 4 and images.shape[-1] == 3, f"images must be [B, H, W, 3], got {tuple(images.shape)}"
        return self.net(images.permute(0, 3, 1, 2).float())[:, 0]

    def score(self, images: Tensor, masks: Tensor | None = None) -> Tensor:
        """[B] realness in [0, 1] of images [B, H, W, 3]: mean patch probability, weighted by masks [B, H, W]."""
        with torch.no_grad():
            prob = torch.sigmoid(self.patch_logits(images))
        if masks is None:
            return prob.mean((1, 2))
        m = F.adaptive_avg_pool2d(masks[:, None].float(), prob.shape[1:])[:, 0]
        m = m + 1e-3
        return (prob * m).sum((1, 2)) / m.sum((1, 2))

    def gate(self, image: Tensor, mask: Tensor) -> tuple[bool, float, str]:
        """(accepted, score, reason) for one edited view image [H, W, 3] with its edit mask [H, W]."""
        if not bool(torch.isfinite(image).all()):
            return False, 0.0, "non-finite pixels"
        inside = image[mask > 0.5]
        if inside.numel() and float(inside.std()) < 1e-4 and inside.shape[0] > 16:
            return False, 0.0, "the edited region is a flat fill"
        s = float(self.score(image[None], mask[None])[0])
        if s < self.threshold:
            return False, s, f"looks broken to the discriminator (realness {s:.2f} < {self.threshold:.2f})"
        return True, s, "ok"

    def adversarial_loss(self, render: Tensor, mask: Tensor | None = None) -> Tensor:
        """Non-saturating generator loss softplus(−logit) of a render [H, W, 3] (mask-weighted patches), differentiable."""
        logits = self.patch_logits(render[None])[0]
        loss = F.softplus(-logits)
        if mask is None:
            return loss.mean()
        m = F.adaptive_avg_pool2d(mask[None, None].float(), logits.shape)[0, 0] + 1e-3
        return (loss * m).sum() / m.sum()


def _batch(reals: list[Tensor], n: int, config: DiscriminatorConfig, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    picks = torch.randint(len(reals), (n,), generator=gen).tolist()
    real, fake = [], []
    for i in picks:
        img = _augment(reals[i], config.size, gen)
        real.append(recolour_blob(img, gen) if float(torch.rand(1, generator=gen)) < 0.5 else img)
        fake.append(corrupt(img, gen))
    return torch.stack(real), torch.stack(fake)


def train_discriminator(reals: list[Tensor], config: DiscriminatorConfig | None = None,
                        cancel: Callable[[], bool] | None = None,
                        progress: Callable[[float, str], None] | None = None) -> EditDiscriminator | None:
    """Train on real views (each [H, W, 3] in [0, 1]) against corrupted copies; None when cancelled."""
    config = config or DiscriminatorConfig()
    if not reals:
        raise ValueError("the discriminator needs at least one real image")
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    net = PatchDiscriminator(config.width)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.5, 0.999))
    half = max(1, config.batch // 2)
    for step in range(config.steps):
        if cancel is not None and cancel():
            return None
        real, fake = _batch(reals, half, config, gen)
        logits = net(torch.cat([real, fake]).permute(0, 3, 1, 2))
        target = torch.cat([torch.ones(half), torch.zeros(half)])[:, None, None, None].expand_as(logits)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None and step % 25 == 0:
            progress(step / config.steps, f"training the discriminator ({loss.item():.3f})")
    disc = EditDiscriminator(net, 0.5)
    real, fake = _batch(reals, 16, config, torch.Generator().manual_seed(config.seed + 1))
    r, f = disc.score(real), disc.score(fake)
    disc.threshold = float(0.5 * (r.mean() + f.mean()))
    log.info("discriminator: real %.2f, fake %.2f, threshold %.2f, AUC %.3f", float(r.mean()), float(f.mean()),
             disc.threshold, auc(r, f))
    return disc
