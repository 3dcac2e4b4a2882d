"""A selection of Gaussians: per-Gaussian float weights in [0, 1] and a threshold.

Grow and shrink work in Gaussian space: neighbours are the k nearest Gaussians in the avatar's rest
pose (3D kNN over the bound positions), so a selection grows along the surface it lives on. Files
are versioned npz written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from engine.io.atomic import FileFormatError, atomic_write
from engine.io.npz import read_npz

SELECTION_FORMAT = "dynamicavatars-selection"
SELECTION_VERSION = 1
SELECTION_FILE = "selection.npz"  # name of the selection saved inside an avatar folder


@dataclass(frozen=True)
class Selection:
    """Soft per-Gaussian selection; the selected set is weights >= threshold."""

    weights: Tensor  # [N] float in [0, 1]
    threshold: float = 0.5  # a Gaussian is selected when its weight reaches this

    def __post_init__(self) -> None:
        assert self.weights.ndim == 1, f"weights must be [N], got {tuple(self.weights.shape)}"
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")

    @staticmethod
    def empty(count: int) -> Selection:
        return Selection(torch.zeros(count))

    @property
    def count(self) -> int:
        return int(self.weights.shape[0])

    @property
    def mask(self) -> Tensor:
        """[N] bool: the selected Gaussians."""
        return self.weights >= max(self.threshold, 1e-6)

    @property
    def indices(self) -> Tensor:
        """[M] long indices of the selected Gaussians."""
        return torch.nonzero(self.mask).flatten()

    def with_threshold(self, threshold: float) -> Selection:
        return replace(self, threshold=float(threshold))

    def union(self, other: Tensor) -> Selection:
        """Weights max(self, other [N]) (a brush stroke or a ticked component)."""
        return replace(self, weights=torch.maximum(self.weights, other.to(self.weights)).clamp(0, 1))

    def subtract(self, other: Tensor) -> Selection:
        """Weights self·(1 − other [N]) (an eraser stroke or an unticked component)."""
        return replace(self, weights=(self.weights * (1 - other.to(self.weights))).clamp(0, 1))

    def inverted(self) -> Selection:
        return replace(self, weights=1.0 - self.weights)

    def grown(self, neighbours: Tensor, steps: int = 1) -> Selection:
        """Each step, a Gaussian takes the largest weight among itself and its neighbours [N, K]."""
        w = self.weights
        for _ in range(steps):
            w = torch.maximum(w, w[neighbours].max(dim=1).values)
        return replace(self, weights=w)

    def shrunk(self, neighbours: Tensor, steps: int = 1) -> Selection:
        """Each step, a Gaussian takes the smallest weight among itself and its neighbours [N, K]."""
        w = self.weights
        for _ in range(steps):
            w = torch.minimum(w, w[neighbours].min(dim=1).values)
        return replace(self, weights=w)


def knn_neighbours(points: Tensor, k: int = 8, chunk: int = 4096) -> Tensor:
    """[N, k] indices of the k nearest other points of points [N, 3] (brute force in chunks)."""
    assert points.ndim == 2 and points.shape[1] == 3, f"points must be [N, 3], got {tuple(points.shape)}"
    n = points.shape[0]
    k = min(k, max(1, n - 1))
    out = torch.empty(n, k, dtype=torch.long, device=points.device)
    p = points.float()
    for start in range(0, n, chunk):
        d = torch.cdist(p[start : start + chunk], p)
        d[torch.arange(d.shape[0]), torch.arange(start, start + d.shape[0])] = float("inf")
        out[start : start + chunk] = d.topk(k, dim=1, largest=False).indices
    return out


def save_selection(selection: Selection, path: str | os.PathLike, names: dict[str, Tensor] | None = None) -> Path:
    """Write a selection (and optional named extra [N] arrays, e.g. FCI labels) to an npz, atomically."""
    p = Path(path)
    arrays = {
        "format": np.array(SELECTION_FORMAT),
        "version": np.array(SELECTION_VERSION),
        "weights": selection.weights.detach().cpu().numpy().astype(np.float32),
        "threshold": np.array(selection.threshold, dtype=np.float32),
    }
    for key, value in (names or {}).items():
        arrays[f"extra_{key}"] = value.detach().cpu().numpy()
    with atomic_write(p, "wb") as fh:
        np.savez(fh, **arrays)
    return p


def load_selection(path: str | os.PathLike, count: int | None = None) -> Selection:
    """Read a selection npz; count (the avatar's Gaussian count) is checked when given."""
    return read_selection(path, count)[0]


def read_selection(path: str | os.PathLike, count: int | None = None) -> tuple[Selection, dict[str, np.ndarray]]:
    """(the selection, the named extra arrays save_selection wrote beside it) from one read of the npz;
    count (the avatar's Gaussian count) is checked when given."""
    p = Path(path)
    if not p.is_file():
        raise FileFormatError(p, "selection file not found")
    data = read_npz(p, lambda problem: FileFormatError(p, f"cannot read selection: {problem}"))
    fmt = data.get("format", np.array(""))
    if fmt.shape != () or str(fmt) != SELECTION_FORMAT:
        raise FileFormatError(p, f"not a selection file (format {str(fmt)[:40]!r})")
    scalars = {k: data.get(k) for k in ("version", "threshold")}
    version, threshold = scalars["version"], scalars["threshold"]
    if version is None or version.shape != () or version.dtype.kind not in "iu" or threshold is None \
            or threshold.shape != () or threshold.dtype.kind not in "iuf":
        raise FileFormatError(p, "version must be a whole number and threshold a number")
    if int(version) > SELECTION_VERSION:
        raise FileFormatError(p, f"selection format {int(version)} is newer than this program's")
    threshold = float(threshold)
    raw = data.get("weights")
    if raw is None or raw.ndim != 1 or raw.dtype.kind not in "biuf" or not 0.0 <= threshold <= 1.0:
        raise FileFormatError(p, "weights must be a 1-D array of numbers and threshold in [0, 1]")
    weights = torch.from_numpy(raw.astype(np.float32))
    extras = {k.removeprefix("extra_"): v for k, v in data.items() if k.startswith("extra_")}
    if not bool(((weights >= 0) & (weights <= 1)).all()):
        raise FileFormatError(p, "weights must be a 1-D array of values in [0, 1]")
    if count is not None and weights.shape[0] != count:
        raise FileFormatError(p, f"selection has {weights.shape[0]} Gaussians, the avatar has {count}")
    return Selection(weights, threshold), extras
