"""Tracking benchmark: a synthetic talking-head video with known FLAME parameters through ingest, then an
avatar trained from it; and a real photo (skimage's astronaut). Ends with one JSON line.

The clip: the demo avatar (engine.avatar.demo.load_demo_avatar) under engine.track.synthetic's
talking-head sequence (one full head turn to ±40°, nods, roll, speech-like jaw, smiles, frowns, brows,
blinks, pucker), 256 px, 150 frames at 25 fps, one fixed camera, encoded to H.264 mp4 with PyAV, then
decoded, landmarked (MediaPipe), segmented and tracked exactly as `dynamicavatars ingest` does.

Figures
- landmark_px_median: median distance (pixels) between the fitted head's landmarks and MediaPipe's.
- head_deg_mae: mean angle between the tracked and true head orientation (global rotation ∘ neck).
- jaw_deg_mae: mean angle between the tracked and true jaw rotation.
- expr_mesh_mm_mae: mean vertex error (mm) of the expression part (expression blendshapes only, no pose)
  over the expressive vertices (those some expression moves ≥ 1 mm per unit); the demo head is in metres
  (eyes 64 mm apart, ear to ear 17 cm). expr_mesh_mm_zero_baseline is the same error for an all-zero
  expression estimate (what a tracker that ignores expressions scores); _all_vertices averages over every
  vertex.
- seconds_per_frame: tracking wall time per frame; ingest_seconds_per_frame: decode, landmarks,
  segmentation, tracking and writing the dataset, per frame.
- psnr_heldout_time_db: PSNR on the held-out later 15% of the clip of an avatar trained on the tracked
  dataset (one camera; views from the head turning; the training timesteps' FLAME parameters fine-tuned
  with the Gaussians, as `from-video` does), within the time budget, AFTER the held-out frames' own FLAME
  parameters were refined photometrically against the trained, frozen avatar (engine.train.pose_refine:
  analysis by synthesis on each held-out frame's own image, as a photometric tracker's last stage does;
  the Gaussians are not changed). It measures the avatar with the best parameters its renders can find
  for those frames, not novel-pose extrapolation from tracked parameters alone: that is
  psnr_heldout_time_db_tracked_only (the same avatar with the tracker's parameters on the held-out
  frames). psnr_heldout_time_db_is names which of the two psnr_heldout_time_db is.
  _true_params: the same training on the same images with the true parameters and camera (no fine-tuning,
  no refinement; the gap is the tracker's cost). pose_refine_seconds: the refinement's wall time (not in
  the training budget). heldout_head_deg_mae_tracked / _refined (and jaw): the held-out frames' head and jaw
  angle errors against the truth before and after that refinement (it never sees the truth).
  train_head_deg_mae_tracked / _finetuned (and jaw): the training frames' errors as tracked and after the
  FLAME fine-tuning during training. head_deg_mae_after_photometric / jaw_deg_mae_after_photometric: every
  frame's error with the parameters the pipeline ends with (`from-video`: training frames fine-tuned, held-out
  frames refined) -- the tracker's landmark fit followed by its photometric passes through our renderer.
- photo_landmark_iod_share: mean distance between the fitted and detected landmarks on the astronaut
  photo, as a share of the inter-ocular distance.
Timings are wall times on whatever the machine is doing at the time (a shared 2-core machine here).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402,F401  (before torch: sets the OpenMP wait policy, see engine/__init__.py)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.avatar.demo import load_demo_avatar  # noqa: E402
from engine.data.vhap_format import read_dataset  # noqa: E402
from engine.head.model import HeadModel, load_head  # noqa: E402
from engine.head.params import FlameParams  # noqa: E402
from engine.track.clip import read_clip  # noqa: E402
from engine.track.config import TrackConfig  # noqa: E402
from engine.track.dataset_out import write_tracked_dataset  # noqa: E402
from engine.track.ingest import IngestConfig, ingest  # noqa: E402
from engine.track.landmarks import default_landmarker, default_segmenter  # noqa: E402
from engine.track.rotations import angle_between, axis_angle_to_matrix, head_rotations  # noqa: E402
from engine.track.sources import FrameSelection  # noqa: E402
from engine.track.synthetic import ClipSpec, clip_camera, render_clip, talking_head_params, write_mp4  # noqa: E402
from engine.track.tracker import Tracking, track_clip  # noqa: E402
from engine.train.config import DensifyConfig, TrainConfig, monocular  # noqa: E402
from engine.train.pose_refine import PoseRefineConfig, mean_psnr, refine_timesteps  # noqa: E402
from engine.train.trainer import Trainer  # noqa: E402

HOLDOUT = 0.15
QUICK_TRACK = TrackConfig(keyframes=4, identity_iters=60, chunk=16, chunk_iters=4, keyframe_iters=4)


def degrees(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[T] angles in degrees between rotation matrices a and b [T, 3, 3]."""
    return torch.rad2deg(angle_between(a, b))


