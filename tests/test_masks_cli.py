"""`dynamicavatars masks`: label (FCI), lift and render on a tiny synthetic dataset; user errors exit with code 2."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.cli import main
from engine.avatar.demo import load_demo_avatar
from engine.avatar.files import load_avatar
from engine.data.frames import load_labels
from engine.data.vhap_format import read_dataset
from engine.head.components import labels_of
from engine.semantics.fci import triangle_labels
from engine.semantics.selection import SELECTION_FILE, Selection, load_selection, read_selection, save_selection

LIFT_AT = ["--timestep", "0", "--camera", "2"]  # a training frame seen by the frontal camera (yaw 0)
NET_STEPS = "150"
IOU_FLOOR = 0.55  # measured 0.655 (0.633 without the fit; demo avatar, 128 px, lips at t 0 / camera 2, 6 val frames)


@pytest.fixture(scope="module")
def dataset(synth_128: Path) -> Path:
    return synth_128  # shared with test_semantics_fci (tests/conftest.py)


@pytest.fixture(scope="module")
def lips_lifted(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An avatar folder holding the demo avatar and the lips region lifted at LIFT_AT."""
    out = tmp_path_factory.mktemp("lifted") / "lips"
    assert main(["masks", "lift", "demo", "--dataset", str(dataset), *LIFT_AT, "--components", "lips",
                 "--out", str(out)]) == 0
    return out


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in output:\n{text}"
    return float(found.group(1).replace(",", ""))


