"""A conditional PatchGAN-style discriminator that judges edited views of one avatar.

Like the paper's (real = edited ‖ condition, fake = render ‖ condition), it sees a pair: the unedited
render of a view (the condition) and an image of the same view. It is trained on the avatar's own
renders and training photos: real pairs are (render, render), (render, clean procedural edit of the
render's edit region: random target colours and materials in Oklab, keeping shading) and (render,
smooth random recolouring); fake pairs are (render, a corrupted copy of such an image: noise, mosaic,
stripes, shuffled patches, speckle, ringing, in random regions, the whole image or inside the edit
mask). It looks at local structure, not colour (each image's high-pass and its local energy, taken at
the image's own resolution so fine artefacts survive the downsampling), so a bold but clean recolouring
looks real while broken pixels do not.

An edit is judged on the square around its mask (`focus`), patches weighted by the mask. The gate's
threshold is calibrated on the avatar itself (`calibrate_gate`): clean procedural edits of the edit's own
keyframes must pass (the threshold sits at the `clean_pass` quantile of their realness) and the share of
corrupted copies it still catches is reported. It (1) gates every edited keyframe and (2) gives a small
non-saturating adversarial term on renders while optimising.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.edit.corruption import clean_edit, corrupt, corrupt_inside, recolour_blob

log = logging.getLogger(__name__)
CATCH = 0.95  # the gate is set below this quantile of corrupted copies' realness when clean edits allow
CHANNELS = 15  # channels of a pair: (high-pass, local energy) × RGB × (condition, image) + RGB energy log-ratio


def structure(images: Tensor) -> Tensor:
    """[B, 6, H, W]: high-pass (each channel minus its 5 × 5 mean, ×4) and its local energy (RMS over 3 × 3,
    ×4) of images [B, H, W, 3] in [0, 1], at their own resolution."""
    x = images.permute(0, 3, 1, 2).contiguous()
    high = 4.0 * (x - _box(x, 2))
    energy = (_box(high * high, 1).clamp_min(0) + 1e-6).sqrt()
    return torch.cat([high, energy], 1)


def _box(x: Tensor, r: int) -> Tensor:
    """[B, C, H, W] mean over (2r + 1)² neighbourhoods of x [B, C, H, W] (edges replicated), by an integral image."""
    k = 2 * r + 1
    s = F.pad(F.pad(x, (r, r, r, r), mode="replicate"), (1, 0, 1, 0)).cumsum(2).cumsum(3)  # integral image
    return (s[..., k:, k:] - s[..., :-k, k:] - s[..., k:, :-k] + s[..., :-k, :-k]) / (k * k)


def _resized(images: Tensor, size: int) -> Tensor:
    """images [B, C, H, W] at size × size (antialiased bilinear; unchanged when already that size)."""
    if images.shape[-2] == size and images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def pair_features(condition: Tensor, image: Tensor, size: int) -> Tensor:
    """[B, 15, size, size] what the network sees of images [B, H, W, 3] next to their conditions [B, H, W, 3]:
    both structures and the log-ratio of their local energies (a clean recolouring scales the energy
    smoothly; noise, stripes and speckle raise it in patterns, a mosaic wipes it out inside its blocks)."""
    assert condition.shape == image.shape and image.ndim == 4 and image.shape[-1] == 3, (
        f"condition and image must both be [B, H, W, 3], got {tuple(condition.shape)}, {tuple(image.shape)}")
    a, b = structure(condition.float()), structure(image.float())
    ratio = torch.log((b[:, 3:] + 0.02) / (a[:, 3:] + 0.02))
    return _resized(torch.cat([a, b, ratio], 1), size)


class PatchDiscriminator(nn.Module):
    """Fully convolutional: pair features [B, 12, S, S] -> patch logits [B, 1, S/8, S/8]."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(CHANNELS, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.GroupNorm(8, 2 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.GroupNorm(8, 4 * w), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 3, 1, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Training and calibration of the edit discriminator."""

    steps: int = 100  # optimiser steps
    batch: int = 8  # pairs per step (half real, half corrupted)
    size: int = 64  # the network sees pairs at size × size
    work: int = 96  # training crops are edited and corrupted at work × work, then reduced to size
    lr: float = 1e-3  # Adam learning rate
    width: int = 16  # channels of the first convolution
    clean_pass: float = 0.99  # share of the clean procedural edits of the calibration set the gate passes
    calibration: int = 32  # clean edits (and as many corrupted copies) drawn to calibrate the gate
    seed: int = 0  # RNG seed for augmentation, corruption and calibration


