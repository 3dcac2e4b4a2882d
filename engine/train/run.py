"""The training job the CLI and the GUI both run: dataset folder in, avatar folder out."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from engine.avatar.files import save_avatar
from engine.data.vhap_format import read_dataset, read_flame_npz
from engine.head.match import made_on_flame
from engine.head.model import HeadModel, load_head
from engine.io.atomic import atomic_write
from engine.train.checkpoint import load_checkpoint, save_checkpoint
from engine.train.config import TrainConfig
from engine.train.trainer import StepStats, Trainer

CHECKPOINT_NAME = "checkpoint.pt"
AVATAR_DIR = "avatar"


@dataclass(frozen=True)
class TrainReport:
    """Sent to the report callback after every step."""

    step: StepStats  # what the step did
    total: int  # iterations of the whole run
    seconds: float  # wall time since this run (or resume) started
    evaluation: dict[str, dict[str, float]] | None  # split -> {psnr, ssim} when an evaluation ran this step
    preview: Tensor | None  # [H, W, 3] held-out render when a preview was made this step


@dataclass(frozen=True)
class TrainResult:
    """How a training run ended."""

    out: Path  # output folder (avatar/ and checkpoint.pt inside)
    iterations: int  # iterations done in total (including resumed ones)
    cancelled: bool  # stopped by the cancel callback (a checkpoint and the avatar were saved)
    metrics: dict[str, dict[str, float]]  # split -> {psnr, ssim, frames} at the end
    seconds: float  # wall time of this run
    iters_per_second: float  # iterations of this run / seconds
    head: HeadModel  # the head it trained on (a FLAME head with GaussianAvatars' teeth)


def train(
    dataset: str | Path,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    head: HeadModel | str | None = None,
    resume: bool = False,
    report: Callable[[TrainReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    final_eval_frames: int | None = None,
) -> TrainResult:
    """Train an avatar on a dataset folder and write it to out/avatar (plus out/checkpoint.pt).

    A FLAME head trains with GaussianAvatars' teeth, as GaussianAvatars does (a dataset's 5023-vertex
    offsets are padded). resume=True continues from out/checkpoint.pt when it exists (same dataset;
    the config's iters may grow). Cancelling saves a checkpoint and the avatar so far, then returns
    with cancelled=True.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    head_model = head if isinstance(head, HeadModel) else load_head(head)
    if head_model.is_flame:
        head_model = head_model.with_teeth()
    data = read_dataset(dataset)
    trainer = Trainer(head_model, data, config)
    checkpoint = out / CHECKPOINT_NAME
    if resume and checkpoint.is_file():
        state = load_checkpoint(checkpoint)
        trainer.load_state_dict(state)
    start, start_iter = time.perf_counter(), trainer.iteration
    cancelled = False
    while trainer.iteration < config.iters:
        if cancel is not None and cancel():
            cancelled = True
            break
        stats = trainer.step()
        evaluation = None
        if config.eval_interval and stats.iteration % config.eval_interval == 0:
            evaluation = {s: trainer.evaluate(s, config.eval_max_frames) for s in ("val", "test")}
            trainer.evaluations.append({"iteration": stats.iteration, **{f"{s}_psnr": v.get("psnr", float("nan")) for s, v in evaluation.items()}})
        preview = trainer.preview() if config.preview_interval and stats.iteration % config.preview_interval == 0 else None
        if config.checkpoint_interval and stats.iteration % config.checkpoint_interval == 0:
            save_checkpoint(trainer.state_dict(), checkpoint)
        if report is not None:
            report(TrainReport(stats, config.iters, time.perf_counter() - start, evaluation, preview))
    seconds = time.perf_counter() - start
    save_checkpoint(trainer.state_dict(), checkpoint)
    save_avatar(trainer.avatar(name=Path(dataset).name), out / AVATAR_DIR)
    metrics = {} if cancelled else {s: trainer.evaluate(s, final_eval_frames) for s in ("val", "test")}
    with atomic_write(out / "metrics.json", "w") as fh:
        json.dump({"iterations": trainer.iteration, "metrics": metrics, "history": trainer.history[-1:]}, fh, indent=2)
    done = trainer.iteration - start_iter
    return TrainResult(out, trainer.iteration, cancelled, metrics, seconds, done / seconds if seconds > 0 else 0.0,
                       head_model)


def dataset_needs_flame(dataset: str | Path) -> bool:
    """Whether a dataset was tracked with FLAME (its first FLAME file's static offset has FLAME's rows)."""
    frames = read_dataset(dataset, check_files=False).frames("train")
    offset = read_flame_npz(frames[0].flame_param_path).static_offset if frames else None
    return offset is not None and made_on_flame(int(offset.shape[0]))
