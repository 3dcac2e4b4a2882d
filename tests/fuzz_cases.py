"""Every file loader, with a small valid seed file and the mutations that turn it hostile; `attempt` runs
one loader on one input and says whether it was accepted, refused with the project's own error naming
what the user gave, or escaped (another exception, or a message that does not name it).

Shared by tests/test_fuzz_loaders.py (hypothesis draws the mutations) and bench/robustness.py (a seeded
random.Random draws them).
"""

from __future__ import annotations

import functools
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.data.vhap_format import DatasetError
from engine.head.flame_file import FlameFileError
from engine.io.atomic import FileFormatError
from tests import fuzz_mutate as fm

TIME_BOUND_S = 10.0
"""Longest any single rejection may take (generous: the machine is shared; rejections take milliseconds)."""


@dataclass(frozen=True)
class Outcome:
    """What a loader did with one input."""

    kind: str  # "accepted", "refused" (the project's error, naming the input) or "escaped"
    seconds: float  # wall time of the attempt
    detail: str  # the error's type and message, or "" when accepted


def attempt(load: Callable[[], object], errors: tuple[type[BaseException], ...], names: str) -> Outcome:
    """Run load(); a refusal must raise one of errors with `names` (the path or URL given) in its message."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load()
    except errors as exc:
        kind = "refused" if names in str(exc) else "escaped"
        return Outcome(kind, time.perf_counter() - start, f"{type(exc).__name__}: {str(exc)[:300]}")
    except Exception as exc:  # noqa: BLE001 - this is what the fuzzing looks for
        return Outcome("escaped", time.perf_counter() - start, f"{type(exc).__name__}: {str(exc)[:300]}")
    return Outcome("accepted", time.perf_counter() - start, "")


@dataclass(frozen=True)
class LoaderCase:
    """One loader: which seed file is mutated, how, and how the loader is called on the seed folder."""

    name: str
    target: str  # the file inside the seed folder that is mutated
    mutate: fm.Mutation
    load: Callable[[Path], object]  # called with the folder (or file) path, as a user would give it
    errors: tuple[type[BaseException], ...]
    by_file: bool = False  # load() gets the target file's path instead of the folder's

    def run(self, folder: Path, data: bytes) -> Outcome:
        """Write data as the target in folder, load, then restore the seed."""
        target = folder / self.target
        original = target.read_bytes()
        target.write_bytes(data)
        given = target if self.by_file else folder
        try:
            return attempt(lambda: self.load(given), self.errors, str(given))
        finally:
            target.write_bytes(original)

    def seed(self, folder: Path) -> bytes:
        return (folder / self.target).read_bytes()


# ---- seeds ------------------------------------------------------------------------------------------------
@functools.cache
def small_avatar():
    """The demo avatar cut to 300 Gaussians over two frames (fast to save and load)."""
    from dataclasses import replace

    from engine.avatar.demo import load_demo_avatar

    avatar = load_demo_avatar()
    keep = torch.linspace(0, avatar.gaussians.count - 1, 300).long()
    params = avatar.head.neutral_params(2)
    return replace(avatar, gaussians=avatar.gaussians.subset(keep), params=params)


def _write_ascii_ply(path: Path) -> None:
    from plyfile import PlyData, PlyElement

    from engine.avatar.files import save_splats_ply

    avatar = small_avatar()
    save_splats_ply(avatar.splats(), path)
    binary = PlyData.read(str(path), mmap=False)
    PlyData([PlyElement.describe(binary["vertex"].data[:40], "vertex")], text=True).write(str(path))


def _write_flame_files(folder: Path) -> None:
    from tests.helpers_head import tiny_flame_arrays, write_chumpy_pickle

    arrays = tiny_flame_arrays(n_shape=4, n_expr=4)
    write_chumpy_pickle(folder / "generic_model.pkl", arrays)
    np.savez(folder / "FLAME_NEUTRAL.npz", **arrays)
    n = arrays["v_template"].shape[0]
    masks = {"lips": np.arange(0, n, 7), "nose": np.arange(1, n, 11), "neck": np.arange(2, n, 5)}
    import pickle

    (folder / "FLAME_masks.pkl").write_bytes(pickle.dumps(masks, protocol=2))


def _write_dataset(root: Path) -> None:
    from engine.data.vhap_writer import FrameSample, write_dataset
    from engine.render.camera import orbit_camera

    avatar = small_avatar()
    camera = orbit_camera(0.0, 0.0, 1.0, width=16, height=12)
    image = torch.rand(12, 16, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(-1, 5, (12, 16), generator=torch.Generator().manual_seed(1))
    sample = FrameSample("train", 0, 0, camera, image, torch.ones(12, 16) * 0.5, labels)
    params = avatar.head.neutral_params(1)
    write_dataset(root / "dataset", [sample], {0: params}, params)


def _write_project(path: Path) -> None:
    from engine.edit.adjust import AdjustParams, adjust_layer, selection_from_components
    from engine.project.project_file import Project, save_project

    avatar = small_avatar()
    selection = selection_from_components(avatar.gaussians, ["lips", "skin"]).float()
    layer = adjust_layer(avatar.gaussians, selection, AdjustParams(brightness=0.3, tint=(0.9, 0.2, 0.1), strength=0.5))
    project = Project(avatar=avatar, layers=[layer], selections={"current": selection},
                      prompt_history=[{"prompt": "blue lips"}], ui={"frame": 1}, sequence=avatar.params)
    save_project(project, path)


@functools.cache
def seed_folder() -> Path:
    """A folder with one valid file of every kind (built once per process)."""
    from engine.avatar.files import save_avatar
    from engine.semantics.selection import Selection, save_selection

    root = Path(tempfile.mkdtemp(prefix="fuzz-seeds-"))
    avatar = small_avatar()
    save_avatar(avatar, root / "avatar")
    _write_ascii_ply(root / "ascii.ply")
    (root / "flame").mkdir()
    _write_flame_files(root / "flame")
    _write_dataset(root)
    _write_project(root / "project.dap")
    save_selection(Selection(torch.rand(300, generator=torch.Generator().manual_seed(2)), 0.4), root / "selection.npz")
    shutil.copy(root / "avatar" / "flame_param.npz", root / "sequence.npz")
    return root


# ---- mutations per kind -----------------------------------------------------------------------------------
PLY_HEADER_EDITS: tuple[tuple[bytes, bytes], ...] = (
    (b"property float x", b"property list uchar float x"), (b"property float y", b"property double y"),
    (b"property float opacity", b"property flot opacity"), (b"end_header", b"end_hdr"),
    (b"format binary_little_endian", b"format ascii"), (b"format ascii", b"format binary_big_endian"),
    (b"element vertex", b"element face"), (b"property float z", b"property float x"),
)


def mutate_ply(data: bytes, rnd: random.Random) -> bytes:
    roll = rnd.random()
    if roll < 0.4:
        old, new = rnd.choice(PLY_HEADER_EDITS)
        if old in data[:8192]:
            return data.replace(old, new, 1)
    if roll < 0.55:
        head_end = data.find(b"end_header")
        return fm.huge_digits(data[:head_end], rnd) + data[head_end:]
    return fm.mutate_bytes(data, rnd)


def _member_mutation(name: str, content: bytes, rnd: random.Random) -> bytes:
    if name.endswith(".json"):
        return fm.mutate_json(content, rnd)
    if name.endswith(".npz"):
        return fm.mutate_npz(content, rnd)
    if name.endswith(".ply"):
        return mutate_ply(content, rnd)
    return fm.mutate_bytes(content, rnd)


def mutate_project(data: bytes, rnd: random.Random) -> bytes:
    if rnd.random() < 0.1:
        return fm.mutate_bytes(data, rnd)
    return fm.mutate_zip(data, rnd, inner=_member_mutation) if rnd.random() < 0.4 else _mutate_one_member(data, rnd)


def _mutate_one_member(data: bytes, rnd: random.Random) -> bytes:
    members = fm._members(data)
    name = rnd.choice(sorted(members))
    members[name] = _member_mutation(name, members[name], rnd)
    return fm._zip(members)


def mutate_png(data: bytes, rnd: random.Random) -> bytes:
    """Damaged bytes, or a valid PNG header declaring a huge image (a decompression bomb)."""
    if rnd.random() < 0.3:
        return png_declaring(rnd.choice([(100_000, 100_000), (20_000, 20_000), (1, 10**9), (0, 5)]))
    return fm.mutate_bytes(data, rnd)


def png_declaring(size: tuple[int, int]) -> bytes:
    """A PNG whose header declares size (width, height) with one tiny compressed row."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", size[0], size[1], 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def mutate_pickle(data: bytes, rnd: random.Random) -> bytes:
    from tests.pickle_payloads import PAYLOADS, payload_pickle

    if rnd.random() < 0.35:
        return payload_pickle(rnd.choice(PAYLOADS), rnd.choice([0, 2, 4, 5]))
    return fm.mutate_bytes(data, rnd)


