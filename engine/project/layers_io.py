"""Edit layers and selections as npz arrays + JSON metadata (the project file's layers/ and selections).

A layer's arrays (indices, hidden, delta_<field>, expr_offset, jaw_offset, added_<field>) go in one npz with their
dtypes kept, so a round trip is bit-exact; its name, kind, enabled flag, info and id go in JSON.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from engine.avatar.gaussians import BoundGaussians
from engine.edit.layers import DELTA_FIELDS, LAYER_KINDS, EditLayer
from engine.io.atomic import FileFormatError
from engine.io.npz import read_npz as read_npz_checked

SELECTION_DTYPES: tuple[str, ...] = ("bool", "float32", "float64", "float16")
"""Element types a selection (per-Gaussian mask) may have."""


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz of arrays, in memory."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def read_npz(data: bytes, origin: str) -> dict[str, np.ndarray]:
    """Arrays of an in-memory .npz (no pickles); FileFormatError naming origin when unreadable."""
    return read_npz_checked(data, lambda problem: FileFormatError(origin, problem))


def layer_arrays(layer: EditLayer) -> dict[str, np.ndarray]:
    """The tensors of a layer as named numpy arrays (dtypes kept)."""
    np_ = lambda t: t.detach().cpu().numpy()
    out = {"indices": np_(layer.indices), "hidden": np_(layer.hidden)}
    out.update({f"delta_{k}": np_(v) for k, v in layer.deltas.items()})
    if layer.expr_offset is not None:
        out["expr_offset"] = np_(layer.expr_offset)
    if layer.jaw_offset is not None:
        out["jaw_offset"] = np_(layer.jaw_offset)
    if layer.added is not None:
        out.update({f"added_{f.name}": np_(getattr(layer.added, f.name)) for f in fields(BoundGaussians)})
    return out


def layer_meta(layer: EditLayer, file: str) -> dict[str, Any]:
    """JSON metadata of a layer whose arrays live in `file`."""
    return {"id": layer.id, "name": layer.name, "kind": layer.kind, "enabled": layer.enabled,
            "info": layer.info, "file": file}


def _check_meta(meta: dict[str, Any], origin: str) -> None:
    if meta.get("kind") not in LAYER_KINDS:
        raise FileFormatError(origin, f"unknown layer kind {str(meta.get('kind'))[:40]!r}")
    kinds = {"name": str, "id": str, "enabled": bool, "info": dict}
    wrong = [k for k, kind in kinds.items() if meta.get(k) is not None and not isinstance(meta[k], kind)]
    if wrong:
        raise FileFormatError(origin, f"layer metadata {', '.join(wrong)} have the wrong type")


def _float_array(arrays: dict[str, np.ndarray], key: str, shape: tuple[int, ...], origin: str) -> torch.Tensor:
    value = arrays[key]
    if value.dtype.kind != "f" or value.shape != shape or not np.isfinite(value).all():
        raise FileFormatError(origin, f"{key} must be finite floats of shape {list(shape)}, got {value.dtype}{list(value.shape)}")
    return torch.from_numpy(np.ascontiguousarray(value))


def _added(arrays: dict[str, np.ndarray], base: BoundGaussians, n_faces: int, origin: str) -> BoundGaussians | None:
    """Gaussians a layer adds, checked against the base avatar's field shapes and triangle count."""
    if not any(k.startswith("added_") for k in arrays):
        return None
    missing = [f.name for f in fields(BoundGaussians) if f"added_{f.name}" not in arrays]
    if missing:
        raise FileFormatError(origin, f"added Gaussians are incomplete (no {', '.join(missing)})")
    n = arrays["added_binding"].shape[0] if arrays["added_binding"].ndim == 1 else -1
    values = {}
    for name in ("binding", "labels"):
        a = arrays[f"added_{name}"]
        if a.dtype.kind not in "iu" or a.shape != (n,) or (a.size and (a.min() < 0 or a.max() >= 2**31)):
            raise FileFormatError(origin, f"added {name} must be non-negative whole numbers, one per added Gaussian")
        values[name] = torch.from_numpy(a.astype(np.int64))
    if n and int(values["binding"].max()) >= n_faces:
        raise FileFormatError(origin, f"added Gaussians bound to triangles beyond the head's {n_faces}")
    for name in DELTA_FIELDS:
        values[name] = _float_array(arrays, f"added_{name}", (n, *getattr(base, name).shape[1:]), origin)
    return BoundGaussians(**values)