@dataclass(frozen=True)
class GateCalibration:
    """How the gate's threshold was set and what it does on a fresh draw of the same kinds of images."""

    threshold: float  # masked realness below this fails the gate
    clean_pass_share: float  # share of fresh clean procedural edits the gate passes
    corrupt_catch_share: float  # share of fresh corrupted copies the gate rejects
    auc: float  # P(clean edit scores above corrupted copy)

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def focus(images: Tensor, mask: Tensor, size: int | None = None, margin: float = 0.5) -> tuple[Tensor, Tensor]:
    """images [..., H, W, C] (one or several stacked, same view) and mask [H, W] cropped to the square around
    the mask (its box enlarged by margin on each side, at least a quarter of the image), resized to
    size × size when size is given. Differentiable in images."""
    h, w = mask.shape
    ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
    if ys.numel() == 0:
        ys, xs = torch.nonzero(mask > 0.02, as_tuple=True)
    if ys.numel() == 0:
        side, y0, x0 = min(h, w), 0, 0
    else:
        y_lo, y_hi, x_lo, x_hi = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        side = int(max(y_hi - y_lo, x_hi - x_lo) * (1 + 2 * margin))
        side = min(max(side, min(h, w) // 4, 8), min(h, w))
        y0 = min(max((y_lo + y_hi - side) // 2, 0), h - side)
        x0 = min(max((x_lo + x_hi - side) // 2, 0), w - side)
    crop, m = images[..., y0:y0 + side, x0:x0 + side, :], mask[y0:y0 + side, x0:x0 + side]
    if size is None:
        return crop, m
    flat = crop.reshape(-1, side, side, crop.shape[-1]).permute(0, 3, 1, 2).float()
    crop = _resized(flat, size).permute(0, 2, 3, 1).reshape(*crop.shape[:-3], size, size, crop.shape[-1])
    return crop, _resized(m[None, None].float(), size)[0, 0]


def auc(positives: Tensor, negatives: Tensor) -> float:
    """Area under the ROC curve of scores: P(positive score > negative score), ties count half."""
    diff = positives[:, None] - negatives[None, :]
    return float(((diff > 0).float() + 0.5 * (diff == 0).float()).mean())


def _masked_mean(values: Tensor, masks: Tensor) -> Tensor:
    """[B] mean of patch values [B, h, w] weighted by masks [B, H, W] pooled onto the patches (+1e-3)."""
    m = F.adaptive_avg_pool2d(masks[:, None].float(), values.shape[1:])[:, 0] + 1e-3
    return (values * m).sum((1, 2)) / m.sum((1, 2))


class EditDiscriminator:
    """A trained PatchDiscriminator with a calibrated gate threshold."""

    def __init__(self, net: PatchDiscriminator, threshold: float, size: int = 64) -> None:
        self.net = net.eval()  # the trained network (frozen)
        self.threshold = threshold  # masked realness below this fails the gate
        self.size = size  # pairs are judged at size × size
        self.calibration: GateCalibration | None = None  # how the threshold was set, when calibrated
        for p in self.net.parameters():
            p.requires_grad_(False)

    def _logits(self, condition: Tensor, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(patch logits [h, w], mask [size, size]) of one image [H, W, 3] beside its condition, around mask [H, W]."""
        pair, m = focus(torch.stack([condition, image]), mask)
        logits = self.net(pair_features(pair[:1], pair[1:], self.size))[0, 0]
        return logits, _resized(m[None, None].float(), self.size)[0, 0]

    def score(self, conditions: Tensor, images: Tensor, masks: Tensor) -> Tensor:
        """[B] realness in [0, 1] of images [B, H, W, 3] next to their unedited renders conditions [B, H, W, 3]:
        mean patch probability over the square around each edit mask [B, H, W], patches weighted by it."""
        assert images.ndim == 4 and conditions.shape == images.shape and masks.shape == images.shape[:3], (
            f"images and conditions must be [B, H, W, 3] and masks [B, H, W], got {tuple(images.shape)}, "
            f"{tuple(conditions.shape)}, {tuple(masks.shape)}")
        with torch.no_grad():
            out = [self._logits(c, i, m) for c, i, m in zip(conditions, images, masks)]
        return _masked_mean(torch.sigmoid(torch.stack([o[0] for o in out])), torch.stack([o[1] for o in out]))

    def gate(self, image: Tensor, mask: Tensor, condition: Tensor) -> tuple[bool, float, str]:
        """(accepted, score, reason) for one edited view image [H, W, 3] with its edit mask [H, W] and the
        view's unedited render condition [H, W, 3]."""
        if not bool(torch.isfinite(image).all()):
            return False, 0.0, "non-finite pixels"
        inside = image[mask > 0.5]
        if inside.numel() and float(inside.std()) < 1e-4 and inside.shape[0] > 16:
            return False, 0.0, "the edited region is a flat fill"
        s = float(self.score(condition[None], image[None], mask[None])[0])
        if s < self.threshold:
            return False, s, f"looks broken to the discriminator (realness {s:.2f} < {self.threshold:.2f})"
        return True, s, "ok"

    def adversarial_loss(self, render: Tensor, mask: Tensor, condition: Tensor) -> Tensor:
        """Non-saturating generator loss softplus(−logit) of a render [H, W, 3] next to the view's unedited
        render condition [H, W, 3], over the square around mask [H, W] (mask-weighted patches); differentiable."""
        logits, m = self._logits(condition, render, mask)
        return _masked_mean(F.softplus(-logits)[None], m[None])[0]


def _augment(image: Tensor, mask: Tensor, size: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """A random crop of image [H, W, 3] and its mask [H, W], maybe flipped, at size × size: (when the mask
    holds a region) the square around the mask as the gate sees it, or a size × size window at the image's
    own scale, or 70–100% of the image."""
    h, w, _ = image.shape
    way = int(torch.randint(3, (1,), generator=gen))
    if way == 0 and float(mask.max()) > 0.5:
        image, mask = focus(image, mask, size, 0.3 + 0.4 * float(torch.rand(1, generator=gen)))
    else:
        if way == 1 and h >= size and w >= size:
            ch, cw = size, size
        else:
            s = 0.7 + 0.3 * float(torch.rand(1, generator=gen))
            ch, cw = max(8, int(h * s)), max(8, int(w * s))
        y0 = int(torch.randint(h - ch + 1, (1,), generator=gen))
        x0 = int(torch.randint(w - cw + 1, (1,), generator=gen))
        both = torch.cat([image, mask[..., None]], -1)[y0:y0 + ch, x0:x0 + cw]
        both = _resized(both.permute(2, 0, 1)[None], size)[0].permute(1, 2, 0)
        image, mask = both[..., :3], both[..., 3]
    if float(torch.rand(1, generator=gen)) < 0.5:
        image, mask = image.flip(1), mask.flip(1)
    return image, mask


def _batch(pairs: list[tuple[Tensor, Tensor | None]], n: int, config: DiscriminatorConfig,
           gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """(conditions, reals, fakes), each [n, W, W, 3] at the work size: augmented renders, the same views
    unchanged or cleanly edited, and corrupted copies of those."""
    picks = torch.randint(len(pairs), (n,), generator=gen).tolist()
    cond, real, fake = [], [], []
    for i in picks:
        image, mask = pairs[i]
        img, m = _augment(image, mask if mask is not None else torch.zeros(image.shape[:2]), config.work, gen)
        way = int(torch.randint(3, (1,), generator=gen))
        edited = clean_edit(img, m, gen) if way == 0 and mask is not None else recolour_blob(img, gen) if way == 1 \
            else img
        cond.append(img)
        real.append(edited)
        inside = mask is not None and float(torch.rand(1, generator=gen)) < 0.5
        fake.append(corrupt_inside(edited, m, gen) if inside else corrupt(edited, gen))
    return torch.stack(cond), torch.stack(real), torch.stack(fake)


def _pairs(reals: list[Tensor], masks: list[Tensor | None] | None) -> list[tuple[Tensor, Tensor | None]]:
    masks = masks if masks is not None else [None] * len(reals)
    assert len(masks) == len(reals), f"masks must match reals ({len(reals)}), got {len(masks)}"
    return [(r, m if m is not None and float(m.max()) > 0.5 else None) for r, m in zip(reals, masks)]


def gate_samples(images: list[Tensor], masks: list[Tensor], count: int,
                 gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(conditions, clean, corrupted, masks), count each, at the views' own resolution: the views (images
    [H, W, 3] of one size, edit masks [H, W]) in turn, a clean procedural edit of each, and a copy of that
    edit broken inside its mask."""
    usable = [(im, m) for im, m in zip(images, masks, strict=True) if float(m.max()) > 0.5]
    assert usable, "gate samples need a view with an edit mask"
    cond, clean, broken, ms = [], [], [], []
    for k in range(count):
        image, mask = usable[k % len(usable)]
        edited = clean_edit(image, mask, gen)
        cond.append(image)
        clean.append(edited)
        broken.append(corrupt_inside(edited, mask, gen))
        ms.append(mask)
    return torch.stack(cond), torch.stack(clean), torch.stack(broken), torch.stack(ms)


def calibrate_gate(disc: EditDiscriminator, images: list[Tensor], masks: list[Tensor], clean_pass: float = 0.99,
                   count: int = 32, seed: int = 0) -> GateCalibration:
    """Set disc.threshold so `clean_pass` of clean procedural edits of these views (unedited renders [H, W, 3],
    edit masks [H, W]) pass, then measure pass and catch shares on a fresh draw (clean edits and corrupted
    copies)."""
    if not any(float(m.max()) > 0.5 for m in masks):
        return GateCalibration(disc.threshold, float("nan"), float("nan"), float("nan"))
    cond, clean, broken, m = gate_samples(images, masks, count, torch.Generator().manual_seed(seed + 11))
    low = float(torch.quantile(disc.score(cond, clean, m), 1.0 - clean_pass))  # clean edits pass above this
    high = float(torch.quantile(disc.score(cond, broken, m), CATCH))  # CATCH of corrupted copies score below this
    logit = lambda p: torch.logit(torch.tensor(p).clamp(1e-6, 1 - 1e-6))
    # in the gap between the two, its middle (on the logit scale) leaves room on both sides for unseen views
    disc.threshold = float(torch.sigmoid(0.5 * (logit(low) + logit(high)))) if high < low else low - 1e-4
    cond, clean, broken, m = gate_samples(images, masks, count, torch.Generator().manual_seed(seed + 12))
    good, bad = disc.score(cond, clean, m), disc.score(cond, broken, m)
    result = GateCalibration(disc.threshold, float((good >= disc.threshold).float().mean()),
                             float((bad < disc.threshold).float().mean()), auc(good, bad))
    disc.calibration = result
    log.info("discriminator gate: %s", result.as_dict())
    return result


def train_discriminator(reals: list[Tensor], config: DiscriminatorConfig | None = None,
                        cancel: Callable[[], bool] | None = None,
                        progress: Callable[[float, str], None] | None = None,
                        masks: list[Tensor | None] | None = None) -> EditDiscriminator | None:
    """Train on real views (each [H, W, 3] in [0, 1], with its edit mask [H, W] or None) against corrupted
    copies; the gate is calibrated on the masked views of the first one's size (a threshold between real and
    corrupted scores otherwise); None when cancelled."""
    config = config or DiscriminatorConfig()
    if not reals:
        raise ValueError("the discriminator needs at least one real image")
    pairs = _pairs(reals, masks)
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    net = PatchDiscriminator(config.width)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.5, 0.999))
    half = max(1, config.batch // 2)
    target = torch.cat([torch.ones(half), torch.zeros(half)])[:, None, None, None]
    for step in range(config.steps):
        if cancel is not None and cancel():
            return None
        cond, real, fake = _batch(pairs, half, config, gen)
        logits = net(pair_features(torch.cat([cond, cond]), torch.cat([real, fake]), config.size))
        loss = F.binary_cross_entropy_with_logits(logits, target.expand_as(logits))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None and step % 25 == 0:
            progress(step / config.steps, f"training the discriminator ({loss.item():.3f})")
    disc = EditDiscriminator(net, 0.5, config.size)
    masked = [(im, m) for im, m in pairs if m is not None and im.shape == reals[0].shape]
    if masked:
        calibrate_gate(disc, [im for im, _ in masked], [m for _, m in masked], config.clean_pass,
                       config.calibration, config.seed)
    else:
        cond, real, fake = _batch(pairs, 16, config, torch.Generator().manual_seed(config.seed + 1))
        full = torch.ones(cond.shape[:3])
        r, f = disc.score(cond, real, full), disc.score(cond, fake, full)
        disc.threshold = float(0.5 * (r.mean() + f.mean()))
    log.info("discriminator: threshold %.2f", disc.threshold)
    return disc