# ---- loaders ----------------------------------------------------------------------------------------------
def _load_avatar(folder: Path) -> object:
    from engine.avatar.files import load_avatar

    return load_avatar(folder / "avatar")


def _load_splats(path: Path) -> object:
    from engine.avatar.files import load_splats_ply

    return load_splats_ply(path)


def _read_flame(path: Path) -> object:
    from engine.head.flame_file import read_flame_arrays

    return read_flame_arrays(path)


def _read_masks(path: Path) -> object:
    from engine.head.flame_masks import read_flame_masks

    return read_flame_masks(path)


def _read_dataset(root: Path) -> object:
    from engine.data.frames import FrameLoader
    from engine.data.vhap_format import read_dataset

    dataset = read_dataset(root)
    loader = FrameLoader(capacity=0)
    frames = [loader.load(r, (8, 6)) for r in dataset.frames("train")]
    return dataset.flame_params(), dataset.canonical_params(), frames


def _load_project(path: Path) -> object:
    from engine.project.project_file import load_project

    project = load_project(path)
    return project.composed_avatar()


def _load_selection(path: Path) -> object:
    from engine.semantics.selection import load_selection

    return load_selection(path, 300)


def _load_sequence(path: Path) -> object:
    from engine.export.video import load_sequence

    return load_sequence(path, small_avatar())


