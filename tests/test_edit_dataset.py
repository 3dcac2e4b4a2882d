"""The edit stage on a dataset's own views: a small synthetic VHAP dataset, edited end to end."""

from __future__ import annotations

import torch

from engine.avatar.demo import load_demo_avatar
from engine.data.synth import SynthConfig, generate
from engine.data.vhap_format import read_dataset
from engine.edit.discriminator import DiscriminatorConfig
from engine.edit.editors import EditorSettings, make_editor
from engine.edit.layers import compose
from engine.edit.optimise import OptimConfig
from engine.edit.run import EditConfig, run_edit
from engine.head.components import labels_of
from engine.prompting import refine


def test_edit_on_synthetic_dataset_views(tmp_path) -> None:
    root = generate(tmp_path / "synth", SynthConfig(size=64, train_frames=3, test_frames=1, train_cameras=3,
                                                     heldout_cameras=1))
    dataset = read_dataset(root)
    train = dataset.frames("train")
    avatar = load_demo_avatar(count=4000)
    base = avatar.gaussians.detach_clone()
    lips = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(["lips"])))
    config = EditConfig(size=48, keyframes=2, passes=2, min_steps=6, max_steps=8, extra_reals=2,
                        disc=DiscriminatorConfig(steps=60, size=32), optim=OptimConfig(refresh_every=2))
    messages: list[str] = []
    result = run_edit(avatar, lips, refine("make the lips blue").plan, make_editor(EditorSettings()), config,
                      dataset=dataset, progress=lambda f, m: messages.append(m))
    assert result is not None and messages
    # candidates are the dataset's training frames, keyframes are among them with their photos
    assert result.keyframes.visibility.shape == (len(train),)
    assert 1 <= len(result.views) <= 2
    photos = {r.image_path for r in train}
    for view in result.views:
        assert view.image_path in photos and view.image_path.is_file()
        assert view.camera_index in dataset.camera_indices("train")
    assert result.keyframes.region_coverage > 0.5
    assert result.layer.info["editor_reference"]["mean_oklab"][0] > 0.3  # calibrated on the dataset's views
    layer = result.layer
    assert layer.indices.numel() > 0 and bool(lips[layer.indices].all())
    edited = compose(avatar.gaussians, [layer])
    assert edited.subset(~lips).equal(base.subset(~lips))
    dc = edited.sh[lips, 0].mean(0) - base.sh[lips, 0].mean(0)
    assert float(dc[2]) > 0 and float(dc[0]) < 0  # bluer, less red
    assert avatar.gaussians.equal(base)
