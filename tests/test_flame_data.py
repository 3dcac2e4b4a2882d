"""Real data in: a VHAP-layout dataset tracked with FLAME plus teeth trains, the demo head refuses
it with what to do, and a GaussianAvatars output folder opens, renders, plays and exports back."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app import cli
from engine.avatar.files import FlameModelNeeded, load_avatar
from engine.avatar.ply import sh_to_fields, write_ply
from engine.data.synth import SynthConfig, generate
from engine.head.components import COLOURS, COMPONENTS
from engine.head.model import load_head
from engine.head.teeth import FLAME_FACES, FLAME_VERTS
from engine.render.splats import rgb_to_dc
from engine.train.config import TrainConfig
from engine.train.run import train
from tests.flame_like import flame_like

FRAMES = 3


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return flame_like().write(tmp_path_factory.mktemp("flame"))


def _set_offsets(root: Path, rows: int) -> None:
    """Give every FLAME file of a dataset a static_offset [1, rows, 3], as VHAP exports it."""
    offset = np.random.default_rng(0).normal(0, 3e-4, (1, rows, 3)).astype(np.float32)
    for path in sorted((root / "flame_param").glob("*.npz")) + [root / "canonical_flame_param.npz"]:
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["static_offset"] = offset
        np.savez(path, **arrays)


@pytest.fixture(scope="module")
def vhap_dataset(tmp_path_factory, model_file) -> Path:
    """A small VHAP-layout dataset rendered from the FLAME-like head with teeth, offsets [1, 5143, 3]."""
    root = generate(tmp_path_factory.mktemp("vhap") / "subject", SynthConfig(
        size=64, train_frames=FRAMES, test_frames=1, train_cameras=3, heldout_cameras=1), head=load_head(model_file, teeth=True))
    _set_offsets(root, 5143)
    return root


def _quick(iters: int = 4) -> TrainConfig:
    return TrainConfig(iters=iters, resolution=64, init_per_triangle=1, eval_interval=0, preview_interval=0,
                       checkpoint_interval=0, device="cpu")


@pytest.mark.slow
def test_vhap_dataset_with_teeth_offsets_trains_on_the_flame_file(vhap_dataset, model_file, tmp_path):
    result = train(vhap_dataset, tmp_path / "run", _quick(), head=str(model_file))
    assert result.iterations == 4 and np.isfinite(result.metrics["val"]["psnr"])
    avatar = load_avatar(result.out / "avatar")  # the manifest names the FLAME file; the offsets want teeth
    assert avatar.head.has_teeth and avatar.head.source == str(model_file.resolve())
    assert int(avatar.gaussians.binding.max()) >= FLAME_FACES  # Gaussians live on the teeth triangles too
    assert avatar.params.static_offset.shape == (5143, 3)
    with np.load(result.out / "avatar" / "flame_param.npz") as npz:
        assert npz["static_offset"].shape == (1, 5143, 3) and npz["expr"].shape == (FRAMES + 1, 100)


def test_a_flame_dataset_against_the_demo_head_says_to_pass_flame(vhap_dataset, tmp_path, capsys):
    flat = tmp_path / "flat"
    shutil.copytree(vhap_dataset, flat)
    _set_offsets(flat, FLAME_VERTS)  # VHAP without teeth: [1, 5023, 3]
    code = cli.main(["train", str(flat), "--out", str(tmp_path / "o"), "--iters", "1", "--resolution", "32"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(flat / "flame_param" / "00000.npz") in err
    assert "static_offset has 5023 vertices" in err and "tracked with FLAME" in err and "--flame FILE" in err


def _ga_run(root: Path, head, iterations: tuple[int, ...]) -> Path:
    """A GaussianAvatars output folder: point_cloud/iteration_<N>/{point_cloud.ply, flame_param.npz}, one
    Gaussian on every triangle (SH degree 3, no label property), coloured by component; the highest
    iteration is the real one, the others are decoys of another size."""
    n = head.n_faces
    for it in iterations:
        folder = root / "point_cloud" / f"iteration_{it}"
        folder.mkdir(parents=True)
        count = n if it == max(iterations) else 10
        colour = torch.tensor([COLOURS[COMPONENTS[int(c)]] for c in head.face_labels[:count]]) / 255.0
        sh = np.zeros((count, 16, 3), np.float32)
        sh[:, 0] = rgb_to_dc(colour).numpy()
        cols = {"x": np.zeros(count), "y": np.zeros(count), "z": np.zeros(count),
                "nx": np.zeros(count), "ny": np.zeros(count), "nz": np.zeros(count), **sh_to_fields(sh),
                "opacity": np.full(count, 4.0), "scale_0": np.full(count, -0.2), "scale_1": np.full(count, -2.5),
                "scale_2": np.full(count, -0.2), "rot_0": np.ones(count), "rot_1": np.zeros(count),
                "rot_2": np.zeros(count), "rot_3": np.zeros(count), "binding_0": np.arange(count, dtype=np.float32)}
        write_ply(folder / "point_cloud.ply", cols)
        t = 4
        jaw = np.zeros((t, 3), np.float32)
        jaw[:, 0] = np.linspace(0, 0.35, t)
        np.savez(folder / "flame_param.npz", shape=np.zeros(300, np.float32), expr=np.zeros((t, 100), np.float32),
                 rotation=np.zeros((t, 3), np.float32), neck_pose=np.zeros((t, 3), np.float32), jaw_pose=jaw,
                 eyes_pose=np.zeros((t, 6), np.float32), translation=np.zeros((t, 3), np.float32),
                 static_offset=np.zeros((1, 5143, 3), np.float32), dynamic_offset=np.zeros((t, 5143, 3), np.float32))
    return root


@pytest.fixture(scope="module")
def ga_run(tmp_path_factory, model_file) -> Path:
    return _ga_run(tmp_path_factory.mktemp("output") / "subject_run", load_head(model_file, teeth=True), (7000, 30000))


def test_gaussianavatars_run_opens_at_its_highest_iteration_with_teeth(ga_run, model_file):
    for path in (ga_run, ga_run / "point_cloud", ga_run / "point_cloud" / "iteration_30000" / "point_cloud.ply"):
        avatar = load_avatar(path, head=str(model_file))
        assert avatar.iteration == 30000 and avatar.name == "subject_run"
        assert avatar.head.has_teeth and avatar.gaussians.count == 10144
        assert int(avatar.gaussians.binding.max()) == 10143 and avatar.params.frames == 4
        # labels come from the triangles (the ply has none): FLAME_masks.pkl made them
        assert torch.equal(avatar.gaussians.labels, avatar.head.face_labels)
    with pytest.raises(FlameModelNeeded, match=r"flame_param\.npz: .*made with FLAME.*--flame FILE"):
        load_avatar(ga_run)


def _render(args: list[str], out: Path) -> np.ndarray:
    assert cli.main(["render", *args, "--size", "96", "--backend", "torch", "--out", str(out)]) == 0
    return np.asarray(Image.open(out).convert("RGB"), dtype=np.float32) / 255.0


@pytest.mark.slow
def test_gaussianavatars_ply_bound_to_all_10144_triangles_renders_and_plays(ga_run, model_file, tmp_path):
    base = ["--avatar", str(ga_run), "--flame", str(model_file)]
    first = _render(base + ["--frame", "0"], tmp_path / "a.png")
    last = _render(base + ["--frame", "3"], tmp_path / "b.png")  # the avatar's own sequence: jaw opens
    head_pixels = (first < 0.97).any(axis=2)
    assert head_pixels.mean() > 0.15  # the head fills the frame
    moved = np.abs(first - last).max(axis=2) > 0.1
    assert 0.002 < moved.mean() < 0.3  # the mouth opens; the rest of the head stays
    ys = np.flatnonzero(moved.any(axis=1))
    assert ys.mean() > np.flatnonzero(head_pixels.any(axis=1)).mean()  # below the head's middle: the mouth
    smile = _render(base + ["--expr", "smile=1"], tmp_path / "c.png")
    assert np.abs(smile - first).max() > 0.1  # a named expression moves a FLAME head


def test_gaussianavatars_run_exports_back_in_its_layout(ga_run, model_file, tmp_path):
    out = tmp_path / "exported"
    assert cli.main(["export", str(ga_run), "--flame", str(model_file), "--gaussianavatars", str(out)]) == 0
    folder = out / "point_cloud" / "iteration_30000"
    assert (folder / "point_cloud.ply").is_file()
    with np.load(folder / "flame_param.npz") as npz:
        assert npz["static_offset"].shape == (1, 5143, 3) and npz["dynamic_offset"].shape == (4, 5143, 3)
        assert npz["expr"].shape == (4, 100) and npz["shape"].shape == (300,)
    again = load_avatar(out, head=str(model_file))
    original = load_avatar(ga_run, head=str(model_file))
    assert again.iteration == 30000 and again.gaussians.equal(original.gaussians)
