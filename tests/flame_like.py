"""A FLAME-format head with FLAME's counts, for tests (no licensed FLAME model can be here).

Built deterministically from the demo head: its skin is decimated so that skin plus eyeballs make
FLAME's 5023 vertices, triangles at the bottom of the neck are dropped to leave FLAME's 9976, the
geometry is bent into another head shape, and the vertices are renumbered so that FLAME's real lip
rings (engine.head.teeth) sit on this head's lips, column by column, at FLAME's indices. Its
expression directions are 100 random mixtures of the demo's named blendshapes (carried onto it) and
smooth distractor fields, so no coefficient is a named expression by itself. The folder holds the
three files a FLAME download has: generic_model.pkl, FLAME_masks.pkl (made from the demo's labels)
and flame_static_embedding.pkl (the demo's 51 landmarks, re-embedded).
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from engine.head.components import LABEL
from engine.head.sculpt.decimate import decimate
from engine.head.flame_file import read_flame_arrays
from engine.head.model import DEMO_HEAD_DIR, load_head
from engine.head.teeth import FLAME_FACES, FLAME_VERTS, LIP_INNER_LOWER, LIP_INNER_UPPER, LIP_OUTER_LOWER, LIP_OUTER_UPPER

N_EXPR = 100
STRETCH = np.array([1.06, 0.95, 1.0])  # the new head is wider and shorter than the demo head
SHIFT = np.array([0.003, -0.012, 0.006])


def bend(p: np.ndarray) -> np.ndarray:
    """The demo head's points [N, 3] moved onto the new head's shape."""
    q = p * STRETCH + SHIFT
    q[:, 2] += 0.35 * p[:, 0] ** 2  # the face curves back more at the sides
    return q


def carry(p: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Displacements d [N, 3] at demo points p [N, 3] carried onto the new head (bend's Jacobian)."""
    out = d * STRETCH
    out[:, 2] += 0.7 * p[:, 0] * d[:, 0]
    return out


@dataclass(frozen=True)
class FlameLike:
    """The arrays of the FLAME-like head and how they relate to the demo head."""

    model: dict[str, np.ndarray]  # generic_model.pkl contents (FLAME keys)
    masks: dict[str, np.ndarray]  # FLAME_masks.pkl contents
    embedding: dict[str, np.ndarray]  # flame_static_embedding.pkl contents
    face_labels: np.ndarray  # [9976] the true component of each triangle (from the demo's labels)
    origin: np.ndarray  # [5023] the demo vertex each vertex came from
    named: dict[str, np.ndarray]  # demo name -> [5023, 3] the named expression carried onto this head

    def write(self, folder: Path) -> Path:
        """Write the three files into folder; returns the model file."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in (("generic_model.pkl", self.model), ("FLAME_masks.pkl", self.masks),
                           ("flame_static_embedding.pkl", self.embedding)):
            (folder / name).write_bytes(pickle.dumps(data, protocol=2))
        return folder / "generic_model.pkl"


def _ring_columns(verts: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> dict[str, list[int]]:
    """Four lip rings of 15 distinct vertices each, columns from +x to -x."""
    both = np.intersect1d(upper, lower)
    pools = {
        "outer_upper": (upper, 1.0), "inner_upper": (np.setdiff1d(upper, both), -1.0),
        "inner_lower": (np.setdiff1d(lower, both), 1.0), "outer_lower": (lower, -1.0),
    }
    span = verts[np.union1d(upper, lower), 0]
    xs = np.linspace(0.85 * span.max(), 0.85 * span.min(), 15)
    used: set[int] = set()
    rings: dict[str, list[int]] = {}
    for ring, (pool, sign) in pools.items():
        picks = []
        for x in xs:
            free = np.array([i for i in pool if i not in used])
            near = free[np.argsort(np.abs(verts[free, 0] - x))[:3]]  # the column's vertices
            pick = int(near[np.argmax(sign * verts[near, 1])])  # its top (outer upper) or bottom (...)
            picks.append(pick)
            used.add(pick)
        rings[ring] = picks
    return rings


def _embed(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(triangle [L], barycentric [L, 3]) of the surface points nearest to points [L, 3]."""
    centroids = verts[faces].mean(1)
    _, cand = cKDTree(centroids).query(points, k=12)
    face_idx, bary = [], []
    for p, fs in zip(points, cand):
        best = None
        for f in fs:
            a, b, c = verts[faces[f]]
            m = np.stack([b - a, c - a], 1)
            uv = np.clip(np.linalg.lstsq(m, p - a, rcond=None)[0], 0, 1)
            uv = uv / max(1.0, uv.sum())
            w = np.array([1 - uv.sum(), uv[0], uv[1]])
            dist = np.linalg.norm(w @ verts[faces[f]] - p)
            if best is None or dist < best[0]:
                best = (dist, f, w)
        face_idx.append(best[1])
        bary.append(best[2])
    return np.array(face_idx, dtype=np.int64), np.array(bary)


