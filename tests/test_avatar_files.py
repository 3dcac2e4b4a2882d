"""Avatar folders, 3DGS ply and flame_param.npz: exact round trips and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plyfile import PlyData

from engine.avatar.avatar import Avatar
from engine.avatar.files import load_avatar, load_gaussians_ply, load_splats_ply, save_avatar, save_splats_ply
from engine.avatar.flame_npz import load_flame_params, save_flame_params
from engine.avatar.gaussians import BoundGaussians
from engine.avatar.ply import read_ply, write_ply
from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.io.atomic import FileFormatError
from tests.helpers_head import tiny_flame_arrays


@pytest.fixture()
def head() -> HeadModel:
    return HeadModel(tiny_flame_arrays(), "tiny", "tiny")


def _gaussians(n: int, faces: int, seed: int = 0) -> BoundGaussians:
    gen = torch.Generator().manual_seed(seed)
    return BoundGaussians(
        binding=torch.randint(0, faces, (n,), generator=gen),
        xyz=torch.randn(n, 3, generator=gen),
        rotation=torch.randn(n, 4, generator=gen),
        log_scale=torch.randn(n, 3, generator=gen) - 3,
        opacity_logit=torch.randn(n, generator=gen),
        sh=torch.randn(n, 16, 3, generator=gen),
        labels=torch.randint(0, 13, (n,), generator=gen),
    )


def _params(frames: int, head: HeadModel) -> FlameParams:
    gen = torch.Generator().manual_seed(5)
    r = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    return FlameParams(r(300), r(frames, 100), r(frames, 3), r(frames, 3), r(frames, 3), r(frames, 6), r(frames, 3),
                       static_offset=r(head.n_verts, 3) * 0.001, dynamic_offset=r(frames, head.n_verts, 3) * 0.001)


def test_avatar_folder_round_trip_is_exact(tmp_path, head):
    avatar = Avatar(head, _gaussians(500, head.n_faces), _params(4, head), "sam")
    save_avatar(avatar, tmp_path / "sam")
    back = load_avatar(tmp_path / "sam", head=head)
    assert back.gaussians.equal(avatar.gaussians)
    for key in ("shape", "expr", "rotation", "neck_pose", "jaw_pose", "eyes_pose", "translation", "static_offset", "dynamic_offset"):
        assert torch.equal(getattr(back.params, key), getattr(avatar.params, key)), key
    assert back.name == "sam"
    torch.testing.assert_close(back.splats(back.frame_params(2)).means, avatar.splats(avatar.frame_params(2)).means)


def test_gaussianavatars_ply_layout_is_read_by_plyfile(tmp_path, head):
    g = _gaussians(50, head.n_faces)
    save_avatar(Avatar(head, g, head.neutral_params()), tmp_path)
    ply = PlyData.read(str(tmp_path / "point_cloud.ply"))
    names = ply["vertex"].data.dtype.names
    assert names[:9] == ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")
    assert [n for n in names if n.startswith("f_rest_")] == [f"f_rest_{i}" for i in range(45)]
    assert "binding_0" in names and "opacity" in names and "rot_3" in names
    # SH rest is channel-major: f_rest_0..14 are red, 15..29 green, 30..44 blue.
    np.testing.assert_array_equal(ply["vertex"]["f_rest_0"], g.sh[:, 1, 0].numpy())
    np.testing.assert_array_equal(ply["vertex"]["f_rest_15"], g.sh[:, 1, 1].numpy())
    np.testing.assert_array_equal(ply["vertex"]["f_rest_44"], g.sh[:, 15, 2].numpy())


def test_labels_default_to_triangle_labels(tmp_path, head):
    g = _gaussians(20, head.n_faces)
    save_avatar(Avatar(head, g, head.neutral_params()), tmp_path)
    cols = read_ply(tmp_path / "point_cloud.ply")
    cols.pop("label")
    write_ply(tmp_path / "point_cloud.ply", cols)
    back = load_gaussians_ply(tmp_path / "point_cloud.ply", head)
    assert torch.equal(back.labels, head.face_labels[g.binding])


def test_standard_ply_round_trip(tmp_path, head):
    splats = Avatar(head, _gaussians(100, head.n_faces), head.neutral_params()).splats()
    save_splats_ply(splats, tmp_path / "s.ply")
    back = load_splats_ply(tmp_path / "s.ply")
    torch.testing.assert_close(back.means, splats.means)
    torch.testing.assert_close(back.scales, splats.scales, rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(back.opacities, splats.opacities, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(back.sh, splats.sh)
    assert "binding_0" not in PlyData.read(str(tmp_path / "s.ply"))["vertex"].data.dtype.names


def _valid_ply(tmp_path, head) -> str:
    save_avatar(Avatar(head, _gaussians(30, head.n_faces), head.neutral_params()), tmp_path)
    return str(tmp_path / "point_cloud.ply")


def test_ply_with_missing_field(tmp_path, head):
    path = _valid_ply(tmp_path, head)
    cols = read_ply(path)
    cols.pop("scale_1")
    write_ply(path, cols)
    with pytest.raises(FileFormatError, match="point_cloud.ply: missing properties scale_1"):
        load_gaussians_ply(path, head)


def test_ply_with_nan(tmp_path, head):
    path = _valid_ply(tmp_path, head)
    cols = read_ply(path)
    cols["opacity"][3] = np.nan
    write_ply(path, cols)
    with pytest.raises(FileFormatError, match="property opacity holds 1 NaN"):
        load_gaussians_ply(path, head)


def test_truncated_ply(tmp_path, head):
    path = _valid_ply(tmp_path, head)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) - 500])
    with pytest.raises(FileFormatError, match="point_cloud.ply: .*truncated|point_cloud.ply: header declares"):
        load_gaussians_ply(path, head)


def test_ply_binding_beyond_head(tmp_path, head):
    path = _valid_ply(tmp_path, head)
    cols = read_ply(path)
    cols["binding_0"][0] = 9975
    write_ply(path, cols)
    with pytest.raises(FileFormatError, match="bound to triangle 9975, but head 'tiny' has 4 triangles"):
        load_gaussians_ply(path, head)


def test_garbage_ply(tmp_path, head):
    (tmp_path / "x.ply").write_bytes(b"not a ply at all")
    with pytest.raises(FileFormatError, match="x.ply: not a valid ply"):
        load_gaussians_ply(tmp_path / "x.ply", head)


def test_flame_npz_errors(tmp_path, head):
    good = _params(3, head)
    save_flame_params(good, tmp_path / "p.npz")
    data = dict(np.load(tmp_path / "p.npz"))
    data["jaw_pose"] = data["jaw_pose"][:2]
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(FileFormatError, match=r"bad.npz: jaw_pose must be \[3, 3\]"):
        load_flame_params(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04nonsense")
    with pytest.raises(FileFormatError, match="junk.npz: not a readable .npz"):
        load_flame_params(tmp_path / "junk.npz")
    with pytest.raises(FileFormatError, match="missing.npz: FLAME parameter file not found"):
        load_flame_params(tmp_path / "missing.npz")


def test_failed_save_keeps_previous_file(tmp_path, head, monkeypatch):
    avatar = Avatar(head, _gaussians(40, head.n_faces), head.neutral_params())
    save_avatar(avatar, tmp_path)
    before = (tmp_path / "point_cloud.ply").read_bytes()
    import engine.io.atomic

    def failing_fsync(_fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(engine.io.atomic.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_avatar(Avatar(head, _gaussians(41, head.n_faces, seed=9), head.neutral_params()), tmp_path)
    assert (tmp_path / "point_cloud.ply").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
