"""Component labels of a real FLAME head from FLAME_masks.pkl (FLAME's published vertex masks).

FLAME_masks.pkl, downloaded with the model, maps region names to vertex indices: face, neck, scalp,
boundary, right/left_eyeball, right/left_ear, forehead, eye_region, nose, lips, right/left_eye_region
(VHAP adds teeth, hair, irises, ...). `face_labels_from_flame_masks` turns them into the 13 labels of
the Facial Component Identifier (engine/head/components.py): lips split into upper and lower along
the mouth line (FLAME's inner lip rings, else the lips' median height), eyeballs into left and right
(FLAME's +x is the subject's left), brows drawn as a band along the brow landmarks when the landmark
embedding is there (FLAME has no brow mask), and teeth triangles are mouth_interior. A triangle takes
a region when all three corners are in it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from engine.head.components import COMPONENTS, LABEL
from engine.head.flame_file import FlameFileError, read_restricted_pickle
from engine.head.teeth import LIP_INNER_LOWER, LIP_INNER_UPPER

MASKS_FILE = "FLAME_masks.pkl"

FLAME_REGION_MAP: dict[str, str] = {
    "left_eyeball": "left_eye",
    "right_eyeball": "right_eye",
    "nose": "nose",
    "lips": "lips",  # split into upper_lip / lower_lip along the mouth line
    "left_ear": "ears",
    "right_ear": "ears",
    "ears": "ears",
    "neck": "neck",
    "scalp": "hair",
    "hair": "hair",
    "teeth": "mouth_interior",
    "face": "skin",
    "forehead": "skin",
    "eye_region": "skin",
    "left_eye_region": "skin",
    "right_eye_region": "skin",
    "boundary": "neck",
    "eyeballs": "eyes",  # split left / right by the sign of x
    "irises": "eyes",
}
"""FLAME_masks.pkl region names (official keys plus VHAP's extras) -> component or 'lips' / 'eyes'."""

REGION_PRIORITY: tuple[str, ...] = (
    "scalp", "hair", "face", "forehead", "eye_region", "left_eye_region", "right_eye_region", "neck", "boundary",
    "left_ear", "right_ear", "ears", "nose", "lips", "teeth", "eyeballs", "irises", "left_eyeball", "right_eyeball",
)
"""Later regions win where FLAME's regions overlap: the specific over the general, and face and neck over
scalp (hair is the scalp outside them, as GaussianAvatars takes it)."""

BROAD: tuple[str, ...] = ("skin", "hair", "neck", "ears")
"""Regions a triangle on a border falls to (facial parts inside them stay within their own vertices)."""

BROW_HALF_WIDTH = 0.12  # brow band half-width as a share of the brow's length along its landmarks

MISSING_MASKS_NOTE = (
    f"no {MASKS_FILE} beside the FLAME model (pass --flame-masks FILE, or put FLAME's masks file next to "
    "the model): every triangle is skin, so components need a face parser (masks label --dataset) or painting"
)


def read_flame_masks(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """FLAME_masks.pkl: region name -> vertex indices [K] (restricted unpickler, no chumpy needed)."""
    p = Path(path)
    if not p.is_file():
        raise FlameFileError(f"{p}: FLAME masks file not found")
    raw = read_restricted_pickle(p, "FLAME masks")
    if not isinstance(raw, dict) or not raw:
        raise FlameFileError(f"{p}: expected a dictionary region -> vertex indices")
    out = {}
    for key, value in raw.items():
        arr = np.asarray(value).reshape(-1)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise FlameFileError(f"{p}: region {key!r} does not hold vertex indices")
        out[str(key)] = arr.astype(np.int64)
    return out


def _mouth_line(masks: dict[str, np.ndarray], rest: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, y) of FLAME's mouth line (midpoints of the inner lip rings, sorted by x), or None when the
    rings are not FLAME's lips on this head."""
    rings = np.array([LIP_INNER_UPPER, LIP_INNER_LOWER])
    lips = masks.get("lips")
    if lips is None or rings.max() >= len(rest) or np.isin(rings, lips).mean() < 0.8:
        return None
    mid = rest[rings].mean(axis=0)  # [15, 3]
    order = np.argsort(mid[:, 0])
    return mid[order, 0], mid[order, 1]


def _split_lips(idx: np.ndarray, rest: np.ndarray, line: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Upper / lower lip label for lip vertices idx."""
    y = rest[idx, 1]
    cut = np.interp(rest[idx, 0], *line) if line is not None else (np.median(y) if idx.size else 0.0)
    return np.where(y >= cut, LABEL["upper_lip"], LABEL["lower_lip"])


def _segment_distance(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """[N] distance from points [N, 3] to a polyline [K, 3]."""
    a, b = polyline[:-1], polyline[1:]  # [K-1, 3]
    ab = b - a
    t = np.clip(np.einsum("nkx,kx->nk", points[:, None] - a[None], ab) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
    closest = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(points[:, None] - closest, axis=2).min(axis=1)


def _brow_labels(face_label: np.ndarray, centroids: np.ndarray, brows: np.ndarray) -> np.ndarray:
    """face_label with skin triangles along each brow's landmarks (brows [10, 3]) relabelled as brows."""
    out = face_label.copy()
    for side in (brows[:5], brows[5:]):
        side = side[np.argsort(side[:, 0])]
        length = float(np.linalg.norm(np.diff(side, axis=0), axis=1).sum())
        near = _segment_distance(centroids, side) < BROW_HALF_WIDTH * length
        near &= centroids[:, 2] > side[:, 2].min() - BROW_HALF_WIDTH * length  # not through to the back
        name = "left_brow" if side[:, 0].mean() > 0 else "right_brow"
        out[near & (face_label == LABEL["skin"])] = LABEL[name]
    return out


def _triangle_labels(vert_label: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[F] label per triangle: its corners' label when all three agree (GaussianAvatars' rule, so small
    parts do not bleed a ring of triangles into the skin); on a border, the broad region among its
    corners (skin, hair, neck, ears) when there is one, else the corners' majority."""
    corner = vert_label[faces]  # [F, 3]
    counts = np.stack([(corner == c).sum(1) for c in range(len(COMPONENTS))], axis=1)
    broad = np.zeros(len(COMPONENTS), dtype=bool)
    broad[[LABEL[n] for n in BROAD]] = True
    border = counts.max(1) < 3
    broad_counts = np.where(broad[None], counts, 0)
    use_broad = border & (broad_counts.sum(1) > 0)
    return np.where(use_broad, broad_counts.argmax(1), counts.argmax(1))


def face_labels_from_flame_masks(
    masks: dict[str, np.ndarray],
    faces: Tensor,  # [F, 3]
    rest_verts: Tensor,  # [V, 3]
    brows: np.ndarray | None = None,  # [10, 3] brow landmark positions on rest_verts, or None
) -> Tensor:
    """[F] component label per triangle from FLAME vertex masks (see _triangle_labels).

    Regions indexing vertices the head lacks raise ValueError, except VHAP's 'teeth' region on a head
    without teeth (its triangles are mouth_interior once the teeth are added).
    """
    rest = rest_verts.detach().cpu().numpy().astype(np.float64)
    v = len(rest)
    vert_label = np.full(v, LABEL["skin"], dtype=np.int64)
    line = _mouth_line(masks, rest)
    order = [r for r in REGION_PRIORITY if r in masks]
    for region in order:
        idx = masks[region]
        if idx.size and (idx.min() < 0 or idx.max() >= v):
            if region == "teeth":
                continue
            raise ValueError(f"FLAME mask {region!r} indexes vertex {int(idx.max())}, the head has {v}")
        target = FLAME_REGION_MAP[region]
        if target == "lips":
            vert_label[idx] = _split_lips(idx, rest, line)
        elif target == "eyes":
            vert_label[idx] = np.where(rest[idx, 0] >= 0, LABEL["left_eye"], LABEL["right_eye"])
        else:
            vert_label[idx] = LABEL[target]
    f = faces.detach().cpu().numpy()
    labels = _triangle_labels(vert_label, f)
    if brows is not None:
        labels = _brow_labels(labels, rest[f].mean(axis=1), np.asarray(brows, dtype=np.float64))
    return torch.from_numpy(labels).to(faces.device)
