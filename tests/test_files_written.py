"""Files the app writes: permissions follow the user's umask (an existing file keeps its own), every writer
goes through the atomic path, and a failed write (the kernel refusing to grow the file past a limit, as on
a full disk) leaves the previous file byte for byte and says so, with no temporary file left behind."""

from __future__ import annotations

import errno
import os
import resource
import signal
import stat
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.avatar.flame_npz import save_flame_params
from engine.data.vhap_writer import atomic_write_bytes
from engine.export.splat_export import export_gaussianavatars, export_standard_ply
from engine.export.video import VideoJob, VideoSettings, export_video
from engine.io.atomic import WriteFailed
from engine.io.images import save_png
from engine.project.project_file import Project, save_project
from engine.semantics.selection import Selection, save_selection
from tests.fuzz_cases import small_avatar

TINY_VIDEO = VideoSettings(width=32, height=32, fps=10.0, duration_s=0.8, renderer="fast", preset="ultrafast")


def _video(path: Path) -> None:
    export_video(VideoJob(small_avatar()), path, TINY_VIDEO)


WRITERS = {
    "splat_ply": lambda p: export_standard_ply(small_avatar(), p),
    "project": lambda p: save_project(Project(avatar=small_avatar()), p),
    "selection": lambda p: save_selection(Selection(torch.rand(300)), p),
    "flame_params": lambda p: save_flame_params(small_avatar().params, p),
    "png": lambda p: save_png(p, np.random.default_rng(0).random((64, 64, 3))),
    "dataset_file": lambda p: atomic_write_bytes(p, os.urandom(20_000)),
    "video": _video,
}
SUFFIX = {"splat_ply": ".ply", "project": ".dap", "selection": ".npz", "flame_params": ".npz", "png": ".png",
          "dataset_file": ".png", "video": ".mp4"}


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("name", sorted(WRITERS))
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_new_files_follow_the_umask(tmp_path, name, mask):
    path = tmp_path / f"out{SUFFIX[name]}"
    with umask(mask):
        WRITERS[name](path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "avatar.ply"
    path.write_bytes(b"old")
    path.chmod(0o640)
    with umask(0o022):
        export_standard_ply(small_avatar(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_bytes().startswith(b"ply\n")


def test_gaussianavatars_export_follows_the_umask(tmp_path):
    with umask(0o022):
        folder = export_gaussianavatars(small_avatar(), tmp_path / "ga")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes


@contextmanager
def file_size_limit(limit: int):
    """The kernel refuses writes past `limit` bytes (EFBIG), as a full disk refuses them (ENOSPC)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_failed_write_keeps_the_previous_file_and_says_so(tmp_path, name):
    small_avatar()  # loaded before the limit
    path = tmp_path / f"work{SUFFIX[name]}"
    previous = b"the previous version, which must survive"
    path.write_bytes(previous)
    with file_size_limit(1024), pytest.raises(OSError) as info:
        WRITERS[name](path)
    assert path.read_bytes() == previous
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert isinstance(info.value, WriteFailed) and info.value.errno == errno.EFBIG
    assert str(info.value) == f"{path}: could not be written (File too large); the previous file is unchanged"


def test_a_failed_first_write_leaves_nothing(tmp_path):
    path = tmp_path / "new.dap"
    with file_size_limit(1024), pytest.raises(WriteFailed, match="new.dap: could not be written .*nothing was written"):
        save_project(Project(avatar=small_avatar()), path)
    assert list(tmp_path.iterdir()) == []
