"""Fitting FLAME to a clip's landmarks: identity on keyframes first, then every frame in order.

Stage 1 (keyframes spread over the clip, fitted together): identity coefficients, static offsets,
the focal length and the keyframes' own parameters, each keyframe's head pose started from a
closed-form weak-perspective alignment of the neutral landmarks; rounds of per-frame
Levenberg–Marquardt (engine/track/gauss_newton.py) alternate with Adam on everything. For a video
the stage is first run at a few fields of view with the focal held (TrackConfig.focal_search_fov_deg),
and starts again from the parabola through the best of them: landmarks change little with the
focal, and from a wrong start the fit never reached the right one (synthetic clip: 40° guess, 25°
true, ended at 34° with the head 3.1° off; with the search 1.5°).
Stage 2 (chunks of consecutive frames, in order): per-frame rotation, translation, neck, jaw,
eyes and expression by Levenberg–Marquardt with the identity held, each chunk warm-started from the
frame before it (expression, jaw, eyes, neck) and from each frame's own closed-form alignment (head
pose), tied to the frame before by the smoothness term.
Losses: robust (Cauchy) landmark reprojection (engine/track/losses.py), priors, temporal smoothness.
The posed landmarks carry the embedding's view-dependent offsets (engine/track/view_offsets.py).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.track import losses, view_offsets
from engine.track.config import TrackConfig
from engine.track.embedding import LandmarkEmbedding
from engine.track.gauss_newton import TRANSLATION_UNIT, pack, solve_frames, unpack
from engine.track.head_points import HeadPoints
from engine.track.rotations import head_rotations, matrix_to_axis_angle
from engine.track.sources import IngestCancelled
from engine.track.state import PER_FRAME, TrackState, default_focal, params_of, project

OFFSET_UNIT = 0.001  # static offsets are optimised in millimetres
IDENTITY_ROUNDS = 3  # alternations of the keyframe stage
SEARCH_SHARE = 0.5  # of the landmark fit's progress bar: the focal search (five keyframe stages)
Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]
ExtraLoss = Callable[[Tensor, FlameParams, Tensor], Tensor]
"""extra(rows [R], params of those frames, focal []) -> a scalar loss added to fitting's."""


@dataclass(frozen=True)
class PointSet:
    """What fitting needs to know about the landmarker's points."""

    weights: np.ndarray  # [P] float per-point weight (outline points lower, irises as configured)
    eye_corners: tuple[tuple[int, int], tuple[int, int]]  # (outer, inner) of the right and left eye


