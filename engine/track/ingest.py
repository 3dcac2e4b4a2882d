"""Ingest: a video, a folder of images or one photo in, a tracked dataset the trainer reads out.

decode → crop → landmarks and foreground (engine/track/clip.py) → the head's landmark embedding →
tracking (engine/track/tracker.py) → the VHAP / GaussianAvatars layout (engine/track/dataset_out.py).
The CLI (`dynamicavatars ingest`) and the GUI's "New avatar from video…" both call `ingest`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from engine.head.model import HeadModel, load_head
from engine.track.clip import read_clip
from engine.track.config import TrackConfig
from engine.track.dataset_out import time_split, write_tracked_dataset
from engine.track.landmarks import Landmarker, Segmenter, default_landmarker, default_segmenter
from engine.track.sources import FrameSelection, IngestError, probe
from engine.track.tracker import track_clip

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]

STAGES: tuple[tuple[str, float], ...] = (("decode", 0.25), ("track", 0.6), ("write", 0.15))
"""Ingest's stages and their share of its progress bar."""


@dataclass(frozen=True)
class IngestConfig:
    """What to read and how to make the dataset."""

    selection: FrameSelection = field(default_factory=FrameSelection)  # time range, stride, frame limit
    size: int = 512  # longer side of the dataset's images in pixels (never enlarged)
    crop: Literal["auto", "none"] = "auto"  # auto: one square crop around the face for the whole clip
    holdout: float = 0.15  # the later fraction of the frames held out for evaluation ("test" split)
    segment: bool = True  # write foreground masks (and composite the images over white)
    track: TrackConfig = field(default_factory=TrackConfig)  # how FLAME is fitted


@dataclass(frozen=True)
class IngestResult:
    """What ingest made."""

    dataset: Path  # the dataset folder
    frames: int  # frames written
    found: int  # frames where the landmarker found the face
    seconds: float  # wall time of the whole ingest
    tracking_seconds: float  # of which tracking
    residual_px: float  # median landmark distance over all frames, pixels
    focal: float  # fitted focal length at the dataset's image size, pixels


def ingest(source: str | Path, out: str | Path, config: IngestConfig = IngestConfig(),
           head: HeadModel | str | None = None, progress: Progress | None = None, cancel: Cancel | None = None,
           landmarker: Landmarker | None = None, segmenter: Segmenter | None = None) -> IngestResult:
    """Make a tracked dataset at `out` from a video, an image folder or a photo (see module docstring)."""
    start = time.perf_counter()
    info = probe(source)  # a bad input fails here, before any model is loaded
    head_model = head if isinstance(head, HeadModel) else load_head(head)
    report = progress or (lambda f, m: None)
    owned: list[Landmarker | Segmenter] = []
    if landmarker is None:  # the default: MediaPipe finding the face anew in every frame, a video's too (the head's
        # landmark embedding is calibrated on such detections; on the synthetic clip, 150 frames, quick tracking,
        # head error 3.8° from its tracking mode's landmarks, 3.3° from per-frame ones)
        landmarker = default_landmarker()
        owned.append(landmarker)
    if segmenter is None and config.segment:
        segmenter = default_segmenter()
        owned.append(segmenter)
    try:
        clip = read_clip(str(source), config.selection, config.size, landmarker, segmenter if config.segment else None,
                         config.crop, _stage(report, 0), cancel)
        if info.kind != "photo" and config.holdout > 0 and "test" not in time_split(clip.frames, config.holdout):
            raise IngestError(info.path, f"too short: {clip.frames} frame(s) leave none to hold out as the later "
                                         f"{config.holdout:.0%}; take a longer time range or a smaller stride, or hold "
                                         "out nothing (--holdout 0)")
        tracking = track_clip(clip, head_model, landmarker, config.track, progress=_stage(report, 1), cancel=cancel)
        meta = {"landmarker": landmarker.name, "config": _config_dict(config)}
        dataset = write_tracked_dataset(out, clip, tracking, head_model, config.holdout, meta, _stage(report, 2), cancel)
    finally:
        for thing in owned:
            thing.close()
    residual = float(_nanmedian(tracking.residual_px))
    return IngestResult(dataset, clip.frames, int(clip.found.sum()), time.perf_counter() - start, tracking.seconds,
                        residual, tracking.camera.fx)


def _stage(report: Progress, index: int) -> Progress:
    before = sum(share for _, share in STAGES[:index])
    share = STAGES[index][1]
    return lambda f, m: report(before + share * max(0.0, min(1.0, f)), m)


def _config_dict(config: IngestConfig) -> dict:
    data = asdict(config)
    data["selection"] = asdict(config.selection)
    return data


def _nanmedian(values: np.ndarray) -> float:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if finite.size else float("nan")