@pytest.mark.slow
def test_label_writes_fused_labels_that_mostly_agree_with_the_triangles(dataset: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "labelled"
    assert main(["masks", "label", "demo", "--dataset", str(dataset), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    base = load_demo_avatar()
    got = load_avatar(out)
    assert got.gaussians.replace(labels=base.gaussians.labels).equal(base.gaussians)  # only the labels change
    tri = triangle_labels(base)
    differ = int((got.gaussians.labels != tri).sum())
    seen = _number(r"seen: ([\d,]+) of", text)
    # the spec's 95%; deterministic (conftest pins the threads): measured 95.2% in every run, margin 0.2 points
    assert _number(r"voted labels agree with the triangle labels for ([\d.]+)%", text) >= 95.0
    assert differ == _number(r"changed label: ([\d,]+)", text)  # the demo's labels are its triangles' labels
    assert 0 < differ < 0.1 * seen  # measured 1,101 of 31,981 seen
    assert _number(r"voted (\d+) frames", text) == 30


@pytest.mark.slow
def test_lift_lips_then_render_val_masks(dataset: Path, lips_lifted: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    avatar = load_avatar(lips_lifted)
    selection = load_selection(lips_lifted / SELECTION_FILE, avatar.gaussians.count)
    labels = avatar.gaussians.labels[selection.mask]
    # Measured: 74 lip Gaussians (of 182), 50 mouth-interior ones that the label map's lips cover at this frame,
    # and 8 skin ones along the outline that the fit to the painted view adds.
    assert int(torch.isin(labels, torch.tensor(labels_of(["lips"]))).sum()) >= 50
    assert float(torch.isin(labels, torch.tensor(labels_of(["mouth"]))).float().mean()) >= 0.9

    out = tmp_path / "masks"
    assert main(["masks", "render", str(lips_lifted), "--dataset", str(dataset), "--split", "val",
                 "--components", "lips", "--out", str(out)]) == 0
    printed = _number(r"IoU lips: ([\d.]+)", capsys.readouterr().out)
    inter = union = 0
    records = read_dataset(dataset).frames("val")
    names = sorted(f"{r.timestep:05d}_{r.camera_index:02d}.png" for r in records)
    assert sorted(p.name for p in out.iterdir()) == names
    for r in records:
        mask = np.asarray(Image.open(out / f"{r.timestep:05d}_{r.camera_index:02d}.png"))
        assert mask.shape == (128, 128) and set(np.unique(mask)) <= {0, 255}
        gt = torch.isin(load_labels(r.label_path), torch.tensor(labels_of(["lips"]))).numpy()
        inter, union = inter + int(((mask > 0) & gt).sum()), union + int(((mask > 0) | gt).sum())
    assert printed == pytest.approx(inter / union, abs=1e-3)
    assert printed > IOU_FLOOR


@pytest.mark.slow
def test_lift_a_painted_png_equals_lifting_the_components(dataset: Path, lips_lifted: Path, tmp_path: Path) -> None:
    record = next(r for r in read_dataset(dataset).frames("train") if (r.timestep, r.camera_index) == (0, 2))
    lips = torch.isin(load_labels(record.label_path), torch.tensor(labels_of(["lips"])))
    png = tmp_path / "painted.png"
    Image.fromarray(np.where(lips.numpy(), 255, 0).astype(np.uint8)).convert("RGB").save(png)
    out = tmp_path / "painted"
    assert main(["masks", "lift", "demo", "--dataset", str(dataset), *LIFT_AT, "--mask", str(png),
                 "--out", str(out)]) == 0
    painted, components = load_selection(out / SELECTION_FILE), load_selection(lips_lifted / SELECTION_FILE)
    assert torch.equal(painted.mask, components.mask)
    torch.testing.assert_close(painted.weights, components.weights)


@pytest.mark.slow
def test_fitting_to_more_frames_sharpens_the_lips_elsewhere(dataset: Path, lips_lifted: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    """--fit-frames fits the lips to their label regions at ten training frames at once: the selection then
    draws the lips closer to the label maps at held-out cameras and held-out expressions too."""
    many = tmp_path / "many"
    assert main(["masks", "lift", "demo", "--dataset", str(dataset), *LIFT_AT, "--components", "lips",
                 "--fit-frames", "10", "--out", str(many)]) == 0
    assert "fitted at 11 views" in capsys.readouterr().out
    scores = {}
    for name, folder in (("one", lips_lifted), ("many", many)):
        for split in ("val", "test"):
            assert main(["masks", "render", str(folder), "--dataset", str(dataset), "--split", split,
                         "--components", "lips", "--out", str(tmp_path / f"{name}-{split}")]) == 0
            scores[name, split] = _number(r"IoU lips: ([\d.]+)", capsys.readouterr().out)
    print(scores)
    # measured: val 0.655 -> 0.692, test 0.515 -> 0.582
    assert scores["many", "val"] > scores["one", "val"] + 0.02
    assert scores["many", "test"] > scores["one", "test"] + 0.03


@pytest.mark.slow
def test_render_by_the_mapping_network(dataset: Path, lips_lifted: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    """The network the user can pick instead of the exact renders: trained on the lifted lips, it warps the
    lips mask saved with the selection to the held-out cameras and the held-out expressions."""
    _, extras = read_selection(lips_lifted / SELECTION_FILE)
    assert (int(extras["reference_timestep"]), int(extras["reference_camera"])) == (0, 2)
    assert extras["reference_mask"].shape == (128, 128)
    capsys.readouterr()
    scores, still = {}, {}
    m0 = extras["reference_mask"] >= 0.5
    for split in ("val", "test"):
        out = tmp_path / split
        assert main(["masks", "render", str(lips_lifted), "--dataset", str(dataset), "--split", split,
                     "--components", "lips", "--method", "net", "--net-steps", NET_STEPS, "--net-pose-step", "20",
                     "--out", str(out)]) == 0
        text = capsys.readouterr().out
        assert "by the mapping network" in text and "mapping network: trained on 6 timesteps of split 'train' x 30 poses" in text
        scores[split] = _number(r"IoU lips: ([\d.]+)", text)
        records = read_dataset(dataset).frames(split)
        assert sorted(p.name for p in out.iterdir()) == sorted(f"{r.timestep:05d}_{r.camera_index:02d}.png" for r in records)
        gts = [torch.isin(load_labels(r.label_path), torch.tensor(labels_of(["lips"]))).numpy() for r in records]
        still[split] = sum(int((g & m0).sum()) for g in gts) / sum(int((g | m0).sum()) for g in gts)
    print(scores, still)
    # measured (150 steps, poses 20° apart): val 0.61, test 0.30; the mask left in place: val 0.11, test 0.02; the
    # exact renders: val 0.655. The held-out camera sits between the training cameras' two heights: the network
    # trains on a lattice of azimuths and elevations around the head, and a head that turned is that lattice seen
    # from the head's frame (before, on the dataset's cameras with azimuth alone: val 0.13-0.16, test 0.17-0.25).
    assert scores["test"] >= still["test"] + 0.2
    assert scores["val"] >= 0.5


@pytest.mark.parametrize("argv, message", [
    (["lift", "demo", *LIFT_AT, "--mask", "{small}"], "mask is 64x64, but the image at timestep 0, camera 2"),
    (["lift", "demo", "--timestep", "42", "--camera", "2", "--components", "lips"],
     "no timestep 42; timesteps: 0-7"),
    (["lift", "demo", "--timestep", "6", "--camera", "5", "--components", "lips"],
     "no camera 5 at timestep 6; cameras: 0-4"),
    (["lift", "demo", *LIFT_AT, "--components", "lipz"], "unknown facial component 'lipz'"),
    (["render", "demo", "--selection", "{selection}", "--components", "lips"],
     "selection has 4 Gaussians, the avatar has"),
    (["label", "demo", "--dataset", "{missing}"], "dataset folder does not exist"),
    (["render", "demo", "--selection", "{plain}", "--method", "net"], "no reference mask to warp"),
    (["render", "demo", "--selection", "{plain}", "--method", "net", "--net-pose-step", "0"],
     "--net-pose-step must be between 1 and 90 degrees, got 0"),
    (["lift", "demo", *LIFT_AT, "--mask", "{small}", "--fit-frames", "4"], "--fit-frames needs --components"),
])
def test_bad_input_is_a_clear_error(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                    argv: list[str], message: str) -> None:
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(small)
    selection = save_selection(Selection(torch.ones(4)), tmp_path / "four.npz")
    plain = save_selection(Selection(torch.ones(load_demo_avatar().gaussians.count)), tmp_path / "plain.npz")
    fill = {"small": str(small), "missing": str(tmp_path / "no_such_dataset"), "selection": str(selection),
            "plain": str(plain)}
    args = ["masks", *[a.format(**fill) for a in argv]]
    if "--dataset" not in args:
        args += ["--dataset", str(dataset)]
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dynamicavatars masks: error: ") and message in err
    assert not out.exists()
