"""A monocular clip: the reader splits it by time, the trainer's scene extent comes from the head turning."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.data.vhap_format import read_dataset
from engine.data.vhap_writer import FrameSample, write_dataset
from engine.head.model import load_head
from engine.render.camera import orbit_camera
from engine.train.config import DensifyConfig, TrainConfig, monocular
from engine.train.trainer import Trainer


def _monocular(root: Path, frames: int, split_of=lambda t: "train") -> Path:
    head = load_head("demo")
    camera = orbit_camera(0.0, 0.0, 0.8, (0.0, -0.02, 0.0), 25.0, 32, 32)
    flame = {}
    for t in range(frames):
        yaw = math.radians(-40.0 + 80.0 * t / max(1, frames - 1))
        flame[t] = head.neutral_params().with_values(rotation=torch.tensor([[0.0, yaw, 0.0]]))
    samples = (FrameSample(split_of(t), t, 0, camera, torch.ones(32, 32, 3)) for t in range(frames))
    return write_dataset(root, samples, flame, head.neutral_params())


def test_time_split_holds_out_the_later_timesteps(tmp_path: Path) -> None:
    root = _monocular(tmp_path / "ds", 10, lambda t: "train" if t % 3 else "val")  # files split otherwise
    plain = read_dataset(root)
    assert plain.timesteps("val") == [0, 3, 6, 9]
    ds = read_dataset(root, time_holdout=0.25)
    assert ds.timesteps("train") == list(range(8)) and ds.timesteps("test") == [8, 9]
    assert "val" not in ds.splits
    assert ds.flame_params("test").rotation[:, 1].tolist() == pytest.approx(
        plain.flame_params(None).rotation[8:, 1].tolist())
    with pytest.raises(ValueError, match="time holdout"):
        read_dataset(root, time_holdout=1.0)


def test_monocular_extent_comes_from_the_head_turning(tmp_path: Path) -> None:
    root = _monocular(tmp_path / "ds", 5)
    trainer = Trainer(load_head("demo"), read_dataset(root), TrainConfig(iters=1, resolution=32))
    # one camera 0.8 m away while the head turns ±40°: the camera sweeps an arc of chord 2·0.8·sin 40° in
    # the head's frame; its largest distance from the mean position is about half that, plus the sagitta
    assert 0.8 * math.sin(math.radians(40)) * 1.1 * 0.9 < trainer.extent < 0.8 * 1.1


def _train_config(*extra: str) -> TrainConfig:
    from app.cli import build_parser
    from app.commands.train import config_from

    return config_from(build_parser().parse_args(["train", "ds", "--out", "run", *extra]))


def test_training_a_time_split_clip_finetunes_its_tracked_flame_parameters_unless_told_not_to() -> None:
    assert not _train_config().finetune_flame
    monocular = _train_config("--holdout-time", "0.2")
    assert monocular.finetune_flame and monocular.lambda_flame_prior > 0
    assert monocular.lr_flame_pose > TrainConfig().lr_flame_pose  # a few thousand steps, not GaussianAvatars' 600k
    assert not _train_config("--holdout-time", "0.2", "--no-finetune-flame").finetune_flame
    assert _train_config("--finetune-flame").finetune_flame


def test_asking_for_finetuning_on_a_time_split_clip_keeps_the_monocular_learning_rates() -> None:
    asked = _train_config("--holdout-time", "0.2", "--finetune-flame")
    assert asked == _train_config("--holdout-time", "0.2")  # was the 600k-step rates: pose lr 1e-5, no prior
    assert asked.lr_flame_pose == 5e-4 and asked.lambda_flame_prior > 0


def test_a_settings_file_wins_over_the_monocular_preset_which_fills_only_what_it_leaves_out(tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"iters": 40, "lr_flame_pose": 2e-5, "lambda_flame_prior": 0.5,
                                "densify": {"interval": 50}}), encoding="utf-8")
    config = _train_config("--config", str(path), "--holdout-time", "0.2")
    preset = monocular(TrainConfig())
    assert config.lr_flame_pose == 2e-5 and config.lambda_flame_prior == 0.5  # the file's (was the preset's)
    assert config.finetune_flame and config.lr_flame_trans == preset.lr_flame_trans  # the preset's: the file is silent
    assert config.iters == 40 and config.densify.interval == 50
    assert config.densify.start == DensifyConfig().start
    assert config == replace(preset, iters=40, lr_flame_pose=2e-5, lambda_flame_prior=0.5,
                             densify=replace(preset.densify, interval=50))
    path.write_text(json.dumps({"finetune_flame": False}), encoding="utf-8")
    assert not _train_config("--config", str(path), "--holdout-time", "0.2").finetune_flame
    assert _train_config("--config", str(path), "--holdout-time", "0.2", "--finetune-flame").finetune_flame
    assert _train_config("--config", str(path)) == TrainConfig(finetune_flame=False)
