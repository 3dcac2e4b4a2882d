"""Deterministic build of the embedded demo head in FLAME layout.

    python -m engine.head.sculpt [--out resources/demo_head] [--step 0.003] [--skin-verts 5200]

Sculpts a head as a signed distance (sdf.py), meshes it (mesh.py,
decimate.py), adds two eyeballs, presses the lips shut and labels it
(labels.py), rigs it (rig.py) and adds identity
and expression blendshapes (shapes.py). Writes FLAME_NEUTRAL.npz (FLAME keys plus
face_labels and expression_names) and flame_static_embedding.pkl, which smplx.FLAME loads.
"""

from __future__ import annotations

import argparse
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy import ndarray

from engine.head.sculpt import mesh
from engine.head.sculpt import rig
from engine.head.sculpt import sdf
from engine.head.sculpt.decimate import decimate
from engine.head.sculpt.labels import close_lips, face_labels
from engine.head.sculpt.shapes import EXPRESSION_NAMES, expression_fields, identity_fields
from engine.io.atomic import atomic_write

DEFAULT_OUT = Path(__file__).resolve().parents[3] / "resources" / "demo_head"


@dataclass(frozen=True)
class SculptConfig:
    """Resolution knobs of the build (the shipped head uses the defaults)."""

    step: float = 0.0030  # marching-cubes cell size (metres) away from the face lens
    skin_verts: int = 5200  # vertices of the skin after decimation
    eye_level: int = 3  # icosphere subdivision level of each eyeball
    relax_iterations: int = 4  # tangential smoothing passes after decimation


def sizing(p: ndarray) -> ndarray:
    """Relative wanted edge length at points p [N, 3] -> [N]: small on the face features."""

    def g(centre: ndarray, radius: float) -> ndarray:
        q = p - centre
        return np.exp(-np.sum(q * q, axis=1) / radius**2)

    a = sdf.ANATOMY
    s = 1.0 - 0.6 * g(mesh.LENS_CENTRE, 0.065)
    s *= (1.0 - 0.4 * g(a["mouth"], 0.02)) * (1.0 - 0.4 * g(a["left_eye"], 0.02)) * (1.0 - 0.4 * g(a["right_eye"], 0.02))
    s *= (1.0 - 0.3 * g(a["left_ear"], 0.03)) * (1.0 - 0.3 * g(a["right_ear"], 0.03))
    for side in (1.0, -1.0):  # brows: fine enough for a smooth label outline
        s *= 1.0 - 0.45 * g(np.array([side * 0.031, 0.051, 0.075]), 0.018)
    return s


def build_mesh(config: SculptConfig) -> tuple[ndarray, ndarray, ndarray]:
    """Rest vertices [V, 3], faces [F, 3] and part [V] (0 skin, 1 left eyeball, 2 right eyeball)."""
    v, f = mesh.mesh_sdf(sdf.head, config.step)
    v, f = decimate(v, f, config.skin_verts, sizing)
    v = mesh.relax(sdf.head, v, f, config.relax_iterations, 0.3)
    verts, faces, parts = [v], [f], [np.zeros(len(v), dtype=np.int64)]
    offset = len(v)
    for index, name in ((1, "left_eye"), (2, "right_eye")):
        ev, ef = mesh.eyeball(sdf.ANATOMY[name], sdf.EYE_RADIUS, config.eye_level)
        verts.append(ev)
        faces.append(ef + offset)
        parts.append(np.full(len(ev), index, dtype=np.int64))
        offset += len(ev)
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(parts)


def build(config: SculptConfig = SculptConfig()) -> tuple[dict[str, ndarray], dict[str, ndarray]]:
    """The FLAME_NEUTRAL.npz arrays and the static landmark embedding arrays."""
    verts, faces, part = build_mesh(config)
    n = len(verts)
    closed = verts + close_lips(verts) * (part == 0)[:, None]
    labels = face_labels(verts, closed, faces, part, rig.jaw_weight(verts))
    shapedirs = np.zeros((n, 3, 400), dtype=np.float32)
    shapedirs[:, :, :10] = identity_fields(verts, part)
    expr = expression_fields(verts)
    expr[part != 0] = 0.0
    shapedirs[:, :, 300 : 300 + len(EXPRESSION_NAMES)] = expr
    model = {
        "v_template": closed.astype(np.float64),
        "f": faces.astype(np.int64),
        "shapedirs": shapedirs,
        "posedirs": np.zeros((n, 3, 36), dtype=np.float32),
        "J_regressor": rig.joint_regressor(closed, part),
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "weights": rig.skinning_weights(verts, part),
        "face_labels": labels,
        "expression_names": np.array(EXPRESSION_NAMES),
    }
    lmk_face, lmk_bary = rig.landmarks(closed, faces, labels)
    embedding = {"lmk_face_idx": lmk_face, "lmk_b_coords": lmk_bary}
    return model, embedding


def write(out_dir: Path, model: dict[str, ndarray], embedding: dict[str, ndarray]) -> None:
    """Write FLAME_NEUTRAL.npz and flame_static_embedding.pkl atomically into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, writer in (
        ("FLAME_NEUTRAL.npz", lambda fh: np.savez_compressed(fh, **model)),
        ("flame_static_embedding.pkl", lambda fh: pickle.dump(embedding, fh, protocol=4)),
    ):
        with atomic_write(out_dir / name) as fh:
            writer(fh)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the embedded demo head (FLAME layout).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--step", type=float, default=SculptConfig.step, help="marching-cubes cell (m)")
    parser.add_argument("--skin-verts", type=int, default=SculptConfig.skin_verts, help="skin vertex count")
    parser.add_argument("--eye-level", type=int, default=SculptConfig.eye_level, help="eyeball subdivisions")
    args = parser.parse_args(argv)
    config = SculptConfig(step=args.step, skin_verts=args.skin_verts, eye_level=args.eye_level)
    model, embedding = build(config)
    write(args.out, model, embedding)
    v, f = model["v_template"], model["f"]
    print(f"wrote {args.out}: {len(v)} vertices, {len(f)} faces, {len(EXPRESSION_NAMES)} expressions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
