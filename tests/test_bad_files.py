"""Damaged files are refused with an error naming the file and the problem, never a stray exception:
standard splat plys (load_splats_ply), selection .npz files, avatar folders without flame_param.npz."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import numpy.lib.recfunctions as rfn
import pytest
import torch
from plyfile import PlyData, PlyElement

from engine.avatar.files import load_avatar, load_splats_ply, save_avatar, save_splats_ply
from engine.io.atomic import FileFormatError
from engine.semantics.selection import SELECTION_FORMAT, Selection, load_selection, save_selection
from tests.test_export_video import tiny_avatar
from tests.test_project_file import head_on_disk


@pytest.fixture
def ply(tmp_path: Path) -> tuple[Path, object]:
    avatar = tiny_avatar(n=40)
    splats = avatar.splats(avatar.frame_params(0))
    save_splats_ply(splats, tmp_path / "s.ply")
    return tmp_path / "s.ply", splats


def _rewrite(src: Path, dst: Path, keep=lambda name: True, text: bool = False) -> Path:
    """A copy of a ply with only the vertex properties `keep` accepts (plyfile writes it)."""
    vertex = PlyData.read(str(src))["vertex"].data
    names = [n for n in vertex.dtype.names if keep(n)]
    PlyData([PlyElement.describe(rfn.repack_fields(vertex[names]), "vertex")], text=text).write(str(dst))
    return dst


def test_load_splats_ply_refuses_damaged_files(ply, tmp_path: Path) -> None:
    path, _ = ply
    whole = path.read_bytes()
    header_end = whole.index(b"end_header\n") + len(b"end_header\n")
    cases = {
        "missing.ply": (None, "file not found"),
        "empty.ply": (b"", "not a valid ply file"),
        "garbage.ply": (b"\x89PNG not a ply" * 30, "not a valid ply file"),
        "cut.ply": (whole[: (header_end + len(whole)) // 2], "truncated or damaged: the header declares 40 vertices"),
        "header_only.ply": (whole[:header_end], "truncated or damaged: the header declares 40 vertices"),
        "rest44.ply": (whole.replace(b"property float f_rest_44\n", b""), "44 f_rest properties"),
    }
    for name, (content, problem) in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(FileFormatError, match=rf"{name}: .*{problem}|{name}: {problem}"):
            load_splats_ply(tmp_path / name)
    _rewrite(path, tmp_path / "no_opacity.ply", lambda n: n != "opacity")
    with pytest.raises(FileFormatError, match=r"no_opacity\.ply: missing properties opacity"):
        load_splats_ply(tmp_path / "no_opacity.ply")
    vertex = PlyData.read(str(path))["vertex"].data.copy()
    vertex["scale_1"][3] = np.nan
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(tmp_path / "nan.ply"))
    with pytest.raises(FileFormatError, match=r"nan\.ply: property scale_1 holds 1 NaN"):
        load_splats_ply(tmp_path / "nan.ply")


def test_load_splats_ply_reads_sh_degree_0_and_ascii_files(ply, tmp_path: Path) -> None:
    path, splats = ply
    dc_only = load_splats_ply(_rewrite(path, tmp_path / "dc.ply", lambda n: not n.startswith("f_rest")))
    assert dc_only.sh.shape == (40, 1, 3)
    torch.testing.assert_close(dc_only.sh[:, 0], splats.sh[:, 0].detach())
    ascii_ = load_splats_ply(_rewrite(path, tmp_path / "ascii.ply", text=True))
    binary = load_splats_ply(path)
    for field in ("means", "quats", "scales", "opacities", "sh"):
        torch.testing.assert_close(getattr(ascii_, field), getattr(binary, field), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(binary.means, splats.means.detach())


def test_damaged_selection_files_are_refused(tmp_path: Path) -> None:
    save_selection(Selection(torch.rand(30, generator=torch.Generator().manual_seed(0))), tmp_path / "sel.npz")
    whole = (tmp_path / "sel.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "sel.npz") as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(tmp_path / "member.npz", "w") as zf:  # a zip whose weights array is cut short
        for n, data in members.items():
            zf.writestr(n, data[:20] if n.startswith("weights") else data)
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"garbage" * 20)
    fields = {"format": np.array(SELECTION_FORMAT), "version": np.array(1), "weights": np.array([0.2, 0.5]),
              "threshold": np.array(0.5)}
    variants = {
        "nan": ({"weights": np.array([np.nan, 0.5])}, "weights must be a 1-D array of values in \\[0, 1\\]"),
        "big": ({"weights": np.array([0.5, 1.5])}, "weights must be a 1-D array of values in \\[0, 1\\]"),
        "words": ({"weights": np.array(["a", "b"])}, "weights must be a 1-D array of numbers"),
        "thresholds": ({"threshold": np.array([0.5, 0.2])}, "version must be a whole number and threshold a number"),
        "version": ({"version": np.array("x")}, "version must be a whole number and threshold a number"),
        "newer": ({"version": np.array(99)}, "selection format 99 is newer"),
        "pickled": ({"extra_x": np.array([1], dtype=object)}, "cannot read selection"),
        "other": ({"format": np.array("something-else")}, "not a selection file"),
    }
    for name, (change, _) in variants.items():
        np.savez(tmp_path / f"{name}.npz", **(fields | change))
    np.savez(tmp_path / "no_weights.npz", **{k: v for k, v in fields.items() if k != "weights"})
    cases = {f"{name}.npz": problem for name, (_, problem) in variants.items()} | {
        "member.npz": "cannot read selection", "cut.npz": "cannot read selection",
        "garbage.npz": "cannot read selection", "no_weights.npz": "weights must be a 1-D array of numbers", "gone.npz": "not found"}
    for name, problem in cases.items():
        with pytest.raises(FileFormatError, match=rf"{name}: .*{problem}|{name}: {problem}"):
            load_selection(tmp_path / name)
    with pytest.raises(FileFormatError, match=r"sel\.npz: selection has 30 Gaussians, the avatar has 31"):
        load_selection(tmp_path / "sel.npz", 31)


def test_avatar_folder_without_flame_params(tmp_path: Path) -> None:
    head = head_on_disk(tmp_path / "flame")
    avatar = tiny_avatar(n=50, head=head)
    shape = avatar.params.shape.clone()
    shape[0] = 1.0  # a shape of its own: losing flame_param.npz would change the head
    avatar = type(avatar)(avatar.head, avatar.gaussians, avatar.params.with_values(shape=shape), "a")
    folder = save_avatar(avatar, tmp_path / "avatar")
    torch.testing.assert_close(load_avatar(folder).params.shape, shape)
    (folder / "flame_param.npz").unlink()
    with pytest.raises(FileFormatError, match=r"avatar/flame_param\.npz: missing"):
        load_avatar(folder)
    bare = tmp_path / "bare"  # a ply alone (no avatar.json): the head's neutral parameters, as documented
    bare.mkdir()
    shutil.copy(folder / "point_cloud.ply", bare / "point_cloud.ply")
    loaded = load_avatar(bare, head=head)
    assert loaded.params.frames == 1 and float(loaded.params.shape.abs().sum()) == 0.0
    assert loaded.gaussians.equal(avatar.gaussians)