def _masks(verts: np.ndarray, faces: np.ndarray, labels: np.ndarray, eye: np.ndarray) -> dict[str, np.ndarray]:
    """FLAME_masks.pkl-style regions from true triangle labels (FLAME has no brow region)."""
    def verts_of(*names: str) -> np.ndarray:
        return np.unique(faces[np.isin(labels, [LABEL[n] for n in names])])

    x = verts[:, 0]
    ears, eyeballs = verts_of("ears"), np.flatnonzero(eye)
    skin = verts_of("skin", "left_brow", "right_brow", "nose", "upper_lip", "lower_lip")
    centres = {s: verts[eyeballs[np.sign(x[eyeballs]) == s]].mean(0) for s in (1.0, -1.0)}
    near_eye = {s: skin[np.linalg.norm(verts[skin] - c, axis=1) < 0.03] for s, c in centres.items()}
    neck = verts_of("neck")
    return {
        "face": skin, "scalp": verts_of("hair"), "neck": neck, "boundary": neck[verts[neck, 1] < verts[neck, 1].min() + 0.01],
        "left_eyeball": eyeballs[x[eyeballs] > 0], "right_eyeball": eyeballs[x[eyeballs] < 0],
        "left_ear": ears[x[ears] > 0], "right_ear": ears[x[ears] < 0], "nose": verts_of("nose"),
        "lips": verts_of("upper_lip", "lower_lip"), "forehead": skin[verts[skin, 1] > verts[eyeballs, 1].max() + 0.03],
        "left_eye_region": near_eye[1.0], "right_eye_region": near_eye[-1.0],
        "eye_region": np.union1d(near_eye[1.0], near_eye[-1.0]),
    }


