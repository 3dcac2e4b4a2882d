"""The embedded demo head: loads through smplx, regions move as named, closed mesh, deterministic."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch

from engine.head.components import COMPONENTS, LABEL

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "resources" / "demo_head"


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    with np.load(MODEL / "FLAME_NEUTRAL.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def flame(data: dict[str, np.ndarray]) -> smplx.FLAME:
    return smplx.FLAME(model_path=str(MODEL), ext="npz", num_betas=10,
                       num_expression_coeffs=len(data["expression_names"]), use_face_contour=False, batch_size=1)


def _pose(flame: smplx.FLAME, **kwargs: np.ndarray) -> np.ndarray:
    args = {k: torch.tensor(v, dtype=torch.float32)[None] for k, v in kwargs.items()}
    with torch.no_grad():
        return flame(**args).vertices[0].double().numpy()


def test_layout_and_smplx_forward(data: dict[str, np.ndarray], flame: smplx.FLAME) -> None:
    v, f = data["v_template"], data["f"]
    n = len(v)
    assert 4000 <= n <= 8000 and len(f) < 16000
    assert data["shapedirs"].shape == (n, 3, 400) and data["posedirs"].shape == (n, 3, 36)
    assert data["J_regressor"].shape == (5, n) and data["weights"].shape == (n, 5)
    np.testing.assert_allclose(data["J_regressor"].sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(data["weights"].sum(axis=1), 1.0, atol=1e-6)
    assert list(data["kintree_table"][1]) == [0, 1, 2, 3, 4] and list(data["kintree_table"][0][1:]) == [0, 1, 1, 1]
    assert data["face_labels"].shape == (len(f),)
    names = [str(x) for x in data["expression_names"]]
    assert names[:10] == ["smile", "frown", "brow_raise", "brow_furrow", "blink_left", "blink_right", "pucker",
                          "cheek_puff", "lip_stretch", "nose_wrinkle"]
    assert np.abs(data["shapedirs"][:, :, 10:300]).max() == 0 and np.abs(data["shapedirs"][:, :, 300 + len(names):]).max() == 0
    assert np.abs(data["shapedirs"][:, :, :10]).max(axis=(0, 1)).min() > 1e-3  # every identity mode moves
    out = _pose(flame)
    np.testing.assert_allclose(out, v, atol=1e-5)
    size = v.max(axis=0) - v.min(axis=0)
    assert 0.15 < size[0] < 0.20 and 0.28 < size[1] < 0.36  # ears included in width; neck in height
    with open(MODEL / "flame_static_embedding.pkl", "rb") as fh:
        emb = pickle.load(fh)
    assert emb["lmk_face_idx"].shape == (51,) and emb["lmk_b_coords"].shape == (51, 3)
    np.testing.assert_allclose(emb["lmk_b_coords"].sum(axis=1), 1.0, atol=1e-9)
    assert (emb["lmk_b_coords"] >= -1e-9).all()


def test_joints_where_flame_puts_them(data: dict[str, np.ndarray]) -> None:
    j = data["J_regressor"] @ data["v_template"]
    root, neck, jaw, leye, reye = j
    assert root[1] < neck[1] < jaw[1] < leye[1]
    assert leye[0] > 0.02 and reye[0] < -0.02 and abs(leye[1] - reye[1]) < 1e-6
    assert abs(jaw[0]) < 1e-3 and abs(root[0]) < 1e-3


def _near(v: np.ndarray, point: np.ndarray, radius: float) -> np.ndarray:
    return np.linalg.norm(v - point, axis=1) < radius


@pytest.mark.parametrize(
    "name, moves, still",
    [
        ("blink_left", "left_eye_lid", ["right_eye_lid", "chin"]),
        ("blink_right", "right_eye_lid", ["left_eye_lid", "chin"]),
        ("smile", "mouth", ["left_eye_lid", "crown"]),
        ("brow_raise", "left_brow", ["chin", "crown_back"]),
        ("pucker", "mouth", ["left_eye_lid", "crown"]),
        ("cheek_puff", "left_cheek", ["left_eye_lid", "crown"]),
        ("nose_wrinkle", "nose_side", ["chin", "crown"]),
    ],
)
def test_expression_regions(data: dict[str, np.ndarray], flame: smplx.FLAME, name: str, moves: str,
                            still: list[str]) -> None:
    from engine.head.sculpt.sdf import ANATOMY as A

    v = data["v_template"]
    regions = {
        "left_eye_lid": _near(v, A["left_eye"] + [0, 0.006, 0.012], 0.006),
        "right_eye_lid": _near(v, A["right_eye"] + [0, 0.006, 0.012], 0.006),
        "chin": _near(v, A["chin"], 0.012),
        "mouth": _near(v, A["mouth"], 0.03),
        "crown": v[:, 1] > 0.10,
        "crown_back": v[:, 2] < -0.06,
        "left_brow": _near(v, A["left_eye"] + [0, 0.022, 0.014], 0.01),
        "left_cheek": _near(v, [0.055, -0.03, 0.05], 0.02),
        "nose_side": _near(v, [0.012, 0.0, 0.08], 0.012),
    }
    names = [str(x) for x in data["expression_names"]]
    x = np.zeros(len(names))
    x[names.index(name)] = 1.0
    d = np.linalg.norm(_pose(flame, expression=x) - v, axis=1)
    assert regions[moves].any() and d[regions[moves]].max() > 0.002, f"{name} hardly moves {moves}"
    for r in still:
        assert regions[r].any() and d[regions[r]].max() < 1e-6, f"{name} moves {r}"


def test_blink_closes_the_lid_over_the_eyeball(data: dict[str, np.ndarray], flame: smplx.FLAME) -> None:
    names = [str(x) for x in data["expression_names"]]
    x = np.zeros(len(names))
    x[names.index("blink_left")] = 1.0
    v = _pose(flame, expression=x)
    eye = data["J_regressor"][3] @ data["v_template"]
    labels, f = data["face_labels"], data["f"]
    skin = np.unique(f[labels != LABEL["left_eye"]])
    # a ray straight at the eyeball front must hit skin (the lid) in front of the eyeball
    front = eye + [0.0, 0.0, 0.012]
    q = v[skin]
    in_front = (np.abs(q[:, 0] - front[0]) < 0.003) & (np.abs(q[:, 1] - front[1]) < 0.003) & (q[:, 2] > front[2])
    assert in_front.any()
    v0 = data["v_template"][skin]
    open_front = (np.abs(v0[:, 0] - front[0]) < 0.003) & (np.abs(v0[:, 1] - front[1]) < 0.003) & (v0[:, 2] > front[2])
    assert not open_front.any()  # at rest the eye is open


def test_jaw_opens_mouth_not_brows(data: dict[str, np.ndarray], flame: smplx.FLAME) -> None:
    v = data["v_template"]
    labels, f = data["face_labels"], data["f"]
    opened = _pose(flame, jaw_pose=np.array([0.3, 0.0, 0.0]))
    d = np.linalg.norm(opened - v, axis=1)
    lower = np.unique(f[labels == LABEL["lower_lip"]])
    upper = np.unique(f[labels == LABEL["upper_lip"]])
    brows = np.unique(f[np.isin(labels, [LABEL["left_brow"], LABEL["right_brow"]])])
    assert np.median(d[lower]) > 0.012
    assert np.median(d[upper]) < 0.002
    assert d[brows].max() < 1e-6
    gap = opened[upper, 1].min() - opened[lower, 1].max()
    assert gap > -0.005  # lips part: no lower-lip vertex rises well above the upper lip
    assert (opened[upper, 1].mean() - opened[lower, 1].mean()) > 0.025


def test_closed_mesh_and_labels(data: dict[str, np.ndarray]) -> None:
    from engine.head.sculpt.mesh import boundary_edges, nonmanifold_edges, signed_volume

    f = data["f"]
    assert len(boundary_edges(f)) == 0, "the demo head has open boundaries"
    assert len(nonmanifold_edges(f)) == 0
    assert signed_volume(data["v_template"], f) > 0  # outward normals
    present = set(np.unique(data["face_labels"]).tolist())
    assert present == {LABEL[c] for c in COMPONENTS if c != "accessory"}
    w = data["weights"]
    eyes = np.unique(f[np.isin(data["face_labels"], [LABEL["left_eye"], LABEL["right_eye"]])])
    assert (w[eyes, 3:].max(axis=1) == 1.0).all()


@pytest.mark.slow
def test_build_is_deterministic(tmp_path: Path) -> None:
    from engine.head.sculpt.build import SculptConfig, build

    config = SculptConfig(step=0.0060, skin_verts=2500, eye_level=1, relax_iterations=1)
    a, ea = build(config)
    b, eb = build(config)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_array_equal(ea["lmk_face_idx"], eb["lmk_face_idx"])
