"""The modeling stage on a small synthetic dataset: quality rises, bindings stay valid, cancel/resume work."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.avatar.files import load_avatar
from engine.data.synth import SynthConfig, generate
from engine.data.vhap_format import read_dataset
from engine.head.model import load_head
from engine.train.checkpoint import load_checkpoint
from engine.train.config import DensifyConfig, TrainConfig
from engine.train.run import train
from engine.train.trainer import Trainer


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    return generate(out, SynthConfig(size=128, train_frames=4, test_frames=2, train_cameras=6, heldout_cameras=1))


def _config(iters: int) -> TrainConfig:
    return TrainConfig(iters=iters, resolution=128, eval_interval=0, preview_interval=0, checkpoint_interval=0,
                       densify=DensifyConfig(start=60, interval=60, stop_fraction=0.8))


def test_training_raises_heldout_psnr_and_keeps_bindings_valid(dataset):
    head = load_head("demo")
    trainer = Trainer(head, read_dataset(dataset), _config(200))
    before = trainer.evaluate("val")["psnr"]
    start_count = trainer.count
    densified = []
    for _ in range(200):
        stats = trainer.step()
        if stats.densified:
            densified.append(stats.densified)
    after = trainer.evaluate("val")["psnr"]
    assert after > before + 3.0, (before, after)
    assert densified and any(d["cloned"] + d["split"] > 0 for d in densified)
    assert trainer.count != start_count
    g = trainer.gaussians()
    assert int(g.binding.min()) >= 0 and int(g.binding.max()) < head.n_faces
    assert (torch.bincount(g.binding, minlength=head.n_faces) > 0).all(), "a triangle lost all its Gaussians"
    assert torch.equal(g.labels, head.face_labels[g.binding])


def test_cancel_leaves_loadable_checkpoint_and_resume_continues(dataset, tmp_path):
    calls = {"n": 0}

    def cancel_after_25() -> bool:
        calls["n"] += 1
        return calls["n"] > 25

    first = train(dataset, tmp_path, _config(60), cancel=cancel_after_25)
    assert first.cancelled and first.iterations == 25
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["iteration"] == 25 and len(state["history"]) == 25
    avatar = load_avatar(tmp_path / "avatar")
    assert avatar.gaussians.count == state["params"]["xyz"].shape[0]

    second = train(dataset, tmp_path, _config(60), resume=True)
    assert not second.cancelled and second.iterations == 60
    resumed = load_checkpoint(tmp_path / "checkpoint.pt")
    assert [h["iteration"] for h in resumed["history"]] == list(range(1, 61))
    assert resumed["history"][:25] == state["history"]


def test_resume_is_exact(dataset, tmp_path):
    """Training 20 steps, checkpointing, and training 10 more equals training 30 steps straight."""
    head = load_head("demo")
    data = read_dataset(dataset)
    straight = Trainer(head, data, _config(30))
    for _ in range(30):
        straight.step()
    a = Trainer(head, data, _config(30))
    for _ in range(20):
        a.step()
    b = Trainer(head, data, _config(30))
    b.load_state_dict(a.state_dict())
    for _ in range(10):
        b.step()
    torch.testing.assert_close(b.gaussians().xyz, straight.gaussians().xyz)
    torch.testing.assert_close(b.gaussians().sh, straight.gaussians().sh)


def test_bad_dataset_gives_clear_error(tmp_path):
    from engine.data.vhap_format import DatasetError

    with pytest.raises(DatasetError, match="transforms_train.json: missing"):
        train(tmp_path, tmp_path / "out", replace(_config(1)))
