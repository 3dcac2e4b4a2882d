"""A video in, an avatar out: ingest (decode → landmarks → tracking → dataset), then training.

RUN/dataset holds the tracked dataset (kept for re-training), RUN/avatar, RUN/checkpoint.pt and
RUN/metrics.json what training writes. Training fine-tunes the training frames' FLAME parameters
(engine.train.config.monocular); after it, the held-out frames' parameters are refined against the
trained avatar (engine.train.pose_refine), so every frame of RUN/avatar's sequence is the avatar's
own best fit of that frame; RUN/metrics.json then also holds the held-out PSNR with the refined
parameters (psnr_heldout_after_pose_refine; metrics.test.psnr is training's, with the tracked ones). `resume=True` keeps a complete RUN/dataset and continues
training from RUN/checkpoint.pt. The CLI (`dynamicavatars from-video`) and the GUI's "New avatar
from video…" wizard both call `from_video`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from engine.avatar.files import load_avatar
from engine.head.model import HeadModel, load_head
from engine.io.atomic import FileFormatError, atomic_write
from engine.io.json_file import read_json
from engine.track.dataset_out import read_track_record
from engine.track.ingest import IngestConfig, IngestResult, ingest
from engine.track.landmarks import Landmarker, Segmenter
from engine.data.vhap_format import AvatarDataset, read_dataset
from engine.train.config import TrainConfig, monocular
from engine.train.pose_refine import PoseRefineConfig, RefineResult, mean_psnr, refine_avatar_folder
from engine.train.run import AVATAR_DIR, TrainReport, TrainResult, train

DATASET_DIR = "dataset"
INGEST_SHARE = 0.3  # of the whole progress bar
REFINE_SHARE = 0.05  # of the whole progress bar (training takes the rest)

MONOCULAR = monocular(TrainConfig())  # training settings for a tracked clip (FLAME fine-tuning on)

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]


@dataclass(frozen=True)
class FromVideoResult:
    """What a run made."""

    dataset: Path  # RUN/dataset
    ingest: IngestResult | None  # None when an existing dataset was kept (resume)
    train: TrainResult  # training's result (cancelled=True when it was stopped; its checkpoint is saved)
    refine: RefineResult | None = None  # the held-out frames' pose refinement (None: cancelled before it, or no
    # held-out frames)
    psnr_after_refine: float | None = None  # mean held-out PSNR (dB) with the refined parameters (None: not refined)


def dataset_complete(folder: str | Path) -> bool:
    """True when folder holds a dataset ingest finished writing."""
    path = Path(folder)
    return (path / "transforms_train.json").is_file() and read_track_record(path) is not None


def avatar_name(source: str | Path) -> str:
    """The made avatar's name: the video's or photo's file stem, or the image folder's name."""
    path = Path(source)
    return path.name if path.is_dir() else path.stem


def from_video(source: str | Path, run: str | Path, ingest_config: IngestConfig = IngestConfig(),
               train_config: TrainConfig = MONOCULAR, head: HeadModel | str | None = None, resume: bool = False,
               progress: Progress | None = None, cancel: Cancel | None = None,
               report: Callable[[TrainReport], None] | None = None, landmarker: Landmarker | None = None,
               segmenter: Segmenter | None = None,
               refine_config: PoseRefineConfig | None = PoseRefineConfig()) -> FromVideoResult:
    """Ingest `source` into RUN/dataset (unless resuming with a complete one), train an avatar in RUN named after
    the source (`avatar_name`), then refine its held-out frames' parameters against it at the training resolution
    (refine_config None: not)."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    head_model = head if isinstance(head, HeadModel) else load_head(head)
    tell = progress or (lambda f, m: None)
    dataset = run / DATASET_DIR
    made = None
    if not (resume and dataset_complete(dataset)):
        made = ingest(source, dataset, ingest_config, head_model, lambda f, m: tell(INGEST_SHARE * f, m), cancel,
                      landmarker, segmenter)

    def on_step(r: TrainReport) -> None:
        tell(INGEST_SHARE + (1 - INGEST_SHARE - REFINE_SHARE) * r.step.iteration / r.total,
             f"training: iteration {r.step.iteration}/{r.total}, PSNR {r.step.psnr:.1f} dB")
        if report is not None:
            report(r)

    tell(INGEST_SHARE, "training")
    result = train(dataset, run, train_config, head_model, resume=resume, report=on_step, cancel=cancel,
                   name=avatar_name(source))
    refined = None
    data = read_dataset(dataset)
    if refine_config is not None and not result.cancelled and data.frames("test"):
        config = replace(refine_config, resolution=train_config.resolution, backend=train_config.backend)
        refined = refine_avatar_folder(run / AVATAR_DIR, data, "test", config, result.head,
                                       lambda f, m: tell(1 - REFINE_SHARE * (1 - f), m), cancel)
    after = _record_refined_psnr(run, data, train_config, result.head) if refined and refined.timesteps else None
    return FromVideoResult(dataset, made, result, refined, after)


def _record_refined_psnr(run: Path, data: AvatarDataset, config: TrainConfig, head: HeadModel) -> float:
    """The held-out PSNR of RUN/avatar with its refined parameters at the training resolution, added to
    RUN/metrics.json (atomically) as psnr_heldout_after_pose_refine."""
    value = mean_psnr(load_avatar(run / AVATAR_DIR, head), data, "test", config.resolution, config.backend)
    path = run / "metrics.json"
    metrics = read_json(path, lambda problem: FileFormatError(path, problem))
    metrics["psnr_heldout_after_pose_refine"] = value
    with atomic_write(path, "w") as fh:
        json.dump(metrics, fh, indent=2)
    return value
