"""FLAME's topology facts and the teeth GaussianAvatars and VHAP add to it.

A FLAME model file has 5023 vertices and 9976 triangles. GaussianAvatars (flame_model/flame.py,
`add_teeth`) and VHAP (vhap/model/flame.py) append 120 teeth vertices and 168 triangles, so their
avatars bind Gaussians to triangles 0..10,143 and their datasets hold static offsets for 5143
vertices. The construction here follows theirs fact for fact, so vertex and triangle indices line up:

- Eight rows of 15 vertices, one per column of FLAME's outer lip rings (LIP_OUTER_UPPER /
  LIP_OUTER_LOWER, from one mouth corner to the other), in this order: upper root, lower root,
  upper edge, lower edge, upper root back, upper edge back, lower root back, lower edge back.
- With d = the mean distance between the two rings: the row middle is the rings' midpoint at their
  mean height, moved 1.5·d back; edges sit 0.1·d above / below it (the lower edge also 0.4·d further
  back), roots 2·d beyond the edges, and the back rows d behind the front ones.
- Upper teeth move with the neck joint (weight 1 on joint 1), lower teeth with the jaw (joint 2);
  their identity (shape) directions are the mean of the two rings' directions; expression and pose
  directions and J_regressor columns are zero.
- Triangles: three strips of 28 per jaw (front face, back face, biting edge), upper jaw first;
  in each strip the quads' diagonals flip at the middle column (TEETH_FACE_STRIPS).
"""

from __future__ import annotations

import numpy as np
from numpy import ndarray

from engine.head.components import LABEL

FLAME_VERTS = 5023  # vertices of a FLAME model file
FLAME_FACES = 9976  # triangles of a FLAME model file
TEETH_VERTS = 120  # vertices GaussianAvatars / VHAP add
TEETH_FACES = 168  # triangles they add
TEETH_JOINTS = (1, 2)  # joints the upper / lower teeth follow (FLAME: 0 global, 1 neck, 2 jaw, 3-4 eyes)

LIP_OUTER_UPPER: tuple[int, ...] = (1713, 1715, 1716, 1735, 1696, 1694, 1657, 3543, 2774, 2811, 2813, 2850, 2833, 2832, 2830)
LIP_OUTER_LOWER: tuple[int, ...] = (1576, 1577, 1773, 1774, 1795, 1802, 1865, 3503, 2948, 2905, 2898, 2881, 2880, 2713, 2712)
LIP_INNER_UPPER: tuple[int, ...] = (1595, 1746, 1747, 1742, 1739, 1665, 1666, 3514, 2783, 2782, 2854, 2857, 2862, 2861, 2731)
LIP_INNER_LOWER: tuple[int, ...] = (1572, 1573, 1860, 1862, 1830, 1835, 1852, 3497, 2941, 2933, 2930, 2945, 2943, 2709, 2708)
"""FLAME's lip rings (GaussianAvatars' FlameMask), one vertex per column from one corner to the other."""

COLUMNS = 15  # vertices per teeth row (one per lip-ring column)
ROWS: tuple[str, ...] = (
    "upper_root", "lower_root", "upper_edge", "lower_edge",
    "upper_root_back", "upper_edge_back", "lower_root_back", "lower_edge_back",
)
"""Teeth rows in vertex order: row r holds teeth vertices r·15 .. r·15 + 14."""

UPPER_ROWS = ("upper_root", "upper_edge", "upper_root_back", "upper_edge_back")
LOWER_ROWS = ("lower_root", "lower_edge", "lower_root_back", "lower_edge_back")

# A strip joins row P to row Q with two triangles per column i (P_i, P_i+1, Q_i, Q_i+1). "a" splits
# the quad along P_i–Q_i+1 on the first half of the mouth and along P_i+1–Q_i on the second half.
_HALF_A = (("p0", "q1", "q0"), ("p0", "p1", "q1"))
_HALF_B = (("p0", "p1", "q0"), ("p1", "q1", "q0"))
TEETH_FACE_STRIPS: tuple[tuple[str, str, str, bool], ...] = (
    ("upper_root", "upper_edge", "ab", False),  # upper front
    ("upper_root_back", "upper_edge_back", "ab", True),  # upper back (wound the other way)
    ("upper_edge_back", "upper_edge", "ba", True),  # upper biting edge
    ("lower_edge", "lower_root", "ba", False),  # lower front
    ("lower_root_back", "lower_edge_back", "ab", False),  # lower back
    ("lower_edge_back", "lower_edge", "ba", False),  # lower biting edge
)
"""(row P, row Q, halves: first-half pattern then second-half pattern, reversed winding), in face order."""


def is_flame_topology(n_verts: int, n_faces: int) -> bool:
    """True for FLAME's own mesh (5023 vertices, 9976 triangles)."""
    return (n_verts, n_faces) == (FLAME_VERTS, FLAME_FACES)


def has_teeth_topology(n_verts: int, n_faces: int) -> bool:
    """True for FLAME with GaussianAvatars' teeth (5143 vertices, 10,144 triangles)."""
    return (n_verts, n_faces) == (FLAME_VERTS + TEETH_VERTS, FLAME_FACES + TEETH_FACES)