def layer_from_parts(meta: dict[str, Any], arrays: dict[str, np.ndarray], origin: str,
                     base: BoundGaussians, n_faces: int) -> EditLayer:
    """Rebuild a layer over the base Gaussians; FileFormatError naming origin when anything does not fit
    them (types, shapes, indices, triangles, non-finite values), so composing it can never fail."""
    _check_meta(meta, origin)
    n_base = base.count
    for key in ("indices", "hidden"):
        a = arrays.get(key)
        if a is None or a.ndim != 1 or a.dtype.kind not in "iu":
            raise FileFormatError(origin, f"{key} must be a 1-D integer array")
        if a.size and (a.min() < 0 or a.max() >= n_base):
            raise FileFormatError(origin, f"{key} refer to Gaussians outside 0..{n_base - 1} of the avatar")
    m = arrays["indices"].shape[0]
    names = [k[6:] for k in arrays if k.startswith("delta_")]
    unknown = [k for k in names if k not in DELTA_FIELDS]
    if unknown:
        raise FileFormatError(origin, f"deltas of unknown fields {sorted(unknown)}")
    deltas = {k: _float_array(arrays, f"delta_{k}", (m, *getattr(base, k).shape[1:]), origin) for k in names}
    expr, jaw = arrays.get("expr_offset"), arrays.get("jaw_offset")
    if expr is not None and (expr.ndim != 1 or expr.dtype.kind != "f" or not np.isfinite(expr).all()):
        raise FileFormatError(origin, "expr_offset must be a 1-D array of finite floats")
    if jaw is not None and (jaw.shape != (3,) or jaw.dtype.kind != "f" or not np.isfinite(jaw).all()):
        raise FileFormatError(origin, "jaw_offset must hold 3 finite floats (an axis-angle)")
    return EditLayer(
        name=str(meta.get("name") or "layer"), kind=str(meta["kind"]),
        indices=torch.from_numpy(arrays["indices"].astype(np.int64)), deltas=deltas,
        hidden=torch.from_numpy(arrays["hidden"].astype(np.int64)), added=_added(arrays, base, n_faces, origin),
        expr_offset=None if expr is None else torch.from_numpy(np.ascontiguousarray(expr)),
        jaw_offset=None if jaw is None else torch.from_numpy(np.ascontiguousarray(jaw, dtype=np.float32)),
        enabled=bool(meta.get("enabled", True)), info=dict(meta.get("info") or {}),
        id=str(meta.get("id") or uuid.uuid4().hex[:12]),
    )


def selection_arrays(selections: dict[str, torch.Tensor]) -> tuple[list[str], dict[str, np.ndarray]]:
    """(names in order, arrays keyed sel_0, sel_1, …): names may hold any characters."""
    names = list(selections)
    arrays = {}
    for i, name in enumerate(names):
        value = selections[name].detach().cpu().numpy()
        if value.ndim != 1 or value.dtype.name not in SELECTION_DTYPES:
            raise ValueError(f"selection {name!r} must be a 1-D bool or float array, got {value.dtype}{list(value.shape)}")
        arrays[f"sel_{i}"] = value
    return names, arrays


def selections_from_parts(names: list[Any], arrays: dict[str, np.ndarray], origin: str) -> dict[str, torch.Tensor]:
    """Named selections back from their npz; FileFormatError naming origin when one is missing or malformed."""
    out: dict[str, torch.Tensor] = {}
    for i, name in enumerate(names):
        value = arrays.get(f"sel_{i}")
        if value is None:
            raise FileFormatError(origin, f"selection {name!r} is missing (sel_{i})")
        if value.ndim != 1 or value.dtype.name not in SELECTION_DTYPES:
            raise FileFormatError(origin, f"selection {name!r} must be a 1-D bool or float array")
        out[str(name)] = torch.from_numpy(np.ascontiguousarray(value))
    return out
