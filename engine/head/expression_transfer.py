"""Named expressions on a new FLAME-format head, derived from another head's definitions.

The demo head defines "smile", "blink_left", ... as blendshapes. A user's FLAME model only has PCA
expression coefficients, so each name is re-expressed in them:

1. Both heads carry the same 51 landmarks (engine.head.landmarks). A similarity transform plus a
   thin-plate-spline warp through them carries every target vertex next to the source surface.
2. Each target vertex takes its source displacement from the nearest source vertices of the same
   component (lips from lips, lids from skin, eyeballs from eyeballs), so a lip never reads the
   displacement of the chin just below it; components missing on the source fall back to all
   vertices.
3. The displacement field, brought back into the target's frame (the inverse similarity), is fitted
   by the target's expression directions in least squares with a small ridge term. The relative
   residual per name says how well the target's expression space holds that motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy import ndarray
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    from engine.head.model import HeadModel

NEIGHBOURS = 4  # source vertices averaged per target vertex (inverse distance weights)
RIDGE = 1e-3  # ridge weight relative to the mean diagonal of the normal equations
WARP_REACH = 0.05  # metres (in the source frame): the landmark warp fades out beyond this from the landmarks
MIN_COMPONENT_VERTS = 8  # a component needs this many source vertices to be matched within


@dataclass(frozen=True)
class NamedExpressions:
    """Named expressions as coefficient vectors of a target head."""

    names: tuple[str, ...]  # expression names, in the source head's order
    directions: ndarray  # [K, E] target expression coefficients of one unit of each name
    residual: dict[str, float]  # name -> ||fit − wanted|| / ||wanted|| over the target's vertices


def similarity(src: ndarray, dst: ndarray) -> tuple[float, ndarray, ndarray]:
    """(s, R, t) minimising Σ‖s·R·src_i + t − dst_i‖² (Umeyama); src, dst [L, 3]."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / (a * a).sum(1).mean())
    return scale, rot, mu_d - scale * rot @ mu_s


def vertex_labels(faces: ndarray, face_labels: ndarray, n_verts: int) -> ndarray:
    """[V] majority label of each vertex's triangles (-1 for a vertex on no triangle)."""
    n_labels = int(face_labels.max()) + 1 if face_labels.size else 1
    counts = np.zeros((n_verts, n_labels), dtype=np.int64)
    np.add.at(counts, (faces.reshape(-1), np.repeat(face_labels, 3)), 1)
    return np.where(counts.sum(1) > 0, counts.argmax(1), -1)


def _carry(target: ndarray, t_lmk: ndarray, s_lmk: ndarray) -> tuple[ndarray, float, ndarray]:
    """Target points [V, 3] carried into the source frame (similarity + faded landmark warp), the
    similarity's scale and rotation."""
    scale, rot, shift = similarity(t_lmk, s_lmk)
    moved = scale * target @ rot.T + shift
    lmk = scale * t_lmk @ rot.T + shift
    warp = RBFInterpolator(lmk, s_lmk - lmk, kernel="thin_plate_spline", smoothing=1e-8)
    fade = np.exp(-(cKDTree(lmk).query(moved)[0] / WARP_REACH) ** 2)
    return moved + fade[:, None] * warp(moved), scale, rot


def _matches(points: ndarray, t_labels: ndarray, source: ndarray, s_labels: ndarray) -> tuple[ndarray, ndarray]:
    """(indices [V, k], weights [V, k]) of the source vertices each carried target point reads from."""
    idx = np.zeros((len(points), NEIGHBOURS), dtype=np.int64)
    dist = np.zeros((len(points), NEIGHBOURS))
    everything = np.arange(len(source))
    for label in np.unique(t_labels):
        rows = np.flatnonzero(t_labels == label)
        pool = np.flatnonzero(s_labels == label) if label >= 0 else everything
        if len(pool) < MIN_COMPONENT_VERTS:
            pool = everything
        d, j = cKDTree(source[pool]).query(points[rows], k=NEIGHBOURS)
        idx[rows], dist[rows] = pool[j], d
    w = 1.0 / np.maximum(dist, 1e-6)
    return idx, w / w.sum(1, keepdims=True)


def derive_named_expressions(source: HeadModel, target: HeadModel, names: tuple[str, ...] | None = None) -> NamedExpressions:
    """The source head's named expressions as the target head's expression coefficients.

    Both heads need landmarks (HeadModel.landmarks) in the same 51-point layout. Raises ValueError
    when they are missing or disagree.
    """
    if source.landmarks is None or target.landmarks is None:
        raise ValueError("named expressions are carried between heads through their landmark embeddings; "
                         f"{'source' if source.landmarks is None else 'target'} head has none")
    if len(source.landmarks.face_idx) != len(target.landmarks.face_idx):
        raise ValueError(f"landmark counts differ: {len(source.landmarks.face_idx)} on {source.name!r}, "
                         f"{len(target.landmarks.face_idx)} on {target.name!r}")
    np_ = lambda t: t.detach().cpu().numpy().astype(np.float64)
    s_rest, s_faces, t_rest, t_faces = np_(source.v_template), np_(source.faces).astype(np.int64), \
        np_(target.v_template), np_(target.faces).astype(np.int64)
    s_lmk = source.landmarks.points(s_rest, s_faces)
    t_lmk = target.landmarks.points(t_rest, t_faces)
    carried, scale, rot = _carry(t_rest, t_lmk, s_lmk)
    s_labels = vertex_labels(s_faces, np_(source.face_labels).astype(np.int64), len(s_rest))
    t_labels = vertex_labels(t_faces, np_(target.face_labels).astype(np.int64), len(t_rest))
    idx, w = _matches(carried, t_labels, s_rest, s_labels)
    basis = np_(target.exprdirs)  # [Vt, 3, Eu]
    a = basis.reshape(-1, basis.shape[2])
    gram = a.T @ a
    gram += RIDGE * max(float(np.trace(gram)) / max(len(gram), 1), 1e-12) * np.eye(len(gram))
    s_dirs, s_named = np_(source.exprdirs), np_(source.named_dirs)
    names = source.expression_names if names is None else names
    out = np.zeros((len(names), target.n_expr))
    residual: dict[str, float] = {}
    for k, name in enumerate(names):
        coeffs = s_named[source.expression_names.index(name), : s_dirs.shape[2]]
        moved = s_dirs @ coeffs  # [Vs, 3] source displacement of one unit
        wanted = np.einsum("vk,vkx->vx", w, moved[idx]) @ rot / scale  # back into the target's frame
        fit = np.linalg.solve(gram, a.T @ wanted.reshape(-1)) if len(gram) else np.zeros(0)
        out[k, : len(fit)] = fit
        norm = float(np.linalg.norm(wanted))
        residual[name] = float(np.linalg.norm(a @ fit - wanted.reshape(-1)) / norm) if norm > 0 else 0.0
    return NamedExpressions(tuple(names), out, residual)