class LandmarkFitter:
    """Poses the embedded landmarks of a head and fits TrackState slices to observed landmarks."""

    def __init__(self, head: HeadModel, embedding: LandmarkEmbedding, landmarks: Tensor, points: PointSet,
                 size: tuple[int, int], config: TrackConfig) -> None:
        assert landmarks.ndim == 3 and landmarks.shape[1:] == (embedding.count, 2), (
            f"landmarks must be [T, {embedding.count}, 2], got {tuple(landmarks.shape)}"
        )
        self.head, self.config, self.embedding = head, config, embedding
        self.landmarks = landmarks.float()  # [T, P, 2], NaN rows where no face was found
        self.width, self.height = size
        ids, self.corners = embedding.vertex_ids(head.faces)
        self.points = HeadPoints(head, ids)
        self.points64 = copy.deepcopy(self.points).double()  # Levenberg–Marquardt's forward differences
        self.bary = embedding.bary.float()
        self.bary64 = embedding.bary.double()
        self.weights = torch.as_tensor(points.weights, dtype=torch.float32) * embedding.valid.float()
        self.found = torch.isfinite(self.landmarks[:, 0, 0])
        (r_out, r_in), (l_out, l_in) = points.eye_corners
        eyes = lambda x: (0.5 * (x[..., r_out, :] + x[..., r_in, :]), 0.5 * (x[..., l_out, :] + x[..., l_in, :]))
        right, left = eyes(self.landmarks)
        iod = (right - left).norm(dim=-1)
        self.iod_px = torch.where(torch.isfinite(iod), iod, torch.nanmedian(iod) if self.found.any() else iod)
        self.scale = config.robust_scale * self.iod_px.clamp(min=1.0)
        with torch.no_grad():
            neutral = self.landmarks3d(head.neutral_params(), self.bary)[0]
        r3, l3 = eyes(neutral)
        self.iod_m = float((r3 - l3).norm())
        self.neutral = neutral  # [P, 3]
        self.edges, self.degree = losses.mesh_edges(head.faces, head.n_verts)
        self.view_offset = embedding.view_offset if config.view_offsets else None  # [P, K, 3] or None

    def landmarks3d(self, params, bary: Tensor | None = None, distance: float | None = None,
                    points: HeadPoints | None = None) -> Tensor:
        """[T, P, 3] landmark positions for FlameParams; with the camera `distance`, each moved by its
        view-dependent offset (when the embedding has them and the config uses them)."""
        verts = (self.points if points is None else points)(params)  # [T, K, 3]
        b = self.bary if bary is None else bary
        marks = (verts[:, self.corners] * b[None, :, :, None]).sum(-2)
        if distance is None or self.view_offset is None:
            return marks
        rot = head_rotations(params)  # [T, 3, 3]
        eye = torch.tensor([0.0, 0.0, distance], dtype=marks.dtype)
        return marks + view_offsets.world_offsets(self.view_offset, marks, rot, eye)

    # ---- initialisation ---------------------------------------------------------------------------
    def rigid_guess(self, row: int, focal: float, distance: float) -> tuple[Tensor, Tensor]:
        """(rotation [3], translation [3]) aligning the neutral landmarks to frame row's by weak perspective."""
        obs = self.landmarks[row]
        w = self.weights * torch.isfinite(obs[:, 0])
        keep = w > 0
        x3 = self.neutral[keep].double()
        x2 = obs[keep].double()
        wk = w[keep].double()[:, None]
        x2 = torch.stack([x2[:, 0] - self.width / 2, -(x2[:, 1] - self.height / 2)], dim=1)  # +y up
        m3 = (wk * x3).sum(0) / wk.sum()
        m2 = (wk * x2).sum(0) / wk.sum()
        a3, a2 = (x3 - m3) * wk.sqrt(), (x2 - m2) * wk.sqrt()
        affine = torch.linalg.lstsq(a3, a2).solution.T  # [2, 3]: x2 ≈ affine · x3
        s = 0.5 * (affine[0].norm() + affine[1].norm())
        r1, r2 = affine[0] / affine[0].norm(), affine[1] / affine[1].norm()
        u, _, vh = torch.linalg.svd(torch.stack([r1, r2, torch.linalg.cross(r1, r2)]))
        rot = u @ vh
        if torch.det(rot) < 0:
            rot = u @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=rot.dtype)) @ vh
        depth = focal / float(s)
        root = self.points.joint_template[0].double()  # the global rotation turns the head about its root joint
        centre = rot @ (m3 - root) + root  # the landmark centroid rotated, before translation
        t = torch.stack([m2[0] * depth / focal - centre[0], m2[1] * depth / focal - centre[1],
                         (distance - depth) - centre[2]])
        return matrix_to_axis_angle(rot).float(), t.float()

    # ---- one optimisation stage -------------------------------------------------------------------
    def fit(self, state: TrackState, rows: Tensor, iters: int, shared: bool, before: int | None = None,
            cancel: Cancel | None = None, smooth: bool = True, extra: ExtraLoss | None = None,
            landmark_weight: float = 1.0, fit_focal: bool | None = None) -> float:
        """Optimise the frames `rows` (a sorted [R] long tensor) of state in place; shared=True also
        fits identity, static offsets and focal. `before` is the row whose (fixed) values the
        smoothness chain starts from; `extra(rows, params, focal)` adds a loss (the photometric
        pass). Returns the final loss."""
        c = self.config
        scale_of = {"translation": 1 / TRANSLATION_UNIT}
        frame = {k: torch.nn.Parameter(getattr(state, k)[rows].clone() * scale_of.get(k, 1.0)) for k in PER_FRAME}
        groups: list[dict] = [{"params": list(frame.values()), "lr": c.lr}]
        shape = torch.nn.Parameter(state.shape.clone()) if shared else state.shape
        offset = torch.nn.Parameter(state.static_offset / OFFSET_UNIT) if shared else state.static_offset / OFFSET_UNIT
        fit_focal = c.fit_focal if fit_focal is None else fit_focal
        log_focal = torch.nn.Parameter(state.log_focal.clone()) if shared and fit_focal else state.log_focal
        if shared:
            groups.append({"params": [shape, offset], "lr": c.lr})
            if fit_focal:
                groups.append({"params": [log_focal], "lr": c.lr * 0.5})
        prev = None
        if before is not None and smooth:
            prev = {k: getattr(state, k)[before] * scale_of.get(k, 1.0) for k in PER_FRAME}
        obs, scale = self.landmarks[rows], self.scale[rows]
        log_focal0 = float(state.log_focal) if not shared else float(log_focal.detach())

        def objective() -> Tensor:
            if cancel is not None and cancel():
                raise IngestCancelled("tracking cancelled")
            values = {k: v / scale_of.get(k, 1.0) for k, v in frame.items()}
            values["translation"] = follow_focal(values["translation"], log_focal - log_focal0, state.distance)
            params = params_of(self.head, shape, offset * OFFSET_UNIT, values)
            proj = project(self.landmarks3d(params, distance=state.distance), log_focal.exp(), state.distance,
                           self.width / 2, self.height / 2)
            loss = landmark_weight * losses.robust_landmark_loss(proj, obs, self.weights, scale)
            loss = loss + self._priors(frame, shape, offset, log_focal, log_focal0, shared)
            if extra is not None:
                loss = loss + extra(rows, params, log_focal.exp())
            if smooth and len(rows) > 1 or prev is not None:
                chain = torch.cat([frame[k].reshape(len(rows), -1) for k in PER_FRAME], dim=1)
                start = None if prev is None else torch.cat([prev[k].reshape(-1) for k in PER_FRAME])
                loss = loss + c.w_smooth * losses.temporal_smoothness(chain, start)
            return loss

        loss = minimise(objective, groups, iters, c)
        with torch.no_grad():
            frame["translation"].copy_(follow_focal(frame["translation"] * TRANSLATION_UNIT, log_focal - log_focal0,
                                                    state.distance) / TRANSLATION_UNIT)
            for k, v in frame.items():
                getattr(state, k)[rows] = v.detach() / scale_of.get(k, 1.0)
            if shared:
                state.shape = shape.detach().clone()
                state.static_offset = offset.detach() * OFFSET_UNIT
                state.log_focal = log_focal.detach().clone()
            state.fitted[rows] = True
        return float(loss)

    def refine_frames(self, state: TrackState, rows: Tensor, iters: int, before: int | None = None,
                      cancel: Cancel | None = None, smooth: bool = True) -> None:
        """Levenberg–Marquardt on the frames `rows` of state in place (identity, offsets and focal held)."""
        c = self.config
        n_expr = state.expr.shape[1]
        t = len(rows)
        obs = self.landmarks[rows].double()  # [T, P, 2]
        seen = torch.isfinite(obs[..., 0])  # [T, P]
        total = (self.weights[None] * seen).sum(1, keepdim=True).clamp(min=1e-9)  # [T, 1]
        share = (self.weights[None] * seen / total).repeat_interleave(2, dim=1).double()  # [T, 2P] weight shares
        coef = share.sqrt() / self.scale[rows, None].double()  # [T, 2P]
        target = torch.nan_to_num(obs).reshape(t, -1)
        focal = state.log_focal.double().exp()
        shape, offset = state.shape.double(), state.static_offset.double()
        points = self.points64

        def residuals(x: Tensor) -> Tensor:  # [N, T, D] -> [N, T, 2P]
            n = x.shape[0]
            params = params_of(self.head, shape, offset, unpack(x.reshape(n * t, -1), n_expr))
            marks = self.landmarks3d(params, self.bary64, state.distance, points)
            proj = project(marks, focal, state.distance, self.width / 2, self.height / 2)
            return coef * (proj.reshape(n, t, -1) - target)

        prior = torch.cat([torch.zeros(6), torch.full((3,), c.w_neck), torch.tensor([0.0, c.w_jaw_side, c.w_jaw_side]),
                           torch.full((6,), c.w_eyes), torch.full((n_expr,), c.w_expr)]) * 2.0
        x0 = pack({k: getattr(state, k)[rows] for k in PER_FRAME})
        start = None
        if before is not None and smooth:
            start = pack({k: getattr(state, k)[before : before + 1] for k in PER_FRAME})[0]
        x = solve_frames(residuals, x0, share.clamp(min=1e-12), prior, 2.0 * c.w_smooth if smooth else 0.0, start,
                         iters, cancel)
        with torch.no_grad():
            for k, v in unpack(x, n_expr).items():
                getattr(state, k)[rows] = v
            state.fitted[rows] = True

    def _priors(self, frame: dict[str, Tensor], shape: Tensor, offset: Tensor, log_focal: Tensor,
                log_focal0: float, shared: bool) -> Tensor:
        c = self.config
        n = frame["rotation"].shape[0]
        loss = c.w_expr * frame["expr"].pow(2).sum() / n
        loss = loss + c.w_neck * frame["neck_pose"].pow(2).sum() / n
        loss = loss + c.w_jaw_side * frame["jaw_pose"][:, 1:].pow(2).sum() / n
        loss = loss + c.w_eyes * frame["eyes_pose"].pow(2).sum() / n
        if shared:
            loss = loss + c.w_shape * shape.pow(2).sum()
            loss = loss + c.w_static * offset.pow(2).mean()
            lap = losses.uniform_laplacian(offset, self.edges, self.degree)
            loss = loss + c.w_static_smooth * lap.pow(2).sum(-1).mean() * 100.0
            loss = loss + c.w_focal * (log_focal - log_focal0).pow(2)
        return loss

    # ---- reporting --------------------------------------------------------------------------------
    @torch.no_grad()
    def project_all(self, state: TrackState) -> Tensor:
        """[T, P, 2] the fitted head's landmarks in every frame, pixels (NaN for points the embedding lacks)."""
        uv = project(self.landmarks3d(state.params(self.head), distance=state.distance), state.log_focal.exp(), state.distance,
                     self.width / 2, self.height / 2)
        return torch.where(self.embedding.valid[None, :, None], uv, torch.full_like(uv, float("nan")))

    @torch.no_grad()
    def residuals(self, state: TrackState) -> Tensor:
        """[T, P] reprojection distance in pixels of every point (NaN where not observed)."""
        return (self.project_all(state) - self.landmarks).norm(dim=-1)


