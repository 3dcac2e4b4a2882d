"""Reading .npz archives from untrusted files: no pickles, and every size checked before it is allocated.

An .npz is a zip of .npy members. The zip's central directory declares each member's uncompressed
size, and each .npy header declares its array's shape and type; both are checked against each other
and against a cap before a byte is decompressed, so a zip bomb or a header claiming 10^12 elements is
refused in microseconds instead of exhausting memory. A member is never decompressed past its declared
size (zipfile stops there and checks the CRC).
"""

from __future__ import annotations

import io
import math
import os
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from typing import IO

import numpy as np

MAX_NPZ_BYTES = 4 << 30
"""Largest total of declared uncompressed member sizes read (4 GiB: a 3,000-frame sequence with
per-vertex offsets on FLAME with teeth is about 0.2 GB)."""

MAX_MEMBERS = 10_000
"""Most members an archive may list."""

ARRAY_KINDS = "biufcUS"
"""Element kinds an array may have: bool, integers, floats, complex, text. Never objects or records."""

ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, struct.error, NotImplementedError,
    RuntimeError,  # an encrypted member ("password required")
    SyntaxError, tokenize.TokenError,  # an .npy header that is not a Python literal
)
"""What zipfile raises on damaged or unsupported archives."""

Fail = Callable[[str], Exception]
"""Makes the caller's own error (naming its file) from a problem description."""


class _Refused(Exception):
    """A problem found inside read_npz, turned into the caller's error at its edge."""


def check_zip_members(zf: zipfile.ZipFile, fail: Fail, max_bytes: int = MAX_NPZ_BYTES) -> list[zipfile.ZipInfo]:
    """The members of an open zip after checking their count, their declared total size and their names
    (no absolute paths, no '..', no duplicates); raises fail(problem) otherwise."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise fail(f"the archive lists {len(infos)} members, more than the {MAX_MEMBERS} allowed")
    total = sum(info.file_size for info in infos)
    if total > max_bytes:
        raise fail(f"the archive declares {total / 2**30:.1f} GiB uncompressed, more than the "
                   f"{max_bytes / 2**30:.1f} GiB allowed (damaged, or not one of ours)")
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
            raise fail(f"member {name!r} points outside the archive's folder")
        if name in seen:
            raise fail(f"member {name!r} appears twice")
        seen.add(name)
    return infos


def _array_header(fh: IO[bytes], key: str, fail: Fail) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        raise fail(f"array {key!r} uses .npy format {version}, which is not read")
    if dtype.kind not in ARRAY_KINDS or dtype.fields is not None:
        raise fail(f"array {key!r} holds {dtype} values (Python objects and records are not read)")
    return shape, fortran, dtype


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, fail: Fail) -> np.ndarray:
    with zf.open(info) as fh:
        shape, fortran, dtype = _array_header(fh, key, fail)
        size = math.prod(shape) * dtype.itemsize
        body = info.file_size - fh.tell()
        if size != body:
            raise fail(f"array {key!r} declares shape {list(shape)} of {dtype} ({size} bytes), "
                       f"but its member holds {body} bytes")
        buffer = bytearray(size)
        if fh.readinto(buffer) != size:
            raise fail(f"array {key!r} is truncated")
    array = np.frombuffer(buffer, dtype=dtype) if size else np.empty(0, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")


def read_npz(source: str | os.PathLike | bytes, fail: Fail, max_bytes: int = MAX_NPZ_BYTES) -> dict[str, np.ndarray]:
    """Arrays of an .npz file (a path, or its bytes), keyed as np.load keys them (member name without
    '.npy'). Raises fail(problem) for anything that is not a well-formed archive of plain arrays within
    max_bytes; never returns object arrays and never unpickles."""
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as zf:
            out: dict[str, np.ndarray] = {}
            for info in check_zip_members(zf, _Refused, max_bytes):
                if info.is_dir():
                    continue
                key = info.filename.removesuffix(".npy")
                out[key] = _read_member(zf, info, key, _Refused)
            return out
    except _Refused as exc:
        raise fail(str(exc)) from None
    except ZIP_ERRORS as exc:
        raise fail(f"not a readable .npz file ({type(exc).__name__}: {exc})") from None
