"""Image files: PNG writing (atomic), reading painted masks, and conversion of float images to 8-bit."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from engine.io.atomic import FileFormatError, atomic_write


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """[H, W, C] float in [0, 1] (or uint8) -> [H, W, C] uint8."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.dtype == np.uint8:
        return array
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_png(path: str | os.PathLike, image: torch.Tensor | np.ndarray) -> None:
    """Write an [H, W, 3|4] (or [H, W]) image as PNG atomically."""
    with atomic_write(path) as fh:
        Image.fromarray(to_uint8(image)).save(fh, format="PNG")


def read_mask_png(path: str | os.PathLike) -> torch.Tensor:
    """[H, W] float32 in [0, 1] from a painted mask image: white = selected.

    Grey level of a greyscale or RGB image; an image with alpha is composited over black first
    (transparent = not selected). Raises FileFormatError naming the file when it is missing or unreadable.
    """
    if not os.path.isfile(path):
        raise FileFormatError(path, "mask image not found")
    try:
        with Image.open(path) as im:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)  # [H, W, 4] in 0..255
    except (OSError, ValueError) as exc:
        raise FileFormatError(path, f"not a readable image ({exc})") from None
    grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma, as PIL's "L" (white: exactly 255)
    return torch.from_numpy((grey * rgba[..., 3] / (255.0 * 255.0)).clip(0.0, 1.0).astype(np.float32))
