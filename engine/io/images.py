"""Image files and pixels: PNG writing (atomic), reading painted masks, float images to 8-bit, PSNR."""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from collections.abc import Callable

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


def psnr(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """PSNR in dB of two images of the same shape: uint8 (peak 255) or float (clipped to [0, 1], what shows);
    99 dB when equal."""
    x, y = (_unit(v) for v in (a, b))
    assert x.shape == y.shape, f"images must have the same shape, got {x.shape} and {y.shape}"
    mse = float(np.mean((x - y) ** 2))
    return 99.0 if mse <= 1e-10 else 10.0 * math.log10(1.0 / mse)


def _unit(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """float64 pixels in [0, 1] of a uint8 or float image."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    return np.clip(array.astype(np.float64), 0.0, 1.0)


def save_png(path: str | os.PathLike, image: torch.Tensor | np.ndarray) -> None:
    """Write an [H, W, 3|4] (or [H, W]) image as PNG atomically."""
    with atomic_write(path) as fh:
        Image.fromarray(to_uint8(image)).save(fh, format="PNG")


MAX_IMAGE_PIXELS = 8192 * 8192
"""Largest image decoded (width × height), checked from the header before any pixel is decoded."""

IMAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError, struct.error, zlib.error,
)
"""What PIL raises on damaged or hostile image files (SyntaxError and struct.error from some decoders)."""


def open_image(source: str | os.PathLike | bytes, fail: Callable[[str], Exception], decode: bool = True,
               max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """An image from a file or its bytes, its size checked against max_pixels before decoding; with decode,
    its pixels are decoded too. Raises fail(problem) for anything unreadable."""
    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        if im.width * im.height > max_pixels:
            im.close()
            raise _TooLarge(f"image is {im.width}x{im.height}, larger than the {max_pixels} pixels allowed")
        if decode:
            im.load()
        return im
    except _TooLarge as exc:
        raise fail(str(exc)) from None
    except Image.DecompressionBombError as exc:  # PIL's own check, at open, of sizes far past ours
        raise fail(f"image is larger than the {max_pixels} pixels allowed ({exc})") from None
    except IMAGE_ERRORS as exc:
        raise fail(f"not a readable image ({type(exc).__name__}: {exc})") from None


class _TooLarge(Exception):
    """An image larger than allowed (turned into the caller's error)."""


def read_mask_png(path: str | os.PathLike) -> torch.Tensor:
    """[H, W] float32 in [0, 1] from a painted mask image: white = selected.

    Grey level of a greyscale or RGB image; an image with alpha is composited over black first
    (transparent = not selected). Raises FileFormatError naming the file when it is missing or unreadable.
    """
    if not os.path.isfile(path):
        raise FileFormatError(path, "mask image not found")
    with open_image(path, lambda problem: FileFormatError(path, problem)) as im:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)  # [H, W, 4] in 0..255
    grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma, as PIL's "L" (white: exactly 255)
    return torch.from_numpy((grey * rgba[..., 3] / (255.0 * 255.0)).clip(0.0, 1.0).astype(np.float32))
