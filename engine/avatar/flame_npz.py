"""flame_param.npz: GaussianAvatars' FLAME parameter file, read and written with validation.

Keys: shape [S] (or [1, S]), expr [T, E], rotation, neck_pose, jaw_pose [T, 3], eyes_pose [T, 6],
translation [T, 3], optional static_offset [1, V, 3] and dynamic_offset [T, V, 3].
"""

from __future__ import annotations

import os

import numpy as np
import torch

from engine.head.params import FRAME_KEYS, FlameParams
from engine.io.atomic import FileFormatError, atomic_write
from engine.io.npz import read_npz

WIDTHS: dict[str, int] = {"rotation": 3, "neck_pose": 3, "jaw_pose": 3, "eyes_pose": 6, "translation": 3}


def flame_params_to_arrays(params: FlameParams) -> dict[str, np.ndarray]:
    """numpy arrays in GaussianAvatars' key layout."""
    out = {k: getattr(params, k).detach().cpu().numpy().astype(np.float32) for k in ("shape",) + FRAME_KEYS}
    if params.static_offset is not None:
        out["static_offset"] = params.static_offset.detach().cpu().numpy().astype(np.float32)[None]
    if params.dynamic_offset is not None:
        out["dynamic_offset"] = params.dynamic_offset.detach().cpu().numpy().astype(np.float32)
    return out


def save_flame_params(params: FlameParams, path: str | os.PathLike) -> None:
    """Write params to an .npz atomically."""
    with atomic_write(path) as fh:
        np.savez(fh, **flame_params_to_arrays(params))


def flame_params_from_arrays(data: dict[str, np.ndarray], origin: str | os.PathLike) -> FlameParams:
    """FlameParams from GaussianAvatars-layout arrays; raises FileFormatError naming origin."""
    missing = [k for k in ("shape", "expr") + tuple(WIDTHS) if k not in data]
    if missing:
        raise FileFormatError(origin, f"missing FLAME parameters {', '.join(missing)}")
    used = {k: np.asarray(v) for k, v in data.items() if k in ("shape", "expr", "static_offset", "dynamic_offset", *WIDTHS)}
    wrong = [k for k, v in used.items() if v.dtype.kind not in "biuf"]
    if wrong:
        raise FileFormatError(origin, f"{', '.join(wrong)} must hold numbers")
    arrays = {k: v.astype(np.float32) for k, v in used.items()}
    shape = arrays["shape"].reshape(-1) if arrays["shape"].ndim == 2 and arrays["shape"].shape[0] == 1 else arrays["shape"]
    if shape.ndim != 1:
        raise FileFormatError(origin, f"shape must be [S] or [1, S], got {list(arrays['shape'].shape)}")
    expr = arrays["expr"]
    if expr.ndim == 1:
        expr = expr[None]
    if expr.ndim != 2:
        raise FileFormatError(origin, f"expr must be [T, E], got {list(arrays['expr'].shape)}")
    t = expr.shape[0]
    if t == 0:
        raise FileFormatError(origin, "expr holds no frames")
    frame: dict[str, np.ndarray] = {}
    for key, width in WIDTHS.items():
        value = arrays[key]
        if value.ndim == 1:
            value = value[None]
        if value.shape != (t, width):
            raise FileFormatError(origin, f"{key} must be [{t}, {width}] to match expr's {t} frames, got {list(arrays[key].shape)}")
        frame[key] = value
    static = arrays.get("static_offset")
    if static is not None:
        static = static.reshape(static.shape[-2:]) if static.ndim == 3 and static.shape[0] == 1 else static
        if static.ndim != 2 or static.shape[1] != 3:
            raise FileFormatError(origin, f"static_offset must be [1, V, 3], got {list(arrays['static_offset'].shape)}")
    dynamic = arrays.get("dynamic_offset")
    if dynamic is not None and (dynamic.ndim != 3 or dynamic.shape[0] != t or dynamic.shape[2] != 3):
        raise FileFormatError(origin, f"dynamic_offset must be [{t}, V, 3], got {list(dynamic.shape)}")
    offsets = [(k, v) for k, v in (("static_offset", static), ("dynamic_offset", dynamic)) if v is not None]
    for key, value in [("shape", shape), ("expr", expr), *frame.items(), *offsets]:
        if not np.isfinite(value).all():
            raise FileFormatError(origin, f"{key} holds NaN or infinite values")
    tensor = torch.from_numpy
    return FlameParams(
        shape=tensor(shape.copy()),
        expr=tensor(expr.copy()),
        **{k: tensor(v.copy()) for k, v in frame.items()},
        static_offset=None if static is None else tensor(static.copy()),
        dynamic_offset=None if dynamic is None or not dynamic.any() else tensor(dynamic.copy()),
    )


def load_flame_params(path: str | os.PathLike) -> FlameParams:
    """Read a flame_param.npz; raises FileFormatError naming the file and the problem."""
    if not os.path.isfile(path):
        raise FileFormatError(path, "FLAME parameter file not found")
    return flame_params_from_arrays(read_npz(path, lambda problem: FileFormatError(path, problem)), path)
