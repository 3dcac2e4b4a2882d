"""Meshing for the demo head sculpt: lens-warped marching cubes, relaxation, eyeball spheres.

The signed distance is sampled on a uniform grid in a warped space u whose map x = lens(u)
magnifies the face, so marching cubes gives smaller triangles around the eyes, nose and mouth
and larger ones on the cranium and neck. Vertices are then relaxed along the surface and
projected back onto the zero set of the signed distance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from numpy import ndarray
from skimage.measure import marching_cubes

from engine.head.sculpt.sdf import gradient
from engine.head.triangles import face_normals

Sdf = Callable[[ndarray], ndarray]

LENS_CENTRE = np.array([0.0, 0.0050, 0.0850])  # centre of the magnified region (face front)
LENS_RADIUS = 0.0600  # Gaussian radius of the magnification
LENS_SCALE = 0.50  # size of a cell at the lens centre relative to the base step
BOX_LO = np.array([-0.1050, -0.2150, -0.1350])  # corner of the meshed box (metres)
BOX_HI = np.array([0.1050, 0.1500, 0.1400])  # opposite corner


def lens(u: ndarray) -> ndarray:
    """Map warped points u [N, 3] to world points [N, 3] (radially monotone, identity far away)."""
    q = u - LENS_CENTRE
    r2 = np.sum(q * q, axis=1, keepdims=True) / LENS_RADIUS**2
    return LENS_CENTRE + q * (1.0 - (1.0 - LENS_SCALE) * np.exp(-r2))


def mesh_sdf(sdf: Sdf, step: float) -> tuple[ndarray, ndarray]:
    """Marching cubes of `sdf` on the lens grid; returns vertices [V, 3] and outward faces [F, 3]."""
    pad = 0.016
    lo, hi = BOX_LO - pad, BOX_HI + pad
    axes = [np.arange(lo[i], hi[i] + step, step) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    values = np.empty(len(grid))
    chunk = 200_000
    for start in range(0, len(grid), chunk):
        values[start : start + chunk] = sdf(lens(grid[start : start + chunk]))
    volume = values.reshape(len(axes[0]), len(axes[1]), len(axes[2]))
    volume[0, :, :] = volume[-1, :, :] = volume[:, 0, :] = volume[:, -1, :] = 1.0
    volume[:, :, 0] = volume[:, :, -1] = 1.0
    verts, faces, _, _ = marching_cubes(volume, level=0.0, spacing=(step, step, step))
    verts = lens(verts + lo)
    faces = faces.astype(np.int64)
    if signed_volume(verts, faces) < 0:
        faces = faces[:, [0, 2, 1]]
    return verts, faces


def signed_volume(verts: ndarray, faces: ndarray) -> float:
    """Signed volume enclosed by a triangle mesh (positive when faces point outward)."""
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(np.sum(np.einsum("ij,ij->i", a, np.cross(b, c))) / 6.0)


def adjacency(faces: ndarray, n_verts: int) -> sp.csr_matrix:
    """Symmetric 0/1 vertex adjacency matrix [V, V] of a triangle mesh."""
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    a = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n_verts, n_verts)).tocsr()
    a.data[:] = 1.0
    return a


def vertex_normals(verts: ndarray, faces: ndarray) -> ndarray:
    """Area-weighted unit vertex normals [V, 3]."""
    fn = face_normals(verts[faces])
    n = np.zeros_like(verts)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)


def project(sdf: Sdf, verts: ndarray, steps: int = 3) -> ndarray:
    """Newton steps moving points onto the zero set of `sdf`."""
    v = verts.copy()
    for _ in range(steps):
        d = sdf(v)
        g = gradient(sdf, v)
        v -= (d / np.maximum(np.sum(g * g, axis=1), 1e-12))[:, None] * g
    return v


def relax(sdf: Sdf, verts: ndarray, faces: ndarray, iterations: int = 8, rate: float = 0.5) -> ndarray:
    """Tangential Laplacian relaxation with re-projection onto the surface."""
    a = adjacency(faces, len(verts))
    degree = np.asarray(a.sum(axis=1)).ravel()
    v = verts.copy()
    for _ in range(iterations):
        delta = (a @ v) / degree[:, None] - v
        n = vertex_normals(v, faces)
        delta -= np.sum(delta * n, axis=1, keepdims=True) * n
        v = project(sdf, v + rate * delta, steps=2)
    return v


def icosphere(level: int) -> tuple[ndarray, ndarray]:
    """Unit icosphere subdivided `level` times: vertices [V, 3], outward faces [F, 3]."""
    t = (1.0 + 5.0**0.5) / 2.0
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
         [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
         [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11],
         [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    verts = [np.array(p, dtype=np.float64) / np.linalg.norm(p) for p in v]
    faces = f
    for _ in range(level):
        cache: dict[tuple[int, int], int] = {}

        def mid(i: int, j: int) -> int:
            key = (min(i, j), max(i, j))
            if key not in cache:
                m = verts[i] + verts[j]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = new
    return np.array(verts), np.array(faces, dtype=np.int64)


def eyeball(centre: ndarray, radius: float, level: int = 3) -> tuple[ndarray, ndarray]:
    """An eyeball looking toward +z with a slight corneal bulge: vertices [V, 3], faces [F, 3]."""
    v, f = icosphere(level)
    cos_angle = v[:, 2]
    bulge = 0.09 * np.clip((cos_angle - 0.80) / 0.20, 0.0, 1.0) ** 1.5
    return centre + v * radius * (1.0 + bulge)[:, None], f


def boundary_edges(faces: ndarray) -> ndarray:
    """Edges [B, 2] used by exactly one face (a closed mesh has none)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    return uniq[counts == 1]


def nonmanifold_edges(faces: ndarray) -> ndarray:
    """Edges [B, 2] shared by more than two faces."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, counts = np.unique(edges, axis=0, return_counts=True)
    return uniq[counts > 2]