def follow_focal(translation: Tensor, log_ratio: Tensor, distance: float) -> Tensor:
    """[T, 3] translations whose depth from the camera scales with the focal length's change exp(log_ratio).

    The focal length and the head's distance trade off almost exactly (the image size is focal /
    depth); fitted apart, each waits for the other and the focal stays where it started (synthetic
    clip, landmarks exactly the head's: 40° guess, 25° true, no movement in 300 steps). Moving the depth
    with the focal leaves the image size alone, so the focal only changes the perspective."""
    depth = distance - translation[:, 2:]
    return torch.cat([translation[:, :2], distance - depth * log_ratio.exp()], dim=1)


def minimise(objective: Callable[[], Tensor], groups: list[dict], iters: int, config: TrackConfig) -> float:
    """Minimise objective() over the parameter groups by Adam, the step decaying exponentially to
    config.lr_final_fraction of its start over `iters` steps. Returns the last loss."""
    optimizer = torch.optim.Adam(groups)
    decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, config.lr_final_fraction ** (1.0 / max(1, iters)))
    loss = torch.zeros(())
    for _ in range(iters):
        optimizer.zero_grad(set_to_none=True)
        loss = objective()
        loss.backward()
        optimizer.step()
        decay.step()
    return float(loss.detach())


def spread_rows(candidates: Tensor, count: int) -> Tensor:
    """[min(count, N)] evenly spread entries of candidates [N] (sorted)."""
    n = len(candidates)
    if n <= count:
        return candidates
    picks = torch.linspace(0, n - 1, count).round().long()
    return candidates[torch.unique(picks)]


