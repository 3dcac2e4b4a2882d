"""Tracking settings, one documented field each (defaults tuned on the synthetic talking head, 2 CPU cores)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrackConfig:
    """How FLAME is fitted to a clip's landmarks, foreground and pixels."""

    keyframes: int = 12  # frames spread over the clip fitted together first: identity, static offsets, focal
    identity_iters: int = 300  # optimisation steps of that stage
    single_image_iters: int = 900  # ... when the input is one photo (that stage is all its fit; cheap for one frame)
    chunk: int = 25  # frames fitted together afterwards, in order, each chunk warm-started from the frame before
    chunk_iters: int = 8  # Levenberg–Marquardt iterations per chunk
    keyframe_iters: int = 8  # Levenberg–Marquardt iterations on the keyframes between identity updates
    lr: float = 0.02  # Adam step size (parameters are scaled so one size suits all: rad, cm, mm, coefficients)
    lr_final_fraction: float = 0.05  # each stage's step size decays exponentially to this fraction of lr
    expr_count: int = 50  # expression coefficients fitted (the head's first ones; fewer when it has fewer)
    fit_focal: bool = True  # fit the focal length (else keep the initial guess)
    fov_init_deg: float = 40.0  # initial guess: field of view across the image's longer side (one photo, or no search)
    focal_search_fov_deg: tuple[float, ...] = (18.0, 25.0, 34.0, 46.0, 62.0)  # fields of view the keyframe stage
    # is tried at (a video); the best fit's neighbourhood gives the start (landmarks alone leave the focal where it starts)
    robust_scale: float = 0.03  # landmark residual scale of the robust (Cauchy) loss, × inter-ocular distance
    contour_weight: float = 0.2  # weight of face-outline landmarks (they slide with the view)
    iris_weight: float = 1.0  # weight of iris landmarks (gaze)
    view_offsets: bool = True  # move each landmark by its view-dependent offset (when the embedding has them)
    w_shape: float = 1e-3  # prior on identity coefficients (squared)
    w_expr: float = 0.1  # prior on expression coefficients (squared); weaker priors let MediaPipe's pose-dependent
    # errors into the expressions (synthetic clip, moving vertices: 0.002 -> 3.0 mm, 0.02 -> 1.2 mm, 0.1 -> 0.7 mm)
    w_static: float = 1e-2  # prior on static offsets (squared, in mm)
    w_static_smooth: float = 1.0  # Laplacian smoothness of static offsets (in mm)
    w_neck: float = 1.0  # prior holding the neck joint still (the global rotation turns the head)
    w_jaw_side: float = 1.0  # prior on the jaw's sideways and twisting rotation
    w_eyes: float = 1e-2  # prior on eye rotation
    w_focal: float = 1e-2  # prior on log focal length around the initial guess
    w_smooth: float = 2.0  # temporal smoothness: squared differences to the neighbouring frames' parameters
    w_silhouette: float = 0.5  # mesh drawn outside the foreground mask (photometric pass)
    photometric_iters: int = 0  # steps of the final photometric pass per chunk (0: off)
    photometric_size: int = 128  # longer image side the photometric pass renders at
    photometric_weight: float = 1.0  # weight of the L1 colour term
