"""VHAP / GaussianAvatars dataset layout: writer -> reader round trip, conventions, validation, frame loading."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.data.frames import FrameLoader, load_image, load_labels, load_mask, resize_labels
from engine.data.vhap_format import DatasetError, read_dataset
from engine.data.vhap_writer import FrameSample, vhap_split, write_dataset
from engine.head.params import FlameParams
from engine.render.camera import Camera, orbit_camera

SIZE = 32
N_VERTS = 7


def _camera(index: int) -> Camera:
    cam = orbit_camera(yaw_deg=-25.0 + 50.0 * index, pitch_deg=5.0 * index, radius=1.2, width=SIZE, height=SIZE)
    return Camera(
        cam.world_to_cam, fx=cam.fx, fy=cam.fy * 1.05, cx=15.25 + index, cy=17.5 - index, width=SIZE, height=SIZE
    )


def _flame(t: int, gen: torch.Generator) -> FlameParams:
    r = lambda *s: torch.randn(*s, generator=gen)
    shape = torch.linspace(-1, 1, 300)
    return FlameParams(
        shape,
        r(1, 100),
        r(1, 3),
        r(1, 3),
        r(1, 3),
        r(1, 6),
        r(1, 3),
        static_offset=torch.ones(N_VERTS, 3) * 0.01,
        dynamic_offset=r(1, N_VERTS, 3),
    )


def _sample(split: str, t: int, c: int, gen: torch.Generator) -> FrameSample:
    image = torch.randint(0, 256, (SIZE, SIZE, 3), generator=gen).float() / 255.0
    mask = torch.randint(0, 256, (SIZE, SIZE), generator=gen).float() / 255.0
    labels = torch.randint(-1, 13, (SIZE, SIZE), generator=gen)
    return FrameSample(split, t, c, _camera(c), image, mask, labels)


@pytest.fixture()
def written(tmp_path: Path) -> tuple[Path, dict, dict]:
    gen = torch.Generator().manual_seed(0)
    split_of = vhap_split([0, 1, 2], [0, 1], train_ratio=0.6)
    samples = {(t, c): _sample(split_of(t, c), t, c, gen) for t in range(3) for c in range(2)}
    flame = {t: _flame(t, gen) for t in range(3)}
    canonical = FlameParams.neutral().with_values(jaw_pose=torch.tensor([[0.3, 0.0, 0.0]]))
    write_dataset(tmp_path / "ds", (samples[k] for k in sorted(samples)), flame, canonical)
    return tmp_path / "ds", samples, flame


def test_round_trip(written: tuple[Path, dict, dict]) -> None:
    root, samples, flame = written
    ds = read_dataset(root)
    assert sorted(ds.splits) == ["test", "train", "val"]
    assert [(f.timestep, f.camera_index) for f in ds.frames("train")] == [(0, 0), (1, 0)]
    assert [(f.timestep, f.camera_index) for f in ds.frames("val")] == [(0, 1), (1, 1)]
    assert [(f.timestep, f.camera_index) for f in ds.frames("test")] == [(2, 0), (2, 1)]
    loader = FrameLoader()
    for records in ds.splits.values():
        for rec in records:
            want = samples[(rec.timestep, rec.camera_index)]
            cam = rec.camera
            torch.testing.assert_close(cam.world_to_cam, want.camera.world_to_cam, atol=1e-5, rtol=0)
            for k in ("fx", "fy", "cx", "cy"):
                assert getattr(cam, k) == pytest.approx(getattr(want.camera, k), abs=1e-9)
            assert (cam.width, cam.height) == (SIZE, SIZE)
            frame = loader.load(rec)
            assert torch.equal(frame.image, want.image)
            assert torch.equal(frame.mask, want.mask)
            assert torch.equal(frame.labels, want.labels)
    params = ds.flame_params("train")
    assert ds.timesteps("train") == [0, 1]
    for name in ("expr", "rotation", "neck_pose", "jaw_pose", "eyes_pose", "translation", "dynamic_offset"):
        torch.testing.assert_close(
            getattr(params, name), torch.cat([getattr(flame[t], name) for t in (0, 1)]), atol=0, rtol=0
        )
    torch.testing.assert_close(params.shape, flame[0].shape, atol=0, rtol=0)
    torch.testing.assert_close(params.static_offset, flame[0].static_offset, atol=0, rtol=0)
    assert ds.flame_params("test").expr.shape == (1, 100)
    torch.testing.assert_close(ds.flame_params(None).expr, torch.cat([flame[t].expr for t in range(3)]), atol=0, rtol=0)
    canonical = ds.canonical_params()
    assert canonical.frames == 1 and canonical.jaw_pose[0, 0].item() == pytest.approx(0.3)
    assert canonical.dynamic_offset is None
    assert not list(root.rglob("*.tmp")), "temporary files left behind"


def test_written_keys_match_vhap(written: tuple[Path, dict, dict]) -> None:
    root, _, _ = written
    db = json.loads((root / "transforms_train.json").read_text())
    frame = db["frames"][0]
    for key in (
        "timestep_index",
        "camera_index",
        "cx",
        "cy",
        "fl_x",
        "fl_y",
        "w",
        "h",
        "camera_angle_x",
        "camera_angle_y",
        "transform_matrix",
        "file_path",
        "fg_mask_path",
        "flame_param_path",
    ):
        assert key in frame, key
    assert frame["file_path"] == "images/00000_00.png" and frame["flame_param_path"] == "flame_param/00000.npz"
    assert frame["fg_mask_path"] == "fg_masks/00000_00.png" and frame["label_path"] == "labels/00000_00.png"
    assert db["timestep_indices"] == [0, 1] and db["camera_indices"] == [0]
    assert frame["camera_angle_x"] == pytest.approx(2 * math.atan(SIZE / (2 * frame["fl_x"])))
    with np.load(root / "flame_param/00001.npz") as npz:
        shapes = {k: npz[k].shape for k in npz.files}
    assert shapes == {
        "shape": (300,),
        "expr": (1, 100),
        "rotation": (1, 3),
        "neck_pose": (1, 3),
        "jaw_pose": (1, 3),
        "eyes_pose": (1, 6),
        "translation": (1, 3),
        "static_offset": (1, N_VERTS, 3),
        "dynamic_offset": (1, N_VERTS, 3),
    }
    assert Image.open(root / frame["file_path"]).mode == "RGB"
    assert Image.open(root / frame["label_path"]).mode == "L"


def _vhap_monocular(root: Path, cy: float = 200.0) -> None:
    """A monocular dataset written the way VHAP's exporter writes one (camera at (0, 0, 1), identity rotation)."""
    (root / "images").mkdir(parents=True)
    (root / "flame_param").mkdir()
    frames = []
    for t in range(2):
        Image.new("RGB", (64, 48), (255, 255, 255)).save(root / f"images/{t:05d}_00.png")
        np.savez(
            root / f"flame_param/{t:05d}.npz",
            shape=np.zeros(300, np.float32),
            expr=np.zeros((1, 100), np.float32),
            rotation=np.zeros((1, 3), np.float32),
            neck_pose=np.zeros((1, 3), np.float32),
            jaw_pose=np.zeros((1, 3), np.float32),
            eyes_pose=np.zeros((1, 6), np.float32),
            translation=np.zeros((1, 3), np.float32),
            static_offset=np.zeros((1, N_VERTS, 3), np.float32),
        )
        c2w = np.eye(4)
        c2w[2, 3] = 1.0
        frames.append(
            {
                "timestep_index": t,
                "timestep_index_original": t,
                "timestep_id": f"{t:05d}",
                "camera_index": 0,
                "camera_id": "0",
                "cx": 32.0,
                "cy": cy,
                "fl_x": 80.0,
                "fl_y": 80.0,
                "h": 48,
                "w": 64,
                "camera_angle_x": 0.7,
                "camera_angle_y": 0.6,
                "transform_matrix": c2w.tolist(),
                "file_path": f"images/{t:05d}_00",
                "flame_param_path": f"flame_param/{t:05d}.npz",
            }
        )
    db = {
        "frames": frames,
        "cx": 32.0,
        "cy": cy,
        "fl_x": 80.0,
        "fl_y": 80.0,
        "h": 48,
        "w": 64,
        "timestep_indices": [0, 1],
        "camera_indices": [0],
    }
    (root / "transforms_train.json").write_text(json.dumps(db))
    (root / "transforms_val.json").write_text(json.dumps({**db, "frames": [], "camera_indices": []}))
    np.savez(root / "canonical_flame_param.npz", **dict(np.load(root / "flame_param/00000.npz")))


