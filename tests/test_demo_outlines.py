"""The demo avatar's fitted outlines: its parts drawn where its head draws them, and the file's checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.avatar.demo import OUTLINES_FILE, apply_outlines, build_demo_gaussians, load_demo_avatar, save_outlines
from engine.data.frames import FrameLoader
from engine.data.synth import SynthConfig, generate
from engine.data.vhap_format import AvatarDataset, read_dataset
from engine.head.components import COMPONENTS, labels_of
from engine.head.model import load_head
from engine.io.atomic import FileFormatError
from engine.render.rasterize import render
from engine.semantics.mask_render import render_label_map
from engine.train.demo_outlines import OutlineFitConfig, fit_outlines
from engine.train.losses import label_loss

GROUPS = ("lips", "eyes", "brows", "hair")


@pytest.fixture(scope="module")
def views_256(tmp_path_factory: pytest.TempPathFactory) -> AvatarDataset:
    """Frames of the demo head the outline fit never saw (seed 11; the fit renders seed 5)."""
    root = generate(tmp_path_factory.mktemp("outlines") / "ds", SynthConfig(
        size=256, train_frames=3, test_frames=1, train_cameras=3, heldout_cameras=1, yaw_range_deg=40.0, seed=11))
    return read_dataset(root)


def group_iou(avatar, ds: AvatarDataset) -> dict[str, float]:
    """IoU per group of the avatar's label render against the head's label maps, summed over the training frames."""
    params, ts = ds.flame_params(None), ds.timesteps(None)
    inter, union = dict.fromkeys(GROUPS, 0), dict.fromkeys(GROUPS, 0)
    loader = FrameLoader(capacity=0)
    for record in ds.frames("train"):
        f = loader.load(record)
        with torch.no_grad():
            splats = avatar.splats(params.frame(ts.index(record.timestep)))
        drawn = render_label_map(splats, f.camera, avatar.gaussians.labels, len(COMPONENTS))
        for g in GROUPS:
            ids = torch.tensor(labels_of([g]))
            a, b = torch.isin(drawn, ids), torch.isin(f.labels, ids)
            inter[g] += int((a & b).sum())
            union[g] += int((a | b).sum())
    return {g: inter[g] / max(1, union[g]) for g in GROUPS}


def test_fitted_demo_draws_its_heads_parts(views_256: AvatarDataset) -> None:
    fitted = group_iou(load_demo_avatar(), views_256)
    procedural = group_iou(load_demo_avatar(outlines=False), views_256)
    assert min(fitted.values()) >= 0.75, fitted
    assert procedural["eyes"] < 0.6 and fitted["eyes"] > procedural["eyes"] + 0.2, (procedural, fitted)


def test_shipped_outlines_change_geometry_only() -> None:
    assert OUTLINES_FILE.is_file()
    fitted, procedural = load_demo_avatar().gaussians, load_demo_avatar(outlines=False).gaussians
    for k in ("binding", "labels", "sh"):
        assert torch.equal(getattr(fitted, k), getattr(procedural, k)), k
    moved = (fitted.xyz - procedural.xyz).norm(dim=1)
    assert float(moved.max()) > 0 and not torch.equal(fitted.opacity_logit, procedural.opacity_logit)


def test_outline_fit_lowers_the_label_loss(views_256: AvatarDataset) -> None:
    avatar = load_demo_avatar(outlines=False)
    record = views_256.frames("train")[1]
    f = FrameLoader(capacity=0).load(record)
    params, ts = views_256.flame_params(None), views_256.timesteps(None)
    onehot = torch.nn.functional.one_hot(avatar.gaussians.labels, len(COMPONENTS)).float()

    def loss(gaussians) -> float:
        with torch.no_grad():
            splats = gaussians.deform(avatar.posed_vertices(params.frame(ts.index(record.timestep))), avatar.head.faces)
            return float(label_loss(render(splats, f.camera, features=onehot).features, f.labels))

    before = avatar.gaussians.detach_clone()
    fitted = fit_outlines(avatar, [views_256], OutlineFitConfig(steps=40))
    assert loss(fitted) < 0.8 * loss(before)
    assert torch.equal(avatar.gaussians.xyz, before.xyz)  # the avatar given is left as it was
    eyes = torch.isin(fitted.labels, torch.tensor(labels_of(["eyes"])))
    assert torch.equal(fitted.xyz[eyes], before.xyz[eyes]) and torch.equal(fitted.sh, before.sh)


def test_outline_files_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    head = load_head("demo")
    g = build_demo_gaussians(head)
    bad = tmp_path / "outlines.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(FileFormatError, match="outlines.npz: cannot read"):
        apply_outlines(g, bad)
    other = build_demo_gaussians(head, count=20_000)
    save_outlines(other, bad)
    with pytest.raises(FileFormatError, match="build_demo_outlines.py"):
        apply_outlines(g, bad)
    shuffled = g.replace(labels=g.labels.flip(0))
    save_outlines(shuffled, bad)
    with pytest.raises(FileFormatError, match="labels differ"):
        apply_outlines(g, bad)
    save_outlines(g.replace(opacity_logit=torch.full_like(g.opacity_logit, float("nan"))), bad)
    with pytest.raises(FileFormatError, match="not finite"):
        apply_outlines(g, bad)
    save_outlines(g, bad)
    assert np.array_equal(apply_outlines(g, bad).xyz.numpy(), g.xyz.numpy())