AVATAR = (FileFormatError,)
CASES: tuple[LoaderCase, ...] = (
    LoaderCase("ply_binary", "avatar/point_cloud.ply", mutate_ply, _load_avatar, AVATAR),
    LoaderCase("ply_ascii", "ascii.ply", mutate_ply, _load_splats, AVATAR, by_file=True),
    LoaderCase("avatar_manifest", "avatar/avatar.json", fm.mutate_json, _load_avatar, AVATAR),
    LoaderCase("flame_params_npz", "avatar/flame_param.npz", fm.mutate_npz, _load_avatar, AVATAR),
    LoaderCase("flame_model_pkl", "flame/generic_model.pkl", mutate_pickle, _read_flame, (FlameFileError,), by_file=True),
    LoaderCase("flame_model_npz", "flame/FLAME_NEUTRAL.npz", fm.mutate_npz, _read_flame, (FlameFileError,), by_file=True),
    LoaderCase("flame_masks_pkl", "flame/FLAME_masks.pkl", mutate_pickle, _read_masks, (FlameFileError,), by_file=True),
    LoaderCase("dataset_json", "dataset/transforms_train.json", fm.mutate_json, lambda f: _read_dataset(f / "dataset"),
               (DatasetError,)),
    LoaderCase("dataset_npz", "dataset/flame_param/00000.npz", fm.mutate_npz, lambda f: _read_dataset(f / "dataset"),
               (DatasetError,)),
    LoaderCase("dataset_image", "dataset/images/00000_00.png", mutate_png, lambda f: _read_dataset(f / "dataset"),
               (DatasetError,)),
    LoaderCase("label_map", "dataset/labels/00000_00.png", mutate_png, lambda f: _read_dataset(f / "dataset"),
               (DatasetError,)),
    LoaderCase("project_dap", "project.dap", mutate_project, _load_project, AVATAR, by_file=True),
    LoaderCase("selection_npz", "selection.npz", fm.mutate_npz, _load_selection, AVATAR, by_file=True),
    LoaderCase("sequence_npz", "sequence.npz", fm.mutate_npz, _load_sequence, AVATAR, by_file=True),
)
"""Every file loader. sequence_npz is the video export's input file (no video decoder is on main yet)."""


def case(name: str) -> LoaderCase:
    return next(c for c in CASES if c.name == name)