def row_indices(name: str) -> ndarray:
    """[15] teeth-local vertex indices (0..119) of one row."""
    start = ROWS.index(name) * COLUMNS
    return np.arange(start, start + COLUMNS)


def teeth_faces() -> ndarray:
    """[168, 3] int64 triangles over teeth-local vertex indices 0..119, in GaussianAvatars' order."""
    halves = {"a": _HALF_A, "b": _HALF_B}
    out: list[tuple[int, int, int]] = []
    for p_row, q_row, pattern, reverse in TEETH_FACE_STRIPS:
        p, q = row_indices(p_row), row_indices(q_row)
        for i in range(COLUMNS - 1):
            corner = {"p0": p[i], "p1": p[i + 1], "q0": q[i], "q1": q[i + 1]}
            for tri in halves[pattern[0] if i < COLUMNS // 2 else pattern[1]]:
                a, b, c = (int(corner[k]) for k in tri)
                out.append((a, c, b) if reverse else (a, b, c))
    return np.asarray(out, dtype=np.int64)


def teeth_vertices(v_template: ndarray) -> ndarray:
    """[120, 3] rest positions of the teeth for a FLAME template [5023(+), 3] (FLAME axes: y up, z forward)."""
    upper = v_template[list(LIP_OUTER_UPPER)].astype(np.float64)
    lower = v_template[list(LIP_OUTER_LOWER)].astype(np.float64)
    d = float(np.linalg.norm(upper - lower, axis=1).mean())
    middle = (upper + lower) / 2
    middle[:, 1] = middle[:, 1].mean()
    middle[:, 2] -= 1.5 * d
    up, back = np.array([0.0, d, 0.0]), np.array([0.0, 0.0, d])
    rows = {"upper_edge": middle + 0.1 * up, "lower_edge": middle - 0.1 * up - 0.4 * back}
    rows["upper_root"] = rows["upper_edge"] + 2 * up
    rows["lower_root"] = rows["lower_edge"] - 2 * up
    for jaw in ("upper", "lower"):
        for part in ("root", "edge"):
            rows[f"{jaw}_{part}_back"] = rows[f"{jaw}_{part}"] - back
    return np.concatenate([rows[name] for name in ROWS])


def add_teeth(arrays: dict[str, ndarray], shape_columns: int) -> dict[str, ndarray]:
    """FLAME-format arrays of a 5023-vertex model with the 120 teeth vertices and 168 triangles added.

    shape_columns: how many leading shapedirs columns are identity (shape) directions; teeth take the
    lip rings' mean there and zero in the expression columns after them. face_labels, when present,
    labels the new triangles mouth_interior. Other keys are passed through.
    """
    v = np.asarray(arrays["v_template"])
    f = np.asarray(arrays["f"])
    if not is_flame_topology(len(v), len(f)):
        raise ValueError(f"teeth are added to FLAME's {FLAME_VERTS}-vertex, {FLAME_FACES}-triangle mesh; "
                         f"this model has {len(v)} vertices and {len(f)} triangles")
    n = TEETH_VERTS
    out = dict(arrays)
    out["v_template"] = np.concatenate([v, teeth_vertices(v).astype(v.dtype)])
    out["f"] = np.concatenate([f, teeth_faces().astype(f.dtype) + FLAME_VERTS])
    shapedirs = np.asarray(arrays["shapedirs"])
    ring_mean = (shapedirs[list(LIP_OUTER_UPPER)] + shapedirs[list(LIP_OUTER_LOWER)]) / 2  # [15, 3, C]
    teeth_dirs = np.zeros((n,) + shapedirs.shape[1:], dtype=shapedirs.dtype)
    teeth_dirs[:, :, :shape_columns] = np.tile(ring_mean[:, :, :shape_columns], (len(ROWS), 1, 1))
    out["shapedirs"] = np.concatenate([shapedirs, teeth_dirs])
    posedirs = np.asarray(arrays["posedirs"])
    out["posedirs"] = np.concatenate([posedirs, np.zeros((n,) + posedirs.shape[1:], dtype=posedirs.dtype)])
    j_reg = np.asarray(arrays["J_regressor"])
    out["J_regressor"] = np.concatenate([j_reg, np.zeros((j_reg.shape[0], n), dtype=j_reg.dtype)], axis=1)
    weights = np.asarray(arrays["weights"])
    teeth_weights = np.zeros((n, weights.shape[1]), dtype=weights.dtype)
    for rows, joint in ((UPPER_ROWS, TEETH_JOINTS[0]), (LOWER_ROWS, TEETH_JOINTS[1])):
        teeth_weights[np.concatenate([row_indices(r) for r in rows]), joint] = 1.0
    out["weights"] = np.concatenate([weights, teeth_weights])
    if "face_labels" in arrays:
        labels = np.asarray(arrays["face_labels"])
        out["face_labels"] = np.concatenate([labels, np.full(TEETH_FACES, LABEL["mouth_interior"], dtype=labels.dtype)])
    return out