def test_vhap_monocular_conventions(tmp_path: Path) -> None:
    _vhap_monocular(tmp_path)
    ds = read_dataset(tmp_path)
    assert ds.frames("val") == () and "test" not in ds.splits
    rec = ds.frames("train")[0]
    assert rec.mask_path is None and rec.label_path is None
    assert rec.image_path == tmp_path / "images/00000_00.png"  # ".png" added as GaussianAvatars does
    cam = rec.camera
    assert cam.cy == pytest.approx(48 - 200.0)  # VHAP's json cy is measured from the bottom
    w2c = cam.world_to_cam.double()
    origin = w2c @ torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    assert origin[:3].tolist() == pytest.approx([0.0, 0.0, 1.0])  # the head at the origin is 1 in front
    up = w2c @ torch.tensor([0.0, 0.1, 0.0, 1.0], dtype=torch.float64)
    right = w2c @ torch.tensor([0.1, 0.0, 0.0, 1.0], dtype=torch.float64)
    assert up[1] < 0 and right[0] > 0  # world up is image up (OpenCV y down), world +x is image right
    params = ds.flame_params()
    assert params.expr.shape == (2, 100) and params.static_offset.shape == (N_VERTS, 3)


def _rewrite(path: Path, edit) -> None:
    db = json.loads(path.read_text())
    edit(db)
    path.write_text(json.dumps(db))


