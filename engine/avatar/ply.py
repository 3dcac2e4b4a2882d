"""Binary little-endian .ply files of Gaussians (3DGS and GaussianAvatars property layout).

Properties: x, y, z, nx, ny, nz, f_dc_0..2, f_rest_0..(3·(K−1)−1) channel-major (all R, then G,
then B), opacity (logit), scale_0..2 (log), rot_0..3 (w, x, y, z); GaussianAvatars adds binding_0
(triangle index stored as float); DynamicAvatars adds label (facial component).
"""

from __future__ import annotations

import os

import numpy as np
from plyfile import PlyData

from engine.io.atomic import FileFormatError, atomic_write

BASE_FIELDS: tuple[str, ...] = (
    ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")
)
TAIL_FIELDS: tuple[str, ...] = ("opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
MAX_HEADER_BYTES = 64 * 1024  # longest ply header read
ROW_FORMATS: tuple[str, ...] = ("binary_little_endian", "binary_big_endian", "ascii")
TYPE_BYTES: dict[str, int] = {
    **dict.fromkeys(("char", "int8", "uchar", "uint8"), 1), **dict.fromkeys(("short", "int16", "ushort", "uint16"), 2),
    **dict.fromkeys(("int", "int32", "uint", "uint32", "float", "float32"), 4), **dict.fromkeys(("double", "float64"), 8),
}
"""Bytes per value of each ply scalar type."""


def sh_to_fields(sh: np.ndarray) -> dict[str, np.ndarray]:
    """f_dc_* and f_rest_* columns of SH coefficients [N, K, 3] (rest channel-major)."""
    n, k, _ = sh.shape
    out = {f"f_dc_{c}": sh[:, 0, c] for c in range(3)}
    rest = sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (k - 1))
    out.update({f"f_rest_{i}": rest[:, i] for i in range(rest.shape[1])})
    return out


def fields_to_sh(columns: dict[str, np.ndarray], origin: str | os.PathLike) -> np.ndarray:
    """SH coefficients [N, K, 3] from f_dc_* / f_rest_* columns."""
    rest_names = sorted((name for name in columns if name.startswith("f_rest_")), key=lambda s: int(s[7:]))
    n_rest = len(rest_names)
    if n_rest % 3 or (n_rest // 3 + 1) not in (1, 4, 9, 16):
        raise FileFormatError(origin, f"{n_rest} f_rest properties; expected 0, 9, 24 or 45")
    if rest_names != [f"f_rest_{i}" for i in range(n_rest)]:
        raise FileFormatError(origin, "f_rest properties are not numbered 0..n-1")
    k = n_rest // 3 + 1
    n = len(columns["f_dc_0"])
    dc = np.stack([columns[f"f_dc_{c}"] for c in range(3)], axis=1)[:, None, :]
    if k == 1:
        return dc.astype(np.float32)
    rest = np.stack([columns[name] for name in rest_names], axis=1).reshape(n, 3, k - 1).transpose(0, 2, 1)
    return np.concatenate([dc, rest], axis=1).astype(np.float32)


def write_ply(path: str | os.PathLike, columns: dict[str, np.ndarray]) -> None:
    """Write float32 vertex properties (in the given order) as binary little-endian ply, atomically."""
    names = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    data = np.empty(n, dtype=[(name, "<f4") for name in names])
    for name in names:
        data[name] = columns[name]
    header = "ply\nformat binary_little_endian 1.0\n" f"element vertex {n}\n"
    header += "".join(f"property float {name}\n" for name in names) + "end_header\n"
    with atomic_write(path) as fh:
        fh.write(header.encode("ascii"))
        fh.write(data.tobytes())


def read_ply(path: str | os.PathLike, required: tuple[str, ...] = BASE_FIELDS + TAIL_FIELDS) -> dict[str, np.ndarray]:
    """Vertex properties of a Gaussian ply as float32 arrays; validates fields, counts and values.

    The header is checked against the file's size before the body is read, so a header declaring more
    vertices than the file can hold is refused without allocating them.
    """
    if not os.path.isfile(path):
        raise FileFormatError(path, "file not found")
    expected = check_ply_header(path)
    try:
        ply = PlyData.read(str(path), mmap=False)  # a mapped file rewritten under us would crash (SIGBUS)
    except Exception as exc:  # noqa: BLE001 - plyfile's many parse failures become one clear message
        raise FileFormatError(path, f"not a valid ply file or truncated ({type(exc).__name__}: {exc})") from None
    if "vertex" not in ply:
        raise FileFormatError(path, "no 'vertex' element")
    vertex = ply["vertex"].data
    names = vertex.dtype.names or ()
    missing = [name for name in required if name not in names]
    if missing:
        raise FileFormatError(path, f"missing properties {', '.join(missing)}")
    if expected != len(vertex):
        raise FileFormatError(path, f"header declares {expected} vertices, body holds {len(vertex)}")
    columns = {name: np.asarray(vertex[name], dtype=np.float32) for name in names}
    for name in required:
        if not name.startswith("n") and not np.isfinite(columns[name]).all():
            bad = int((~np.isfinite(columns[name])).sum())
            raise FileFormatError(path, f"property {name} holds {bad} NaN or infinite values")
    return columns


def _header_elements(path: str | os.PathLike) -> tuple[str, int, list[tuple[str, int, int, int]]]:
    """(format, header length in bytes, [(element name, count, bytes per row, values per row)]) from a ply header;
    FileFormatError for anything but a plain header of scalar properties."""
    with open(path, "rb") as fh:
        head = fh.read(MAX_HEADER_BYTES)
    end = head.find(b"end_header")
    newline = head.find(b"\n", end)
    if not head.startswith(b"ply") or end < 0 or newline < 0:
        raise FileFormatError(path, "not a valid ply file (no 'ply' ... 'end_header' header in its first "
                                    f"{MAX_HEADER_BYTES // 1024} kB)")
    fmt = ""
    elements: list[tuple[str, int, int, int]] = []
    for raw in head[:end].decode("latin1").splitlines()[1:]:
        words = raw.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) == 3 and words[1] in ROW_FORMATS:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isascii() and words[2].isdigit():
            elements.append((words[1], int(words[2]), 0, 0))
        elif words[0] == "property" and len(words) == 3 and words[1] in TYPE_BYTES and elements:
            name, count, row, values = elements[-1]
            elements[-1] = (name, count, row + TYPE_BYTES[words[1]], values + 1)
        elif words[0] == "property" and words[1:2] == ["list"]:
            raise FileFormatError(path, "holds list properties (a mesh?), not Gaussians")
        else:
            raise FileFormatError(path, f"unexpected header line {raw[:60]!r}")
    if not fmt:
        raise FileFormatError(path, "the header names no known format (binary_little_endian, binary_big_endian, ascii)")
    return fmt, newline + 1, elements


def check_ply_header(path: str | os.PathLike) -> int:
    """The vertex count a ply header declares, after checking that the file is large enough to hold every
    element it declares (binary: exactly; ASCII: at least two bytes a value)."""
    fmt, start, elements = _header_elements(path)
    counts = {name: count for name, count, _, _ in elements}
    if "vertex" not in counts:
        raise FileFormatError(path, "no 'vertex' element")
    body = os.path.getsize(path) - start
    need = sum(count * (2 * values if fmt == "ascii" else row) for _, count, row, values in elements)
    if fmt == "ascii":
        need -= 1  # the last value needs no separator
    if need > body:
        raise FileFormatError(path, f"truncated or damaged: the header declares {counts['vertex']} vertices "
                                    f"({need} bytes), the file holds {body} bytes after the header")
    return counts["vertex"]
