"""Binary little-endian .ply files of Gaussians (3DGS and GaussianAvatars property layout).

Properties: x, y, z, nx, ny, nz, f_dc_0..2, f_rest_0..(3·(K−1)−1) channel-major (all R, then G,
then B), opacity (logit), scale_0..2 (log), rot_0..3 (w, x, y, z); GaussianAvatars adds binding_0
(triangle index stored as float); DynamicAvatars adds label (facial component).
"""

from __future__ import annotations

import os
import re

import numpy as np
from plyfile import PlyData, PlyElementParseError, PlyHeaderParseError

from engine.io.atomic import FileFormatError, atomic_write

BASE_FIELDS: tuple[str, ...] = (
    ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")
)
TAIL_FIELDS: tuple[str, ...] = ("opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")


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
    """Vertex properties of a Gaussian ply as float32 arrays; validates fields, counts and values."""
    if not os.path.isfile(path):
        raise FileFormatError(path, "file not found")
    try:
        ply = PlyData.read(str(path))
    except (PlyHeaderParseError, PlyElementParseError, ValueError, EOFError, IndexError, UnicodeDecodeError) as exc:
        raise FileFormatError(path, f"not a valid ply file or truncated ({exc})") from None
    if "vertex" not in ply:
        raise FileFormatError(path, "no 'vertex' element")
    vertex = ply["vertex"].data
    names = vertex.dtype.names or ()
    missing = [name for name in required if name not in names]
    if missing:
        raise FileFormatError(path, f"missing properties {', '.join(missing)}")
    expected = _declared_count(path)
    if expected is not None and expected != len(vertex):
        raise FileFormatError(path, f"header declares {expected} vertices, body holds {len(vertex)}")
    columns = {name: np.asarray(vertex[name], dtype=np.float32) for name in names}
    for name in required:
        if not name.startswith("n") and not np.isfinite(columns[name]).all():
            bad = int((~np.isfinite(columns[name])).sum())
            raise FileFormatError(path, f"property {name} holds {bad} NaN or infinite values")
    return columns


def _declared_count(path: str | os.PathLike) -> int | None:
    with open(path, "rb") as fh:
        head = fh.read(4096).decode("latin1")
    match = re.search(r"element vertex (\d+)", head)
    return int(match.group(1)) if match else None
