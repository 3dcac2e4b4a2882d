"""FLAME's static landmark embedding: 51 facial landmarks as barycentric points on mesh triangles.

flame_static_embedding.pkl (shipped with FLAME and required by smplx.FLAME) holds lmk_face_idx [51]
and lmk_b_coords [51, 3]; the embedded demo head ships one in the same layout. The 51 landmarks are
iBUG's 68 without the jaw contour: brows 0-9, nose 10-18, eyes 19-30, outer mouth 31-42, inner mouth
43-50. Both heads having them is what lets named expressions move from one head to the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from engine.head.flame_file import FlameFileError, read_restricted_pickle

EMBEDDING_FILE = "flame_static_embedding.pkl"
BROWS = slice(0, 10)  # brow landmarks (5 per side)


@dataclass(frozen=True)
class Landmarks:
    """Landmarks embedded in a mesh: each one a barycentric point of one triangle."""

    face_idx: np.ndarray  # [L] int64 triangle index
    bary: np.ndarray  # [L, 3] barycentric weights of the triangle's corners

    def points(self, verts: Tensor | np.ndarray, faces: Tensor | np.ndarray) -> np.ndarray:
        """[L, 3] landmark positions on a mesh verts [V, 3] with triangles faces [F, 3]."""
        v = verts.detach().cpu().numpy() if isinstance(verts, Tensor) else np.asarray(verts)
        f = faces.detach().cpu().numpy() if isinstance(faces, Tensor) else np.asarray(faces)
        assert v.ndim == 2 and v.shape[1] == 3, f"verts must be [V, 3], got {v.shape}"
        corners = v[f[self.face_idx]]  # [L, 3 corners, 3]
        return np.einsum("lc,lcx->lx", self.bary, corners)


def read_landmark_embedding(path: str | os.PathLike, n_faces: int | None = None) -> Landmarks:
    """flame_static_embedding.pkl -> Landmarks; raises FlameFileError naming the file and the problem."""
    p = Path(path)
    if not p.is_file():
        raise FlameFileError(f"{p}: landmark embedding not found")
    raw = read_restricted_pickle(p, "FLAME landmark embedding")
    if not isinstance(raw, dict) or "lmk_face_idx" not in raw or "lmk_b_coords" not in raw:
        raise FlameFileError(f"{p}: expected a dictionary with lmk_face_idx and lmk_b_coords")
    face_idx = np.asarray(raw["lmk_face_idx"]).reshape(-1).astype(np.int64)
    bary = np.asarray(raw["lmk_b_coords"], dtype=np.float64).reshape(-1, 3)
    if len(face_idx) != len(bary):
        raise FlameFileError(f"{p}: {len(face_idx)} landmark triangles but {len(bary)} barycentric rows")
    if n_faces is not None and face_idx.size and (face_idx.min() < 0 or face_idx.max() >= n_faces):
        raise FlameFileError(f"{p}: landmark on triangle {int(face_idx.max())}, the model has {n_faces} triangles")
    return Landmarks(face_idx, bary)


def find_beside(model_file: str | os.PathLike, names: tuple[str, ...]) -> Path | None:
    """The first of `names` found next to a model file (or inside it, when it is a folder), or None."""
    p = Path(model_file)
    folder = p if p.is_dir() else p.parent
    for name in names:
        for candidate in (folder / name, folder / Path(name).stem / name):
            if candidate.is_file():
                return candidate
    return None

