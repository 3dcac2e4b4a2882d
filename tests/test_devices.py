"""The compute device is routed: training, edit optimisation and rendering run on the device asked for
(here the CPU, named explicitly) and refuse CUDA clearly where there is none."""

from __future__ import annotations

import pytest
import torch

from app import cli
from engine.avatar.demo import load_demo_avatar
from engine.data.synth import SynthConfig, generate
from engine.data.vhap_format import read_dataset
from engine.edit.editors import EditorSettings, make_editor
from engine.edit.optimise import OptimConfig
from engine.edit.run import EditConfig, run_edit
from engine.head.components import labels_of
from engine.head.model import load_head
from engine.prompting import refine
from engine.render.rasterize import resolve_device
from engine.train.config import TrainConfig
from engine.train.trainer import Trainer

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return read_dataset(generate(tmp_path_factory.mktemp("d") / "ds", SynthConfig(
        size=48, train_frames=2, test_frames=1, train_cameras=2, heldout_cameras=1)))


def test_device_names_resolve_or_are_refused_with_what_to_do():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="not supported: use cpu or cuda"):
        resolve_device("mps")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu please")


@no_cuda
def test_cuda_is_refused_where_torch_sees_no_gpu(dataset, capsys, tmp_path):
    with pytest.raises(ValueError, match=r"'cuda' asked for, but CUDA is not available.*--device cpu"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        Trainer(load_head("demo"), dataset, TrainConfig(device="cuda", init_per_triangle=1))
    assert cli.main(["render", "--device", "cuda", "--size", "16", "--out", str(tmp_path / "x.png")]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_training_runs_on_the_device_it_is_given(dataset):
    config = TrainConfig(iters=2, resolution=48, device="cpu", init_per_triangle=1, eval_interval=0,
                         preview_interval=0, checkpoint_interval=0)
    trainer = Trainer(load_head("demo"), dataset, config)
    assert trainer.device == torch.device("cpu")
    before = trainer.params["sh_dc"].detach().clone()
    for _ in range(2):
        stats = trainer.step()
    assert stats.iteration == 2 and torch.isfinite(torch.tensor(stats.loss))
    on = {p.device for p in trainer.params.values()} | {t.device for t in trainer.extras.values()}
    on |= {trainer.densify_state.grad_sum.device, trainer.head.v_template.device, trainer.flame.expr.device}
    assert on == {torch.device("cpu")}
    assert not torch.equal(before, trainer.params["sh_dc"].detach())
    assert trainer.avatar().gaussians.xyz.device == torch.device("cpu")


def test_edit_optimisation_runs_on_the_device_it_is_given():
    avatar = load_demo_avatar(count=4000)
    lips = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(["lips"])))
    plan = refine("make the lips blue").plan
    small = dict(size=48, keyframes=2, min_steps=3, passes=1, max_steps=3, orbit_cameras=4, discriminator=False)
    result = run_edit(avatar, lips, plan, make_editor(EditorSettings()),
                      EditConfig(**small, optim=OptimConfig(refresh_every=0, device="cpu")))
    assert result is not None and result.layer.indices.numel() > 0
    assert all(d.device == torch.device("cpu") for d in result.layer.deltas.values())
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            run_edit(avatar, lips, plan, make_editor(EditorSettings()),
                     EditConfig(**small, optim=OptimConfig(refresh_every=0, device="cuda")))
