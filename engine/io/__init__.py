"""Small shared file helpers: atomic writes, clear file errors, images (PNG, 8-bit, PSNR)."""

from engine.io.atomic import FileFormatError, atomic_write
from engine.io.images import psnr, read_mask_png, save_png, to_uint8

__all__ = ["FileFormatError", "atomic_write", "psnr", "read_mask_png", "save_png", "to_uint8"]