def fit_identity(fitter: LandmarkFitter, state: TrackState, keys: Tensor, iters: int, config: TrackConfig,
                 cancel: Cancel | None, fit_focal: bool) -> float:
    """The keyframe stage on state in place: per-frame parameters by Levenberg–Marquardt alternating with
    identity (and the focal when fit_focal) by Adam. Returns the keyframes' final objective."""
    for row in keys.tolist():
        state.rotation[row], state.translation[row] = fitter.rigid_guess(row, state.focal, state.distance)
    loss = 0.0
    for _ in range(IDENTITY_ROUNDS):
        fitter.refine_frames(state, keys, config.keyframe_iters, cancel=cancel, smooth=False)
        loss = fitter.fit(state, keys, iters // IDENTITY_ROUNDS, shared=True, cancel=cancel, smooth=False,
                          fit_focal=fit_focal)
    fitter.refine_frames(state, keys, config.keyframe_iters, cancel=cancel, smooth=False)
    return loss


def with_focal(head: HeadModel, state: TrackState, focal: float, into: TrackState | None = None) -> TrackState:
    """A fresh state (`TrackState.initial`) at another focal length, its camera distance scaled with it so
    the head keeps its size in the image; written over `into` when given."""
    fresh = TrackState.initial(head, state.frames, state.expr.shape[1], focal, state.distance * focal / state.focal)
    if into is None:
        return fresh
    for k in fresh.__dataclass_fields__:
        setattr(into, k, getattr(fresh, k))
    return into