def tracking_errors(head: HeadModel, est: FlameParams, truth: FlameParams) -> dict[str, float]:
    """Head and jaw angle errors and expression mesh errors of tracked vs true parameters."""
    head_err = degrees(head_rotations(est), head_rotations(truth))
    jaw_err = degrees(axis_angle_to_matrix(est.jaw_pose), axis_angle_to_matrix(truth.jaw_pose))
    dirs = head.exprdirs  # [V, 3, E]
    expressive = dirs.norm(dim=1).max(dim=1).values >= 1e-3  # moved ≥ 1 mm by a unit of some expression

    def mesh_mm(expr: torch.Tensor) -> torch.Tensor:
        return torch.einsum("vck,tk->tvc", dirs, expr[:, : dirs.shape[2]]).norm(dim=-1) * 1000.0  # [T, V]

    error = mesh_mm(est.expr - truth.expr)
    return {
        "head_deg_mae": float(head_err.mean()),
        "head_deg_max": float(head_err.max()),
        "jaw_deg_mae": float(jaw_err.mean()),
        "expr_mesh_mm_mae": float(error[:, expressive].mean()),
        "expr_mesh_mm_zero_baseline": float(mesh_mm(truth.expr)[:, expressive].mean()),
        "expr_mesh_mm_mae_all_vertices": float(error.mean()),
    }


def train_avatar(dataset: Path, config: TrainConfig, minutes: float, label: str) -> tuple[Trainer, float]:
    """(the trainer, seconds) after training on dataset within `minutes`."""
    trainer = Trainer(load_head("demo"), read_dataset(dataset), config)
    start = time.perf_counter()
    while trainer.iteration < config.iters and time.perf_counter() - start < minutes * 60:
        stats = trainer.step()
        if stats.iteration % 250 == 0:
            print(f"{label}: it {stats.iteration} psnr {stats.psnr:.2f} n={stats.gaussians} "
                  f"{time.perf_counter() - start:.0f}s", file=sys.stderr)
    return trainer, time.perf_counter() - start


def refined_psnr(trainer: Trainer, config: PoseRefineConfig) -> tuple[float, float, FlameParams]:
    """(held-out PSNR after refining the held-out frames' parameters against the frozen avatar, seconds, the
    avatar's parameters with the held-out rows refined)."""
    start = time.perf_counter()
    avatar = trainer.avatar()
    refined = refine_timesteps(avatar, trainer.dataset, trainer.dataset.timesteps("test"), config)
    seconds = time.perf_counter() - start
    psnr = mean_psnr(replace(avatar, params=refined.params), trainer.dataset, "test", config.resolution)
    return psnr, seconds, refined.params


def heldout_head_errors(trainer: Trainer, refined: FlameParams, truth: FlameParams) -> dict[str, float]:
    """Head and jaw angle errors (degrees) on the held-out timesteps, of the tracked and of the refined parameters."""
    rows = torch.tensor([trainer.row[t] for t in trainer.dataset.timesteps("test")])
    true_rows = torch.tensor(trainer.dataset.timesteps("test"))  # the clip's timesteps are its frame numbers
    out = {}
    for name, params in (("tracked", trainer.flame), ("refined", refined)):
        errors = tracking_errors(trainer.head, params.to("cpu").frame(rows), truth.frame(true_rows))
        out[f"heldout_head_deg_mae_{name}"] = errors["head_deg_mae"]
        out[f"heldout_jaw_deg_mae_{name}"] = errors["jaw_deg_mae"]
    return out


def pipeline_errors(trainer: Trainer, refined: FlameParams, truth: FlameParams) -> dict[str, float]:
    """Head and jaw angle errors (degrees) of the parameters the pipeline ends with: the training timesteps'
    as fine-tuned photometrically during training, the held-out ones' as refined against the frozen avatar;
    and the training timesteps' alone, tracked and fine-tuned."""
    train = trainer.dataset.timesteps("train")
    rows = torch.tensor([trainer.row[t] for t in train])
    finetuned = trainer.current_flame()
    out = {}
    for name, params in (("tracked", trainer.flame.to("cpu")), ("finetuned", finetuned)):
        errors = tracking_errors(trainer.head, params.frame(rows), truth.frame(torch.tensor(train)))
        out[f"train_head_deg_mae_{name}"] = errors["head_deg_mae"]
        out[f"train_jaw_deg_mae_{name}"] = errors["jaw_deg_mae"]
    # refined holds every row (trainer.timesteps order): the trained avatar's, fine-tuned, with the held-out rows refined
    errors = tracking_errors(trainer.head, refined.to("cpu"), truth.frame(torch.tensor(trainer.timesteps)))
    out["head_deg_mae_after_photometric"] = errors["head_deg_mae"]
    out["jaw_deg_mae_after_photometric"] = errors["jaw_deg_mae"]
    return out


