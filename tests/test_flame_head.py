"""A real FLAME-format head (FLAME's counts and lip rings, tests/flame_like.py): GaussianAvatars'
teeth, components from FLAME_masks.pkl, and the demo head's named expressions carried onto it."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from engine.avatar.avatar import Avatar
from engine.avatar.gaussians import BoundGaussians
from engine.avatar.posing import Pose, apply_pose
from engine.head.components import LABEL
from engine.head.model import HeadModel, load_head
from engine.head.params import FlameParams
from engine.head.teeth import (FLAME_FACES, FLAME_VERTS, LIP_OUTER_LOWER, LIP_OUTER_UPPER, row_indices,
                               teeth_faces)
from tests.flame_like import carry, flame_like

# GaussianAvatars' teeth triangles (flame_model/flame.py, add_teeth), transcribed as data in file order:
# upper jaw (front, back, biting edge), then lower jaw (front, back, biting edge); teeth-local indices.
GA_TEETH_FACES = [
    [0, 31, 30], [0, 1, 31], [1, 32, 31], [1, 2, 32], [2, 33, 32], [2, 3, 33], [3, 34, 33], [3, 4, 34], [4, 35, 34],
    [4, 5, 35], [5, 36, 35], [5, 6, 36], [6, 37, 36], [6, 7, 37], [7, 8, 37], [8, 38, 37], [8, 9, 38], [9, 39, 38],
    [9, 10, 39], [10, 40, 39], [10, 11, 40], [11, 41, 40], [11, 12, 41], [12, 42, 41], [12, 13, 42], [13, 43, 42],
    [13, 14, 43], [14, 44, 43],
    [60, 75, 76], [60, 76, 61], [61, 76, 77], [61, 77, 62], [62, 77, 78], [62, 78, 63], [63, 78, 79], [63, 79, 64],
    [64, 79, 80], [64, 80, 65], [65, 80, 81], [65, 81, 66], [66, 81, 82], [66, 82, 67], [67, 82, 68], [68, 82, 83],
    [68, 83, 69], [69, 83, 84], [69, 84, 70], [70, 84, 85], [70, 85, 71], [71, 85, 86], [71, 86, 72], [72, 86, 87],
    [72, 87, 73], [73, 87, 88], [73, 88, 74], [74, 88, 89],
    [75, 30, 76], [76, 30, 31], [76, 31, 77], [77, 31, 32], [77, 32, 78], [78, 32, 33], [78, 33, 79], [79, 33, 34],
    [79, 34, 80], [80, 34, 35], [80, 35, 81], [81, 35, 36], [81, 36, 82], [82, 36, 37], [82, 37, 38], [82, 38, 83],
    [83, 38, 39], [83, 39, 84], [84, 39, 40], [84, 40, 85], [85, 40, 41], [85, 41, 86], [86, 41, 42], [86, 42, 87],
    [87, 42, 43], [87, 43, 88], [88, 43, 44], [88, 44, 89],
    [45, 46, 15], [46, 16, 15], [46, 47, 16], [47, 17, 16], [47, 48, 17], [48, 18, 17], [48, 49, 18], [49, 19, 18],
    [49, 50, 19], [50, 20, 19], [50, 51, 20], [51, 21, 20], [51, 52, 21], [52, 22, 21], [52, 23, 22], [52, 53, 23],
    [53, 24, 23], [53, 54, 24], [54, 25, 24], [54, 55, 25], [55, 26, 25], [55, 56, 26], [56, 27, 26], [56, 57, 27],
    [57, 28, 27], [57, 58, 28], [58, 29, 28], [58, 59, 29],
    [90, 106, 105], [90, 91, 106], [91, 107, 106], [91, 92, 107], [92, 108, 107], [92, 93, 108], [93, 109, 108],
    [93, 94, 109], [94, 110, 109], [94, 95, 110], [95, 111, 110], [95, 96, 111], [96, 112, 111], [96, 97, 112],
    [97, 98, 112], [98, 113, 112], [98, 99, 113], [99, 114, 113], [99, 100, 114], [100, 115, 114], [100, 101, 115],
    [101, 116, 115], [101, 102, 116], [102, 117, 116], [102, 103, 117], [103, 118, 117], [103, 104, 118],
    [104, 119, 118],
    [105, 106, 45], [106, 46, 45], [106, 107, 46], [107, 47, 46], [107, 108, 47], [108, 48, 47], [108, 109, 48],
    [109, 49, 48], [109, 110, 49], [110, 50, 49], [110, 111, 50], [111, 51, 50], [111, 112, 51], [112, 52, 51],
    [112, 53, 52], [112, 113, 53], [113, 54, 53], [113, 114, 54], [114, 55, 54], [114, 115, 55], [115, 56, 55],
    [115, 116, 56], [116, 57, 56], [116, 117, 57], [117, 58, 57], [117, 118, 58], [118, 59, 58], [118, 119, 59],
]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return flame_like().write(tmp_path_factory.mktemp("flame"))


@pytest.fixture(scope="module")
def head(model_file) -> HeadModel:
    return load_head(model_file)


def test_teeth_triangles_are_gaussianavatars_in_their_order():
    np.testing.assert_array_equal(teeth_faces(), np.array(GA_TEETH_FACES))


def test_teeth_give_flame_plus_teeth_counts_and_keep_flame_first(head):
    assert (head.n_verts, head.n_faces) == (5023, 9976) and head.is_flame and not head.has_teeth
    teeth = head.with_teeth()
    assert (teeth.n_verts, teeth.n_faces) == (5143, 10144) and teeth.has_teeth
    assert torch.equal(teeth.faces[:FLAME_FACES], head.faces)
    assert torch.equal(teeth.faces[FLAME_FACES:], torch.from_numpy(teeth_faces()) + FLAME_VERTS)
    assert torch.equal(teeth.v_template[:FLAME_VERTS], head.v_template)
    assert head.with_teeth() is teeth and load_head(teeth.source, teeth=True) is teeth
    assert bool((teeth.face_labels[FLAME_FACES:] == LABEL["mouth_interior"]).all())


def test_teeth_sit_behind_the_lips_as_gaussianavatars_builds_them(head):
    v = head.v_template.double()
    upper, lower = v[list(LIP_OUTER_UPPER)], v[list(LIP_OUTER_LOWER)]
    d = float((upper - lower).norm(dim=1).mean())
    t = head.with_teeth().v_template.double()[FLAME_VERTS:]
    row = lambda name: t[torch.from_numpy(row_indices(name))]  # noqa: E731
    middle_z = (upper[:, 2] + lower[:, 2]) / 2 - 1.5 * d
    close = lambda a, b: torch.testing.assert_close(a, torch.as_tensor(b, dtype=torch.float64).expand(15),  # noqa: E731
                                                    atol=1e-6, rtol=0)
    close(row("upper_edge")[:, 2], middle_z)
    close(row("upper_edge")[:, 1], float(((upper + lower) / 2)[:, 1].mean() + 0.1 * d))
    close(row("upper_root")[:, 1] - row("upper_edge")[:, 1], 2 * d)
    close(row("lower_edge")[:, 2], middle_z - 0.4 * d)
    close(row("lower_edge")[:, 1] - row("lower_root")[:, 1], 2 * d)
    for name in ("upper_root", "upper_edge", "lower_root", "lower_edge"):
        close(row(name + "_back")[:, 2], row(name)[:, 2] - d)


def test_lower_teeth_follow_the_jaw_upper_teeth_the_neck(head):
    teeth = head.with_teeth()
    upper_ids = FLAME_VERTS + np.concatenate([row_indices(r) for r in ("upper_root", "upper_edge")])
    lower_ids = FLAME_VERTS + np.concatenate([row_indices(r) for r in ("lower_root", "lower_edge")])
    rest = teeth(teeth.neutral_params())[0]
    jaw = teeth.neutral_params().with_values(jaw_pose=torch.tensor([[0.3, 0.0, 0.0]]))
    opened = teeth(jaw)[0]
    assert float((opened[lower_ids] - rest[lower_ids]).norm(dim=1).min()) > 1e-3
    assert float((opened[upper_ids] - rest[upper_ids]).norm(dim=1).max()) < 1e-6
    neck = teeth.neutral_params().with_values(neck_pose=torch.tensor([[0.0, 0.4, 0.0]]))
    turned = teeth(neck)[0]
    assert float((turned[upper_ids] - rest[upper_ids]).norm(dim=1).min()) > 1e-3
    expr = teeth.neutral_params().with_values(expr=torch.randn(1, teeth.n_expr))
    torch.testing.assert_close(teeth(expr)[0][FLAME_VERTS:], rest[FLAME_VERTS:])  # no expression directions
    shape = teeth.neutral_params().with_values(shape=torch.eye(300)[0] * 2.0)
    ring_move = head(shape)[0] - head(head.neutral_params())[0]
    ring_mean = (ring_move[list(LIP_OUTER_UPPER)] + ring_move[list(LIP_OUTER_LOWER)]) / 2
    torch.testing.assert_close(teeth(shape)[0][FLAME_VERTS + row_indices("upper_edge")] -
                               rest[FLAME_VERTS + row_indices("upper_edge")], ring_mean, atol=1e-6, rtol=1e-4)


def test_flame_offsets_pad_onto_teeth_and_the_demo_head_refuses_them(head):
    teeth = head.with_teeth()
    p = FlameParams.neutral().with_values(static_offset=torch.full((FLAME_VERTS, 3), 1e-3))
    fitted = teeth.fit_params(p, "x.npz")
    assert fitted.static_offset.shape == (5143, 3) and float(fitted.static_offset[FLAME_VERTS:].abs().max()) == 0.0
    with pytest.raises(ValueError, match=r"x\.npz: static_offset has 5023 vertices.*tracked with FLAME.*--flame FILE"):
        load_head("demo").fit_params(p, "x.npz")
    with pytest.raises(ValueError, match="teeth.*--flame FILE"):
        load_head("demo").fit_params(p.with_values(static_offset=torch.zeros(5143, 3)), "y.npz")


def test_flame_masks_give_lips_eyes_nose_and_brows(head):
    truth = torch.from_numpy(flame_like().face_labels)
    assert "FLAME masks" in head.notes.components
    for name in ("upper_lip", "lower_lip", "left_eye", "right_eye", "nose", "hair", "ears"):
        on = truth == LABEL[name]
        hit = float((head.face_labels[on] == LABEL[name]).float().mean())
        precise = float((truth[head.face_labels == LABEL[name]] == LABEL[name]).float().mean())
        assert hit > 0.9 and precise > 0.6, (name, hit, precise)
    for name in ("left_brow", "right_brow"):  # FLAME has no brow mask: drawn along the brow landmarks
        assert float((head.face_labels[truth == LABEL[name]] == LABEL[name]).float().mean()) > 0.8, name


def test_without_masks_every_triangle_is_skin_and_the_note_says_what_to_do(tmp_path):
    data = flame_like()
    folder = tmp_path / "nomasks"
    data.write(folder)
    (folder / "FLAME_masks.pkl").unlink()
    bare = load_head(folder)
    assert bool((bare.face_labels == LABEL["skin"]).all())
    assert "face parser" in bare.notes.components and "--flame-masks" in bare.notes.components
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "FLAME_masks.pkl").write_bytes(pickle.dumps(data.masks, protocol=2))
    given = load_head(folder, masks=tmp_path / "m" / "FLAME_masks.pkl")
    assert float((given.face_labels == LABEL["nose"]).sum()) > 100


def _moves(head: HeadModel, name: str) -> np.ndarray:
    """[V, 3] rest-pose displacement of one unit of a named expression."""
    p = head.neutral_params()
    on = p.with_values(expr=head.expr_vector(**{name: 1.0})[None])
    return (head(on)[0] - head(p)[0]).detach().numpy()[:FLAME_VERTS]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


@pytest.mark.parametrize("name", ["smile", "pucker", "mouth_left"])
def test_named_mouth_expressions_move_the_lip_rings_as_on_the_demo_head(head, name):
    data = flame_like()
    demo = load_head("demo")
    rings = list(LIP_OUTER_UPPER) + list(LIP_OUTER_LOWER)
    d = (demo(demo.neutral_params().with_values(expr=demo.expr_vector(**{name: 1.0})[None]))[0]
         - demo(demo.neutral_params())[0]).detach().numpy()
    want = carry(demo.v_template.numpy()[data.origin[rings]], d[data.origin[rings]])  # the demo's lips, carried
    got = _moves(head, name)[rings]
    moving = np.linalg.norm(want, axis=1) > 0.25 * np.linalg.norm(want, axis=1).max()
    assert moving.sum() >= 6
    assert float(np.median(_cosines(got[moving], want[moving]))) > 0.95
    ratio = np.linalg.norm(got[moving]) / np.linalg.norm(want[moving])
    assert 0.6 < ratio < 1.4, ratio


@pytest.mark.parametrize("name", ["blink_left", "blink_right"])
def test_named_blinks_close_the_right_eyelid_as_on_the_demo_head(head, name):
    data = flame_like()
    truth = data.named[name]  # the demo's blink carried onto this head's vertices (unknown to the head)
    lid = np.linalg.norm(truth, axis=1) > 0.3 * np.linalg.norm(truth, axis=1).max()
    got = _moves(head, name)
    assert float(np.median(_cosines(got[lid], truth[lid]))) > 0.95
    assert float(np.mean(got[lid, 1])) < 0  # the upper lid comes down
    other = data.named["blink_right" if name == "blink_left" else "blink_left"]
    other_lid = np.linalg.norm(other, axis=1) > 0.3 * np.linalg.norm(other, axis=1).max()
    assert np.linalg.norm(got[other_lid], axis=1).mean() < 0.2 * np.linalg.norm(got[lid], axis=1).mean()


def test_named_expressions_drive_poses_and_jaw_open_is_the_jaw(head):
    assert head.expression_names[:2] == ("smile", "frown") and "named expressions derived" in head.notes.expressions
    avatar = Avatar(head, _one_gaussian(), head.neutral_params())
    p = apply_pose(avatar, Pose(expressions={"smile": 0.5, "expr_3": 1.0, "jaw_open": 1.0}))
    torch.testing.assert_close(p.expr[0], head.expr_vector(smile=0.5) + torch.eye(head.n_expr)[3])
    assert float(p.jaw_pose[0, 0]) > math.radians(5)
    with pytest.raises(ValueError, match="jaw rotation"):
        head.expr_vector(jaw_open=1.0)
    with pytest.raises(ValueError, match="mixes"):
        head.expression_index("smile")


def _one_gaussian() -> BoundGaussians:
    z = torch.zeros
    return BoundGaussians(torch.zeros(1, dtype=torch.long), z(1, 3), torch.tensor([[1.0, 0, 0, 0]]), z(1, 3) - 4,
                          z(1), z(1, 1, 3), torch.zeros(1, dtype=torch.long))
