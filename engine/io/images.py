"""Image files: PNG writing (atomic) and conversion of float images to 8-bit."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from engine.io.atomic import atomic_write


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