def parabola_minimum(x: list[float], y: list[float]) -> float:
    """The x where a parabola through the lowest of the samples y at x (ascending) and its two neighbours
    is least, kept within those neighbours; the sample itself at either end."""
    assert all(a < b for a, b in itertools.pairwise(x)), f"x must be ascending, got {x}"
    i = int(np.argmin(y))
    if i == 0 or i == len(x) - 1:
        return x[i]
    (x0, x1, x2), (y0, y1, y2) = x[i - 1 : i + 2], y[i - 1 : i + 2]
    den = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den
    b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / den
    return float(np.clip(-b / (2 * a), x0, x2)) if a > 0 else x1


def track_landmarks(fitter: LandmarkFitter, state: TrackState, progress: Progress | None = None,
                    cancel: Cancel | None = None, share: float = 1.0) -> TrackState:
    """Both stages on every frame of state; progress goes from 0 to `share`."""
    c = fitter.config
    t = state.frames
    found = torch.nonzero(fitter.found).flatten()
    if len(found) == 0:
        raise ValueError("no face was found in any frame")
    keys = spread_rows(found, c.keyframes)
    identity_iters = c.single_image_iters if t == 1 else c.identity_iters
    report = progress or (lambda f, m: None)
    candidates = c.focal_search_fov_deg if c.fit_focal and t > 1 else ()
    if candidates:
        fovs = sorted(candidates, reverse=True)  # focal lengths ascending
        scores = []
        for i, fov in enumerate(fovs):
            report(share * SEARCH_SHARE * i / len(fovs), f"trying a {fov:.0f}° field of view ({i + 1}/{len(fovs)})")
            trial = with_focal(fitter.head, state, default_focal(fitter.width, fitter.height, fov))
            scores.append(fit_identity(fitter, trial, keys, identity_iters, c, cancel, fit_focal=False))
        focal = parabola_minimum([math.log(default_focal(fitter.width, fitter.height, f)) for f in fovs], scores)
        state = with_focal(fitter.head, state, math.exp(focal), into=state)
    done = SEARCH_SHARE if candidates else 0.0
    report(share * done, f"fitting identity on {len(keys)} keyframes")
    fit_identity(fitter, state, keys, identity_iters, c, cancel, fit_focal=c.fit_focal)
    done += 0.1
    chunks = [torch.arange(a, min(t, a + c.chunk)) for a in range(0, t, c.chunk)]
    for i, rows in enumerate(chunks):
        a = int(rows[0])
        source = a - 1 if a > 0 else int(keys[(keys - a).abs().argmin()])
        for k in ("jaw_pose", "eyes_pose", "expr", "neck_pose"):
            getattr(state, k)[rows] = getattr(state, k)[source].clone()
        for row in rows.tolist():
            if fitter.found[row]:
                state.rotation[row], state.translation[row] = fitter.rigid_guess(row, state.focal, state.distance)
            else:
                state.rotation[row], state.translation[row] = state.rotation[source].clone(), state.translation[source].clone()
        fitter.refine_frames(state, rows, c.chunk_iters, before=a - 1 if a > 0 else None, cancel=cancel)
        report(share * (done + (1.0 - done) * (i + 1) / len(chunks)), f"tracked {int(rows[-1]) + 1}/{t} frames")
    return state
