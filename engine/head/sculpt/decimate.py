"""Edge-collapse decimation for the demo head (pure Python, deterministic).

Collapses the edge that is shortest relative to a sizing field, one at a time, into its
midpoint, while keeping the mesh a closed 2-manifold (link condition) and rejecting collapses
that flip or crush a neighbouring triangle. The caller projects the result back onto its
signed distance afterwards, so midpoint placement is enough.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np
from numpy import ndarray

Sizing = Callable[[ndarray], ndarray]  # points [N, 3] -> wanted edge length scale [N]


def _tri_normal(p0: ndarray, p1: ndarray, p2: ndarray) -> ndarray:
    return np.cross(p1 - p0, p2 - p0)


def _quality(p0: ndarray, p1: ndarray, p2: ndarray) -> float:
    """4·sqrt(3)·area / sum of squared edges: 1 for equilateral, 0 for degenerate."""
    area2 = float(np.linalg.norm(_tri_normal(p0, p1, p2)))
    s = float(np.sum((p1 - p0) ** 2) + np.sum((p2 - p1) ** 2) + np.sum((p0 - p2) ** 2))
    return 2.0 * 3.0**0.5 * area2 / max(s, 1e-30)


class _Mesh:
    """Mutable face/vertex incidence used during decimation."""

    def __init__(self, verts: ndarray, faces: ndarray) -> None:
        self.v = verts.copy()
        self.f = faces.copy()
        self.face_alive = np.ones(len(faces), dtype=bool)
        self.vert_alive = np.ones(len(verts), dtype=bool)
        self.vf: list[set[int]] = [set() for _ in range(len(verts))]
        for i, (a, b, c) in enumerate(faces.tolist()):
            self.vf[a].add(i)
            self.vf[b].add(i)
            self.vf[c].add(i)

    def neighbours(self, a: int) -> set[int]:
        out: set[int] = set()
        for fi in self.vf[a]:
            out.update(self.f[fi].tolist())
        out.discard(a)
        return out

    def can_collapse(self, a: int, b: int, p: ndarray, min_quality: float) -> bool:
        shared = self.vf[a] & self.vf[b]
        if len(shared) != 2:
            return False
        opposite = {int(x) for fi in shared for x in self.f[fi] if x != a and x != b}
        if self.neighbours(a) & self.neighbours(b) != opposite:
            return False  # link condition: the collapse would pinch the surface
        for v_old in (a, b):
            for fi in self.vf[v_old] - shared:
                tri = self.f[fi]
                old = [self.v[x] for x in tri]
                new = [p if x in (a, b) else self.v[x] for x in tri]
                n0, n1 = _tri_normal(*old), _tri_normal(*new)
                if float(n0 @ n1) <= 0.3 * float(np.linalg.norm(n0) * np.linalg.norm(n1)):
                    return False
                if _quality(*new) < min_quality and _quality(*new) < _quality(*old):
                    return False
        return True

    def collapse(self, a: int, b: int, p: ndarray) -> None:
        shared = self.vf[a] & self.vf[b]
        for fi in shared:
            self.face_alive[fi] = False
            for x in self.f[fi].tolist():
                self.vf[x].discard(fi)
        for fi in self.vf[b]:
            row = self.f[fi]
            row[row == b] = a
            self.vf[a].add(fi)
        self.vf[b] = set()
        self.vert_alive[b] = False
        self.v[a] = p


def decimate(verts: ndarray, faces: ndarray, target_verts: int, sizing: Sizing,
             min_quality: float = 0.15) -> tuple[ndarray, ndarray]:
    """Collapse edges until `target_verts` remain; returns compacted vertices [V', 3], faces [F', 3]."""
    mesh = _Mesh(verts, faces)
    size = sizing(verts)
    edges = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1), axis=0)
    cost = np.linalg.norm(verts[edges[:, 0]] - verts[edges[:, 1]], axis=1) / (0.5 * (size[edges[:, 0]] + size[edges[:, 1]]))
    heap = [(float(c), int(a), int(b)) for c, (a, b) in zip(cost, edges.tolist())]
    heapq.heapify(heap)
    alive = len(verts)

    def edge_cost(a: int, b: int) -> float:
        return float(np.linalg.norm(mesh.v[a] - mesh.v[b]) / (0.5 * (size[a] + size[b])))

    while heap and alive > target_verts:
        c, a, b = heapq.heappop(heap)
        if not (mesh.vert_alive[a] and mesh.vert_alive[b]) or not (mesh.vf[a] & mesh.vf[b]):
            continue
        now = edge_cost(a, b)
        if abs(now - c) > 1e-12:
            heapq.heappush(heap, (now, a, b))
            continue
        p = 0.5 * (mesh.v[a] + mesh.v[b])
        if not mesh.can_collapse(a, b, p, min_quality):
            continue
        mesh.collapse(a, b, p)
        size[a] = 0.5 * (size[a] + size[b])
        alive -= 1
        for n in sorted(mesh.neighbours(a)):
            lo, hi = min(a, n), max(a, n)
            heapq.heappush(heap, (edge_cost(lo, hi), lo, hi))
    f = mesh.f[mesh.face_alive]
    used = np.flatnonzero(mesh.vert_alive)
    remap = np.full(len(verts), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return mesh.v[used], remap[f]