@functools.lru_cache(maxsize=1)
def flame_like() -> FlameLike:
    """The FLAME-like head (built once per test session, ~3 s)."""
    rng = np.random.default_rng(7)
    demo = read_flame_arrays(DEMO_HEAD_DIR)
    demo_head = load_head("demo")
    dv, df, dl = demo["v_template"], demo["f"], np.asarray(demo["face_labels"])
    eye_demo = demo["weights"][:, 3:5].max(1) > 0.5
    eye_idx, skin_demo = np.flatnonzero(eye_demo), np.flatnonzero(~eye_demo)
    skin_of = np.full(len(dv), -1)
    skin_of[skin_demo] = np.arange(len(skin_demo))
    skin_faces = skin_of[df[~eye_demo[df].any(1)]]
    lips = np.unique(df[np.isin(dl, [LABEL["upper_lip"], LABEL["lower_lip"]])])
    mouth, reach = dv[lips].mean(0), np.ptp(dv[lips, 0])
    keep_mouth = lambda p: 1.0 - 0.85 * np.exp(-np.sum((p - mouth) ** 2, 1) / reach**2)  # noqa: E731 - fine lips
    sv, sf = decimate(dv[skin_demo], skin_faces, FLAME_VERTS - len(eye_idx), keep_mouth)
    remap = np.full(len(dv), -1)
    remap[eye_idx] = len(sv) + np.arange(len(eye_idx))
    eye_faces = df[eye_demo[df].all(1)]
    verts = np.concatenate([sv, dv[eye_idx]])
    faces = np.concatenate([sf, remap[eye_faces]])
    assert len(verts) == FLAME_VERTS and len(faces) >= FLAME_FACES, (len(verts), len(faces))
    faces = faces[np.argsort(-verts[faces].mean(1)[:, 1], kind="stable")[:FLAME_FACES]]  # open the neck
    eye = np.zeros(len(verts), bool)
    eye[len(sv):] = True
    # where each vertex / triangle came from on the demo head
    origin = np.empty(len(verts), dtype=np.int64)
    origin[~eye] = skin_demo[cKDTree(dv[skin_demo]).query(verts[~eye])[1]]
    origin[eye] = eye_idx
    labels = dl[cKDTree(dv[df].mean(1)).query(verts[faces].mean(1))[1]]
    labels[eye[faces].all(1)] = np.where(verts[faces[eye[faces].all(1)], 0].mean(1) > 0, LABEL["left_eye"], LABEL["right_eye"])
    # FLAME's lip rings at FLAME's indices, everything else in order around them
    upper = np.unique(faces[labels == LABEL["upper_lip"]])
    lower = np.unique(faces[labels == LABEL["lower_lip"]])
    rings = _ring_columns(verts, upper, lower)
    wanted = {**dict(zip(LIP_OUTER_UPPER, rings["outer_upper"])), **dict(zip(LIP_OUTER_LOWER, rings["outer_lower"])),
              **dict(zip(LIP_INNER_UPPER, rings["inner_upper"])), **dict(zip(LIP_INNER_LOWER, rings["inner_lower"]))}
    order = np.full(FLAME_VERTS, -1)
    order[list(wanted)] = list(wanted.values())
    rest = np.setdiff1d(np.arange(FLAME_VERTS), list(wanted.values()))
    order[order < 0] = rest
    new_of = np.argsort(order)  # old vertex -> new index
    verts, eye, origin, faces = verts[order], eye[order], origin[order], new_of[faces]
    # rig and blendshapes carried over from the demo, then bent into the new shape
    weights = demo["weights"][origin]
    nearest = cKDTree(verts).query(dv)[1]
    j_reg = np.zeros((5, FLAME_VERTS))
    np.add.at(j_reg.T, nearest, demo["J_regressor"].T)
    names = demo_head.expression_names
    d_dirs = demo["shapedirs"][:, :, 300:300 + len(names)]
    named = {n: carry(dv[origin], d_dirs[origin, :, k]) for k, n in enumerate(names)}
    distract = []
    for _ in range(N_EXPR - len(names)):
        centre = verts[rng.integers(FLAME_VERTS)]
        bump = np.exp(-np.sum((verts - centre) ** 2, 1) / rng.uniform(0.02, 0.05) ** 2)
        distract.append(bump[:, None] * rng.normal(0, 0.003, 3))
    fields = np.stack(list(named.values()) + distract, axis=2)  # [V, 3, 100]
    fields[eye] = 0.0
    mix = np.linalg.qr(rng.normal(size=(N_EXPR, N_EXPR)))[0]
    shapedirs = np.zeros((FLAME_VERTS, 3, 400))
    for k in range(10):
        shapedirs[:, :, k] = carry(dv[origin], demo["shapedirs"][origin, :, k])
    shapedirs[:, :, 300:] = fields @ mix
    bent = bend(verts)
    lmk_face, lmk_bary = _embed(demo_head.landmarks.points(dv, df), verts, faces)
    model = {"v_template": bent, "f": faces, "shapedirs": shapedirs, "posedirs": np.zeros((FLAME_VERTS, 3, 36)),
             "J_regressor": j_reg, "kintree_table": demo["kintree_table"], "weights": weights}
    return FlameLike(model, _masks(bent, faces, labels, eye), {"lmk_face_idx": lmk_face, "lmk_b_coords": lmk_bary},
                     labels, origin, named)
