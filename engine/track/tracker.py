"""Tracking a clip: the head's landmark embedding, the landmark fit, the optional photometric pass."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.render.camera import Camera
from engine.track.clip import Clip
from engine.track.config import TrackConfig
from engine.track.embedding import LandmarkEmbedding, landmark_embedding
from engine.track.fit import LandmarkFitter, PointSet, track_landmarks
from engine.track.landmarks import Landmarker
from engine.track.photometric import Frames, PhotometricTerm, face_region
from engine.track.state import TrackState, default_focal

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]


@dataclass(frozen=True)
class Tracking:
    """What tracking found for a clip."""

    params: FlameParams  # [T] per-frame parameters (shape and static offset shared), head widths
    camera: Camera  # the clip's fixed camera (fitted focal length) at the clip's size
    fitted_landmarks: np.ndarray  # [T, P, 2] the fitted head's landmarks projected, pixels
    residual_px: np.ndarray  # [T] median landmark distance in pixels per frame (NaN without a face)
    seconds: float  # wall time of the fit


def point_set(landmarker: Landmarker, config: TrackConfig) -> PointSet:
    """Per-point weights (outline points and irises as configured) and the eye corners of a landmarker;
    its iris points are those from its first iris centre on (MediaPipe's 468–477)."""
    weights = np.ones(landmarker.count, dtype=np.float32)
    weights[np.asarray(landmarker.contour, dtype=bool)] = config.contour_weight
    if min(landmarker.iris_centres) >= 0:
        weights[min(landmarker.iris_centres):] = config.iris_weight
    return PointSet(weights, landmarker.eye_corners)


def track_clip(clip: Clip, head: HeadModel, landmarker: Landmarker, config: TrackConfig = TrackConfig(),
               embedding: LandmarkEmbedding | None = None, progress: Progress | None = None,
               cancel: Cancel | None = None) -> Tracking:
    """Fit the head to every frame of the clip (engine/track/fit.py, engine/track/photometric.py)."""
    start = time.perf_counter()
    report = progress or (lambda f, m: None)
    if embedding is None:
        report(0.0, "finding the head's landmarks")
        embedding = landmark_embedding(head, landmarker, progress=lambda f, m: report(0.05 * f, m))
    if embedding.count != landmarker.count:
        raise ValueError(f"the landmark embedding has {embedding.count} points, the landmarker {landmarker.count}")
    w, h = clip.size
    fitter = LandmarkFitter(head, embedding, torch.from_numpy(clip.landmarks), point_set(landmarker, config),
                            (w, h), config)
    focal = default_focal(w, h, config.fov_init_deg)
    distance = focal * fitter.iod_m / float(fitter.iod_px[fitter.found].median())
    state = TrackState.initial(head, clip.frames, config.expr_count, focal, distance)
    landmark_share = 0.95 if config.photometric_iters else 1.0
    with torch.enable_grad():
        track_landmarks(fitter, state, lambda f, m: report(0.05 + landmark_share * 0.95 * f, m), cancel)
        if config.photometric_iters:
            photometric_pass(fitter, state, clip, config, lambda f, m: report(0.05 + 0.9 * landmark_share + 0.05 * f, m),
                             cancel)
    params = state.params(head)
    with torch.no_grad():
        projected = fitter.project_all(state).numpy()
        residual = fitter.residuals(state).numpy()
    per_frame = np.array([np.nanmedian(r) if np.isfinite(r).any() else np.nan for r in residual])
    report(1.0, f"tracked {clip.frames} frames")
    return Tracking(params.to(dtype=torch.float32), state.camera(w, h), projected.astype(np.float32), per_frame,
                    time.perf_counter() - start)


def photometric_pass(fitter: LandmarkFitter, state: TrackState, clip: Clip, config: TrackConfig,
                     progress: Progress, cancel: Cancel | None) -> None:
    """Refine every frame against the pixels (texture from all frames first), chunk by chunk in order."""
    term = PhotometricTerm(fitter.head, face_region(fitter.head, fitter.embedding), Frames(clip.images, clip.masks),
                           state.distance, config)
    rows = torch.arange(state.frames)
    term.build_texture(state, rows[torch.from_numpy(clip.found)])
    chunks = [rows[a : a + config.chunk] for a in range(0, state.frames, config.chunk)]
    for i, chunk in enumerate(chunks):
        a = int(chunk[0])
        fitter.fit(state, chunk, config.photometric_iters, shared=False, before=a - 1 if a > 0 else None,
                   cancel=cancel, extra=term)
        progress((i + 1) / len(chunks), f"photometric pass: {int(chunk[-1]) + 1}/{state.frames} frames")
