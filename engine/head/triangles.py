"""The normal of mesh triangles, written once for every module that needs one (areas, vertex normals, facing tests)."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", torch.Tensor, np.ndarray)


def face_normals(tri: Array) -> Array:
    """(v1 − v0) × (v2 − v0) of triangles tri [..., 3 corners, 3] (a tensor or a numpy array) -> [..., 3]: not
    normalised (its length is twice the triangle's area), pointing out of a face whose corners run anticlockwise."""
    assert tri.shape[-2:] == (3, 3), f"tri must be [..., 3, 3], got {tuple(tri.shape)}"
    e1, e2 = tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :]
    if isinstance(tri, np.ndarray):
        return np.cross(e1, e2)
    return torch.linalg.cross(e1, e2, dim=-1)