@pytest.mark.parametrize(
    "damage, culprit, words",
    [
        (lambda r: (r / "transforms_train.json").unlink(), "transforms_train.json", "missing"),
        (lambda r: (r / "images/00001_00.png").unlink(), "00001_00.png", "missing"),
        (lambda r: Image.new("RGB", (10, 10)).save(r / "images/00001_00.png"), "00001_00.png", "10x10"),
        (
            lambda r: _rewrite(
                r / "transforms_train.json", lambda db: db["frames"].append({**db["frames"][0], "camera_index": 1})
            ),
            "transforms_train.json",
            "frames per timestep",
        ),
        (
            lambda r: _rewrite(
                r / "transforms_train.json", lambda db: db["frames"][0]["transform_matrix"][0].__setitem__(0, 2.0)
            ),
            "transforms_train.json",
            "rigid",
        ),
        (
            lambda r: _rewrite(
                r / "transforms_train.json",
                lambda db: db["frames"][0]["transform_matrix"][1].__setitem__(3, float("nan")),
            ),
            "transforms_train.json",
            "non-finite",
        ),
        (
            lambda r: _rewrite(r / "transforms_train.json", lambda db: db["frames"][1].pop("file_path")),
            "transforms_train.json",
            "file_path",
        ),
        (lambda r: np.savez(r / "flame_param/00001.npz", shape=np.zeros(300)), "00001.npz", "missing keys"),
        (
            lambda r: np.savez(
                r / "flame_param/00000.npz", **{**dict(np.load(r / "flame_param/00001.npz")), "expr": np.zeros(100)}
            ),
            "00000.npz",
            "'expr' must be (1, E)",
        ),
        (lambda r: (r / "canonical_flame_param.npz").write_bytes(b"not a zip"), "canonical_flame_param.npz", "npz"),
    ],
)
def test_validation_names_file_and_problem(written: tuple[Path, dict, dict], damage, culprit: str, words: str) -> None:
    root, _, _ = written
    damage(root)
    with pytest.raises(DatasetError) as info:
        read_dataset(root)
    assert culprit in str(info.value) and words in str(info.value), str(info.value)


def test_a_label_map_beyond_the_components_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.png"
    Image.fromarray(np.full((4, 4), 40, np.uint8)).save(path)
    with pytest.raises(DatasetError, match="labels.png: label map holds value 40, above the 13 components"):
        load_labels(path)
    Image.fromarray(np.full((4, 4), 13, np.uint8)).save(path)
    assert int(load_labels(path).max()) == 12


def test_frames_resize_and_cache(written: tuple[Path, dict, dict]) -> None:
    root, samples, _ = written
    ds = read_dataset(root)
    rec = ds.frames("train")[0]
    want = samples[(rec.timestep, rec.camera_index)]
    loader = FrameLoader(capacity=8)
    half = loader.load(rec, (16, 16))
    expected = want.image.reshape(16, 2, 16, 2, 3).mean(dim=(1, 3))
    torch.testing.assert_close(half.image, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(half.mask, want.mask.reshape(16, 2, 16, 2).mean(dim=(1, 3)), atol=1e-6, rtol=0)
    assert half.camera.fx == pytest.approx(want.camera.fx / 2) and half.camera.cx == pytest.approx(want.camera.cx / 2)
    assert half.labels.shape == (16, 16) and half.labels.dtype == torch.int64
    misses = loader.misses
    again = loader.load(rec, (16, 16))
    assert loader.misses == misses and loader.hits >= 3 and again.image is half.image


def test_label_majority_and_rgba(tmp_path: Path) -> None:
    labels = torch.full((4, 4), -1)
    labels[:2, :2] = torch.tensor([[3, 3], [3, -1]])
    labels[2:, 2:] = torch.tensor([[5, 7], [7, 7]])
    assert resize_labels(labels, (2, 2)).tolist() == [[3, -1], [-1, 7]]
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    rgba[0, 1] = (0, 0, 0, 0)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img[0, 0].tolist() == [1.0, 0.0, 0.0] and img[0, 1].tolist() == [1.0, 1.0, 1.0]
    assert load_mask(tmp_path / "a.png")[0].tolist() == [1.0, 0.0]
    Image.fromarray(np.array([[0, 1], [2, 13]], np.uint8)).save(tmp_path / "l.png")
    assert load_labels(tmp_path / "l.png").tolist() == [[-1, 0], [1, 12]]
