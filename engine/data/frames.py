"""Loading a dataset frame's image, foreground mask and label map as tensors at a chosen size.

Downsampling averages areas (rgb, mask) or takes the majority label per block (labels); the
camera is resized to match (`Camera.resized`). A small thread-safe LRU cache keeps recently
loaded tensors, so an epoch over a small dataset decodes each PNG once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from engine.data.vhap_format import DatasetError, FrameRecord
from engine.head.components import COMPONENTS
from engine.io.images import open_image
from engine.render.camera import Camera

WHITE = 1.0  # background value images are composited over (VHAP exports on white)


@dataclass(frozen=True)
class LoadedFrame:
    """A frame's pixels at the requested size and the camera that matches them."""

    record: FrameRecord  # where it came from
    camera: Camera  # record.camera resized to (width, height)
    image: Tensor  # [H, W, 3] float32 in [0, 1], composited over white
    mask: Tensor | None  # [H, W] float32 alpha in [0, 1], or None when the dataset has no masks
    labels: Tensor | None  # [H, W] int64 COMPONENTS index, -1 = background, or None


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most max_side (aspect kept, never enlarged)."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _open(path: Path) -> Image.Image:
    return open_image(path, lambda problem: DatasetError(path, f"cannot decode image: {problem}"))


def resize_float(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize x [H, W, C] float to (width, height): area average when shrinking, bilinear otherwise."""
    w, h = size
    if x.shape[1] == w and x.shape[0] == h:
        return x
    chw = x.permute(2, 0, 1)[None]
    if w <= x.shape[1] and h <= x.shape[0]:
        out = F.interpolate(chw, size=(h, w), mode="area")
    else:
        out = F.interpolate(chw, size=(h, w), mode="bilinear", align_corners=False)
    return out[0].permute(1, 2, 0).contiguous()


def one_hot_labels(labels: Tensor, n: int = len(COMPONENTS)) -> Tensor:
    """[..., n] float one-hot of labels [...] (COMPONENTS index; -1 = background: all zero)."""
    return F.one_hot(labels.clamp(min=0), n).float() * (labels >= 0)[..., None]


def resize_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a label map [H, W] long to (width, height): majority per block for whole-number
    shrink factors, nearest pixel otherwise."""
    w, h = size
    big_h, big_w = labels.shape
    if (big_w, big_h) == (w, h):
        return labels
    if big_w % w == 0 and big_h % h == 0:
        fy, fx = big_h // h, big_w // w
        blocks = labels.reshape(h, fy, w, fx).permute(0, 2, 1, 3).reshape(h, w, fy * fx)
        out = blocks[..., 0].clone()
        mixed = (blocks != blocks[..., :1]).any(dim=-1)  # only blocks with several labels need a vote
        if mixed.any():
            out[mixed] = torch.mode(blocks[mixed], dim=-1).values
        return out
    ys = ((torch.arange(h) + 0.5) * big_h / h).long().clamp(max=big_h - 1)
    xs = ((torch.arange(w) + 0.5) * big_w / w).long().clamp(max=big_w - 1)
    return labels[ys][:, xs]


def load_image(path: Path, size: tuple[int, int] | None = None) -> Tensor:
    """[H, W, 3] float32 RGB in [0, 1] (RGBA is composited over white) at size (width, height)."""
    im = _open(path)
    a = (
        np.asarray(im.convert("RGBA") if im.mode in ("RGBA", "LA", "P") else im.convert("RGB"), dtype=np.float32)
        / 255.0
    )
    x = torch.from_numpy(a)
    if x.shape[-1] == 4:
        x = x[..., :3] * x[..., 3:] + WHITE * (1.0 - x[..., 3:])
    return resize_float(x, size or (x.shape[1], x.shape[0]))


def load_mask(path: Path, size: tuple[int, int] | None = None) -> Tensor:
    """[H, W] float32 alpha in [0, 1] from an 8-bit mask (or the alpha channel of an RGBA image)."""
    im = _open(path)
    band = im.getchannel("A") if im.mode in ("RGBA", "LA") else im.convert("L")
    x = torch.from_numpy(np.asarray(band, dtype=np.float32) / 255.0)[..., None]
    return resize_float(x, size or (x.shape[1], x.shape[0]))[..., 0]


def load_labels(path: Path, size: tuple[int, int] | None = None) -> Tensor:
    """[H, W] int64 COMPONENTS index, -1 = background, from an 8-bit label map (index + 1)."""
    im = _open(path)
    if im.mode not in ("L", "P"):
        raise DatasetError(path, f"label map must be 8-bit single channel, got mode {im.mode}")
    x = torch.from_numpy(np.asarray(im, dtype=np.int64)) - 1
    if x.numel() and int(x.max()) >= len(COMPONENTS):
        raise DatasetError(path, f"label map holds value {int(x.max()) + 1}, above the {len(COMPONENTS)} components "
                                 f"(1-{len(COMPONENTS)}; 0 = background)")
    return resize_labels(x, size or (x.shape[1], x.shape[0]))


class FrameLoader:
    """Loads FrameRecords at a chosen size with an LRU cache of the last `capacity` files."""

    def __init__(self, capacity: int = 64) -> None:
        assert capacity >= 0, f"capacity must be >= 0, got {capacity}"
        self.capacity = capacity  # number of decoded tensors kept
        self._cache: OrderedDict[tuple[str, str, int, int], Tensor] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0  # cache hits so far
        self.misses = 0  # cache misses so far

    def _get(self, kind: str, path: Path, size: tuple[int, int]) -> Tensor:
        key = (kind, str(path), size[0], size[1])
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.hits += 1
                return self._cache[key]
        loader = {"image": load_image, "mask": load_mask, "labels": load_labels}[kind]
        value = loader(path, size)
        with self._lock:
            self.misses += 1
            if self.capacity:
                self._cache[key] = value
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
        return value

    def load(self, record: FrameRecord, size: tuple[int, int] | None = None) -> LoadedFrame:
        """The frame at size (width, height); None keeps the dataset's size.

        Cached tensors are shared: treat them as read-only (clone before editing in place).
        """
        size = size or (record.camera.width, record.camera.height)
        assert size[0] > 0 and size[1] > 0, f"size must be positive, got {size}"
        image = self._get("image", record.image_path, size)
        if image.shape[:2] != (size[1], size[0]):
            raise DatasetError(record.image_path, f"decoded to {tuple(image.shape[:2])}, expected {size[::-1]}")
        mask = self._get("mask", record.mask_path, size) if record.mask_path is not None else None
        labels = self._get("labels", record.label_path, size) if record.label_path is not None else None
        return LoadedFrame(record, record.camera.resized(*size), image, mask, labels)

    def clear(self) -> None:
        """Drop every cached tensor."""
        with self._lock:
            self._cache.clear()
