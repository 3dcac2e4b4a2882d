"""Training settings, one documented field each (defaults tuned for a 2-core CPU at 256²)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engine.io.atomic import FileFormatError, atomic_write


@dataclass(frozen=True)
class DensifyConfig:
    """Adaptive density control (3DGS / GaussianAvatars, bindings kept)."""

    start: int = 300  # first iteration that densifies
    stop_fraction: float = 0.7  # densify until this fraction of the run
    interval: int = 200  # iterations between densification steps
    grad_threshold: float = 2e-4  # mean view-space (NDC) positional gradient that triggers clone/split
    percent_dense: float = 0.01  # Gaussians larger than this × scene extent are split, smaller are cloned
    min_opacity: float = 0.005  # prune below this opacity
    max_world_scale: float = 0.1  # prune Gaussians larger than this × scene extent
    opacity_reset_interval: int = 0  # iterations between opacity resets (0 = never; short runs do better without)
    max_gaussians: int = 120_000  # never grow past this many Gaussians


@dataclass(frozen=True)
class TrainConfig:
    """How to train an avatar."""

    iters: int = 3000  # optimisation steps
    resolution: int = 256  # longer image side used for training (images are downsampled)
    seed: int = 0  # random seed for initialisation and frame order (the same on every rank)
    frames_per_step: int = 0  # frames whose mean loss one step descends, split over the training processes
    # (rank r renders frames r, r+W, ...); 0 = one per process (1 alone). Keep it when resuming on another
    # number of processes and the run continues the same curve
    device: str = "cpu"  # torch device the optimisation runs on: "cpu", or "cuda" (gsplat rasterizer; refused without CUDA)
    backend: str = "auto"  # rasterizer backend (engine.render.rasterize.BACKENDS)
    init_per_triangle: int = 2  # Gaussians placed on each triangle at the start
    sh_degree: int = 1  # highest SH degree learned (raised one band every sh_interval iterations)
    sh_interval: int = 1000  # iterations between SH band increases
    lr_position: float = 5e-3  # Adam lr of local positions at the start (GaussianAvatars: 0.005)
    lr_position_final: float = 5e-5  # ... decayed exponentially to this at the end
    lr_feature: float = 2.5e-3  # SH DC lr (rest bands use lr / 20)
    lr_opacity: float = 0.05  # opacity logit lr
    lr_scaling: float = 0.017  # log-scale lr (GaussianAvatars: 0.017)
    lr_rotation: float = 1e-3  # rotation lr
    lambda_dssim: float = 0.2  # weight of 1 − SSIM against L1 (0.8·L1 + 0.2·D-SSIM)
    lambda_xyz: float = 1e-2  # position regulariser weight: mean(relu(‖μ'‖ − threshold_xyz))
    threshold_xyz: float = 1.0  # local distance allowed before the position regulariser acts
    lambda_scale: float = 1.0  # scale regulariser weight: mean(relu(s' − threshold_scale))
    threshold_scale: float = 0.6  # local scale allowed before the scale regulariser acts
    lambda_label: float = 0.5  # weight of the label loss: each Gaussian's component (its triangle's) rendered
    # as one-hot channels against the dataset's label maps, so part outlines (lips, lids, brows) are drawn where
    # the maps put them and selections follow them (bench/masks.py, 512 px: lips IoU 0.83 -> 0.94, for 0.6 dB
    # of held-out PSNR); 0 = off; frames without label maps are trained on colour alone
    finetune_flame: bool = False  # also refine the training timesteps' expression, head rotation, neck, jaw, eyes
    # and translation (GaussianAvatars does); the refined values are the trained avatar's. On for a tracked
    # monocular clip (`from-video`, `train --holdout-time`), whose tracked poses are a few degrees off
    lr_flame_expr: float = 1e-3  # expression lr when fine-tuning FLAME
    lr_flame_pose: float = 1e-5  # pose lr when fine-tuning FLAME (radians)
    lr_flame_trans: float = 1e-6  # translation lr when fine-tuning FLAME
    lambda_flame_prior: float = 0.0  # weight of the fine-tuned values' squared distance from the tracked ones
    # (engine.train.losses.flame_prior over the training timesteps; 0 = no prior)
    eval_interval: int = 500  # iterations between held-out evaluations (0 = only at the end)
    eval_max_frames: int = 8  # held-out frames per split used by the periodic evaluation
    checkpoint_interval: int = 1000  # iterations between checkpoints (0 = only at the end and on cancel)
    preview_interval: int = 50  # iterations between preview images sent to the progress report
    densify: DensifyConfig = field(default_factory=DensifyConfig)  # adaptive density control

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "TrainConfig":
        values = dict(data)
        values["densify"] = DensifyConfig(**values.get("densify", {}))
        return TrainConfig(**values)


def monocular(config: TrainConfig) -> TrainConfig:
    """config for a tracked monocular clip (`from-video`, `train --holdout-time`): FLAME fine-tuning on, so the
    training timesteps' tracked poses are corrected by the images as the Gaussians learn them, with learning
    rates for a run of a few thousand steps (GaussianAvatars' 1e-5 pose lr is for 600k; on the 60-frame
    synthetic clip, 600 steps at 256 px: pose lr 1e-4 moved the head error 4.16° -> 3.76°, 5e-4 -> 3.62°)
    and a weak prior toward the tracked values."""
    return replace(config, finetune_flame=True, lr_flame_pose=5e-4, lr_flame_trans=5e-5, lr_flame_expr=1e-3,
                   lambda_flame_prior=1e-2)


def _checked(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """values with every key a field of dataclass cls and every value of its default's type (ints pass as floats)."""
    defaults = {f.name: getattr(cls(), f.name) for f in fields(cls)}
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}{where}")
    for key, value in values.items():
        want = type(defaults[key])
        ok = isinstance(value, want) and not (want is not bool and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            values[key], ok = float(value), True
        if not ok and want is not DensifyConfig:
            raise ValueError(f"setting {key}{where} must be {want.__name__}, got {value!r}")
    return values


def read_config(path: str | os.PathLike, defaults: TrainConfig | None = None) -> TrainConfig:
    """A TrainConfig from a JSON file of its fields (densify a nested object); the fields it leaves out keep
    their values in defaults (TrainConfig() when None; e.g. monocular(TrainConfig()), so the file's own values
    win over a preset). Raises FileFormatError naming the file and the problem."""
    defaults = defaults or TrainConfig()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileFormatError(path, "training settings file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(path, f"not a readable JSON file of training settings ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("densify", {}), dict):
        raise FileFormatError(path, "training settings must be a JSON object (densify an object inside it)")
    try:
        values = _checked(TrainConfig, dict(data), "")
        values["densify"] = replace(defaults.densify,
                                    **_checked(DensifyConfig, dict(data.get("densify", {})), " in densify"))
    except ValueError as exc:
        raise FileFormatError(path, str(exc)) from None
    return replace(defaults, **values)


def write_config(config: TrainConfig, path: str | os.PathLike) -> Path:
    """Write a TrainConfig as JSON (read_config reads it back), atomically."""
    with atomic_write(path, "w") as fh:
        json.dump(config.to_dict(), fh, indent=2)
    return Path(path)
