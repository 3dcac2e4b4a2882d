"""Edit layers and selections as npz arrays + JSON metadata (the project file's layers/ and selections).

A layer's arrays (indices, hidden, delta_<field>, expr_offset, added_<field>) go in one npz with their
dtypes kept, so a round trip is bit-exact; its name, kind, enabled flag, info and id go in JSON.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from engine.avatar.gaussians import BoundGaussians
from engine.edit.layers import DELTA_FIELDS, LAYER_KINDS, EditLayer
from engine.io.atomic import FileFormatError

SELECTION_DTYPES: tuple[str, ...] = ("bool", "float32", "float64", "float16")
"""Element types a selection (per-Gaussian mask) may have."""


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz of arrays, in memory."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def read_npz(data: bytes, origin: str) -> dict[str, np.ndarray]:
    """Arrays of an in-memory .npz (no pickles); FileFormatError naming origin when unreadable."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FileFormatError(origin, f"not a readable .npz ({exc})") from None


def layer_arrays(layer: EditLayer) -> dict[str, np.ndarray]:
    """The tensors of a layer as named numpy arrays (dtypes kept)."""
    np_ = lambda t: t.detach().cpu().numpy()
    out = {"indices": np_(layer.indices), "hidden": np_(layer.hidden)}
    out.update({f"delta_{k}": np_(v) for k, v in layer.deltas.items()})
    if layer.expr_offset is not None:
        out["expr_offset"] = np_(layer.expr_offset)
    if layer.added is not None:
        out.update({f"added_{f.name}": np_(getattr(layer.added, f.name)) for f in fields(BoundGaussians)})
    return out


def layer_meta(layer: EditLayer, file: str) -> dict[str, Any]:
    """JSON metadata of a layer whose arrays live in `file`."""
    return {"id": layer.id, "name": layer.name, "kind": layer.kind, "enabled": layer.enabled,
            "info": layer.info, "file": file}


def layer_from_parts(meta: dict[str, Any], arrays: dict[str, np.ndarray], origin: str,
                     n_base: int, n_faces: int) -> EditLayer:
    """Rebuild a layer; FileFormatError naming origin when something does not fit the avatar."""
    if meta.get("kind") not in LAYER_KINDS:
        raise FileFormatError(origin, f"unknown layer kind {meta.get('kind')!r}")
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    for key in ("indices", "hidden"):
        a = arrays.get(key)
        if a is None or a.ndim != 1 or a.dtype.kind not in "iu":
            raise FileFormatError(origin, f"{key} must be a 1-D integer array")
        if a.size and (a.min() < 0 or a.max() >= n_base):
            raise FileFormatError(origin, f"{key} refer to Gaussians outside 0..{n_base - 1} of the avatar")
    deltas = {k[6:]: t(v) for k, v in arrays.items() if k.startswith("delta_")}
    unknown = [k for k in deltas if k not in DELTA_FIELDS]
    if unknown or any(v.shape[0] != arrays["indices"].shape[0] for v in deltas.values()):
        raise FileFormatError(origin, f"deltas do not match the layer's indices (fields {sorted(deltas)})")
    added = None
    if any(k.startswith("added_") for k in arrays):
        try:
            added = BoundGaussians(**{f.name: t(arrays[f"added_{f.name}"]) for f in fields(BoundGaussians)})
        except (KeyError, AssertionError) as exc:
            raise FileFormatError(origin, f"added Gaussians are incomplete or malformed ({exc})") from None
        if added.count and int(added.binding.max()) >= n_faces:
            raise FileFormatError(origin, f"added Gaussians bound to triangles beyond the head's {n_faces}")
    expr = arrays.get("expr_offset")
    return EditLayer(
        name=str(meta.get("name", "layer")), kind=str(meta["kind"]), indices=t(arrays["indices"]),
        deltas=deltas, hidden=t(arrays["hidden"]), added=added, expr_offset=None if expr is None else t(expr),
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