def photo_share(work: Path, track: TrackConfig) -> float:
    """Mean fitted-to-detected landmark distance on the astronaut photo, × 1 / inter-ocular distance."""
    from PIL import Image
    from skimage import data

    photo = work / "astronaut.png"
    Image.fromarray(data.astronaut()).save(photo)
    ingest(photo, work / "astronaut", IngestConfig(holdout=0.0, track=track))
    marks = np.load(work / "astronaut" / "landmarks.npz")
    detected, fitted = marks["detected"][0], marks["fitted"][0]
    iod = np.linalg.norm((detected[33] + detected[133]) / 2 - (detected[263] + detected[362]) / 2)
    return float(np.nanmean(np.linalg.norm(detected - fitted, axis=1)) / iod)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="16 frames, short tracking and training (under a minute)")
    ap.add_argument("--frames", type=int, default=150, help="frames of the synthetic clip")
    ap.add_argument("--minutes", type=float, default=20.0, help="training time budget per avatar")
    ap.add_argument("--iters", type=int, default=6000, help="training iterations at most (the schedule spans these)")
    ap.add_argument("--photometric", type=int, default=0, help="photometric tracking steps per chunk (0: off)")
    ap.add_argument("--finetune", action=argparse.BooleanOptionalAction, default=True,
                    help="fine-tune the tracked training timesteps' FLAME parameters while training (as from-video)")
    ap.add_argument("--refine-iters", type=int, default=None,
                    help=f"steps of held-out pose refinement per frame (default {PoseRefineConfig.iters}; quick 10)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--work", default=None, help="folder for the clip and datasets (default: a temporary one)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    frames = 16 if args.quick else args.frames
    track = replace(QUICK_TRACK if args.quick else TrackConfig(), photometric_iters=args.photometric)
    train = TrainConfig(iters=30 if args.quick else args.iters, resolution=128 if args.quick else 256,
                        eval_interval=0, preview_interval=0, checkpoint_interval=0)
    if args.quick:
        train = replace(train, densify=DensifyConfig(start=1000))
    minutes = 0.2 if args.quick else args.minutes
    refine = PoseRefineConfig(iters=args.refine_iters or (10 if args.quick else PoseRefineConfig.iters),
                              resolution=train.resolution)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_track_"))
    work.mkdir(parents=True, exist_ok=True)

    head = load_head("demo")
    spec = ClipSpec(frames=frames, size=256, max_yaw_deg=40.0)
    truth = talking_head_params(head, spec)
    camera = clip_camera(head, spec)
    t0 = time.perf_counter()
    video = write_mp4(work / "talking_head.mp4", render_clip(load_demo_avatar(), truth, camera), spec.fps)
    print(f"rendered and encoded {frames} frames in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    start = time.perf_counter()
    landmarker, segmenter = default_landmarker(), default_segmenter()
    clip = read_clip(str(video), FrameSelection(), 256, landmarker, segmenter, "auto")
    tracking = track_clip(clip, head, landmarker, track)
    tracked = write_tracked_dataset(work / "tracked", clip, tracking, head, HOLDOUT)
    ingest_seconds = time.perf_counter() - start
    errors = tracking_errors(head, tracking.params, truth)
    residual = np.linalg.norm(clip.landmarks - tracking.fitted_landmarks, axis=-1)
    true_tracking = Tracking(truth, camera, tracking.fitted_landmarks, tracking.residual_px, 0.0)
    reference = write_tracked_dataset(work / "true_params", clip, true_tracking, head, HOLDOUT)
    print(f"tracked {frames} frames in {tracking.seconds:.0f} s: {errors}", file=sys.stderr)

    tracked_trainer, seconds = train_avatar(tracked, monocular(train) if args.finetune else train, minutes, "tracked")
    psnr_tracked_only = tracked_trainer.evaluate("test")["psnr"]
    psnr, refine_seconds, refined = refined_psnr(tracked_trainer, refine)
    heldout_errors = heldout_head_errors(tracked_trainer, refined, truth)
    heldout_errors.update(pipeline_errors(tracked_trainer, refined, truth))
    true_trainer, seconds_true = train_avatar(reference, train, minutes, "true params")
    psnr_true = true_trainer.evaluate("test")["psnr"]
    share = photo_share(work, track)
    for thing in (landmarker, segmenter):
        thing.close()
    figures = {
        "landmark_px_median": float(np.nanmedian(residual)),
        **{k: v for k, v in errors.items()},
        "seconds_per_frame": tracking.seconds / frames,
        "ingest_seconds_per_frame": ingest_seconds / frames,
        "focal_rel_error": abs(tracking.camera.fx - camera.fx) / camera.fx,
        "psnr_heldout_time_db": psnr,
        "psnr_heldout_time_db_is": "held-out poses refined against the frozen avatar",
        "psnr_heldout_time_db_tracked_only": psnr_tracked_only,
        "psnr_heldout_time_db_true_params": psnr_true,
        "pose_refine_seconds": refine_seconds,
        **heldout_errors,
        "train_iters": tracked_trainer.iteration,
        "train_seconds": seconds,
        "flame_finetuned": args.finetune,
        "train_iters_true_params": true_trainer.iteration,
        "train_seconds_true_params": seconds_true,
        "photo_landmark_iod_share": share,
        "frames": frames,
        "size": spec.size,
        "photometric_iters": track.photometric_iters,
        "quick": args.quick,
    }
    print(json.dumps({k: round(v, 4) if isinstance(v, float) and math.isfinite(v) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
