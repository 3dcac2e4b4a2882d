"""The training job the CLI and the GUI both run: dataset folder in, avatar folder out.

Under torchrun every process makes this same call: it joins the process group the environment
describes (engine.train.distributed), trains its share of each step, and stops at the same step as the
others when any of them is asked to; rank 0 alone loads the checkpoint it resumes from (and hands it to
the others), evaluates, and writes checkpoints, the avatar and metrics.json.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from engine.avatar.files import save_avatar
from engine.data.vhap_format import read_dataset, read_flame_npz
from engine.head.match import made_on_flame
from engine.head.model import HeadModel, load_head
from engine.io.atomic import atomic_write
from engine.train.checkpoint import check_same_dataset, load_checkpoint, save_checkpoint
from engine.train.config import TrainConfig
from engine.train.distributed import SINGLE, Ranks, check_in_sync, process_group, rank_device
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
    ranks: Ranks = SINGLE  # the process that reports among the run's processes (rank 0 evaluates and previews)


@dataclass(frozen=True)
class TrainResult:
    """How a training run ended."""

    out: Path  # output folder (avatar/ and checkpoint.pt inside)
    iterations: int  # iterations done in total (including resumed ones)
    cancelled: bool  # stopped by the cancel callback (a checkpoint and the avatar were saved)
    metrics: dict[str, dict[str, float]]  # split -> {psnr, ssim, frames} at the end
    seconds: float  # wall time of this run
    iters_per_second: float  # iterations of this run / seconds
    head: HeadModel | None  # the head it trained on (a FLAME head with GaussianAvatars' teeth); None when the
    # run happened in other processes and its avatar could not be read
    ranks: Ranks = SINGLE  # this process among the run's processes (only rank 0 has metrics and wrote files)


def train(
    dataset: str | Path,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    head: HeadModel | str | None = None,
    resume: bool = False,
    report: Callable[[TrainReport], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    final_eval_frames: int | None = None,
    stop_at: int | None = None,
    time_holdout: float | None = None,
    name: str | None = None,
) -> TrainResult:
    """Train an avatar on a dataset folder and write it to out/avatar (plus out/checkpoint.pt).

    A FLAME head trains with GaussianAvatars' teeth, as GaussianAvatars does (a dataset's 5023-vertex
    offsets are padded). resume=True continues from out/checkpoint.pt when it exists (same dataset;
    the config's iters may grow; frames_per_step 0 keeps the checkpoint's, on any number of processes).
    Cancelling saves a checkpoint and the avatar so far, then returns with cancelled=True; so does
    reaching iteration `stop_at` (a time-limited job's share of a longer schedule). Under
    torchrun, each process calls this; `cancel` on any of them stops them all at the same step.
    time_holdout: re-split the dataset by time (engine.data.vhap_format.split_by_time), for a monocular clip.
    name: the avatar's name (default: the dataset folder's).
    """
    with process_group(config.device) as ranks:
        return _train(dataset, Path(out), config, head, resume, report, cancel, final_eval_frames, stop_at, ranks,
                      time_holdout, name or Path(dataset).name)


def _train(dataset: str | Path, out: Path, config: TrainConfig, head: HeadModel | str | None, resume: bool,
           report: Callable[[TrainReport], None] | None, cancel: Callable[[], bool] | None,
           final_eval_frames: int | None, stop_at: int | None, ranks: Ranks,
           time_holdout: float | None, name: str) -> TrainResult:
    if ranks.main:
        out.mkdir(parents=True, exist_ok=True)
    config = replace(config, device=rank_device(config.device, ranks))
    torch.manual_seed(config.seed)
    head_model = head if isinstance(head, HeadModel) else load_head(head)
    if head_model.is_flame:
        head_model = head_model.with_teeth()
    data = read_dataset(dataset, time_holdout=time_holdout)
    checkpoint = out / CHECKPOINT_NAME
    state = None
    if resume:
        state = ranks.broadcast_object(load_checkpoint(checkpoint) if ranks.main and checkpoint.is_file() else None)
    if state is not None and not config.frames_per_step:  # a resumed run keeps its frames per step
        config = replace(config, frames_per_step=int(state["config"].get("frames_per_step") or 1))
    if ranks.main and 0 < config.frames_per_step < ranks.world:
        warnings.warn(f"{config.frames_per_step} frame(s) per step over {ranks.world} processes: "
                      f"{ranks.world - config.frames_per_step} of them render nothing", stacklevel=2)
    trainer = Trainer(head_model, data, config, ranks=ranks)
    if state is not None:
        check_same_dataset(state, trainer.dataset_signature(), checkpoint)
        trainer.load_state_dict(state)
    start, start_iter = time.perf_counter(), trainer.iteration
    cancelled = False
    while trainer.iteration < config.iters:
        stop = (cancel is not None and cancel()) or (stop_at is not None and trainer.iteration >= stop_at)
        if ranks.any(stop, trainer.device):  # every rank stops at the same step
            cancelled = True
            break
        stats = trainer.step()
        evaluation, preview = (_rank0_work(trainer, stats.iteration, checkpoint) if ranks.main else (None, None))
        if report is not None:
            report(TrainReport(stats, config.iters, time.perf_counter() - start, evaluation, preview, ranks))
    seconds = time.perf_counter() - start
    check_in_sync({**trainer.params, **trainer.extras}, ranks)
    metrics: dict[str, dict[str, float]] = {}
    if ranks.main:
        save_checkpoint(trainer.state_dict(), checkpoint)
        trained = replace(trainer.avatar(name=name), dataset=str(Path(dataset).resolve()))
        save_avatar(trained, out / AVATAR_DIR)  # the avatar remembers its dataset (keyframes for edits)
        metrics = {} if cancelled else {s: trainer.evaluate(s, final_eval_frames) for s in ("val", "test")}
        with atomic_write(out / "metrics.json", "w") as fh:
            json.dump({"iterations": trainer.iteration, "metrics": metrics, "history": trainer.history[-1:]}, fh,
                      indent=2)
    done = trainer.iteration - start_iter
    return TrainResult(out, trainer.iteration, cancelled, metrics, seconds, done / seconds if seconds > 0 else 0.0,
                       head_model, ranks)


def _rank0_work(trainer: Trainer, iteration: int, checkpoint: Path) -> tuple[dict | None, Tensor | None]:
    """Periodic evaluation, preview and checkpoint (rank 0's alone) -> (evaluation, preview) of this step."""
    config = trainer.config
    evaluation = None
    if config.eval_interval and iteration % config.eval_interval == 0:
        evaluation = {s: trainer.evaluate(s, config.eval_max_frames) for s in ("val", "test")}
        trainer.evaluations.append({"iteration": iteration,
                                    **{f"{s}_psnr": v.get("psnr", float("nan")) for s, v in evaluation.items()}})
    preview = trainer.preview() if config.preview_interval and iteration % config.preview_interval == 0 else None
    if config.checkpoint_interval and iteration % config.checkpoint_interval == 0:
        save_checkpoint(trainer.state_dict(), checkpoint)
    return evaluation, preview


def dataset_needs_flame(dataset: str | Path) -> bool:
    """Whether a dataset was tracked with FLAME (its first FLAME file's static offset has FLAME's rows)."""
    frames = read_dataset(dataset, check_files=False).frames("train")
    offset = read_flame_npz(frames[0].flame_param_path).static_offset if frames else None
    return offset is not None and made_on_flame(int(offset.shape[0]))
