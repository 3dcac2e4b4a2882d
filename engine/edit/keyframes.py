"""The dynamic editing strategy: choose K keyframes (time × camera) that cover expression, jaw, head
pose and view direction, weighted by how visible the selected region is.

Candidates come from the avatar's dataset (every training frame) or, when it has none, from its FLAME
sequence times an orbit of cameras, once per spatial group of the selection (each eye, each ear). Each
candidate gets a feature vector (expression, jaw, head and neck pose, view direction in the head's
frame, the group; each scaled to unit spread) and a visibility (the region's visible pixels in the
view, relative to the best view of its group, measured on small renders of the selection mask,
engine.edit.visibility). Farthest-point sampling then repeatedly takes the candidate maximising
visibility^γ × distance to the chosen set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.errors import EditError
from engine.head.params import FlameParams
from engine.render.camera import Camera, framing, orbit_camera


@dataclass(frozen=True)
class View:
    """One candidate (time, camera) pair."""

    params: FlameParams  # FLAME parameters of the frame (T = 1)
    camera: Camera  # the camera, at the working resolution
    timestep: int  # frame index in the sequence / dataset timestep
    camera_index: int  # camera index in the dataset or the orbit
    image_path: Path | None = None  # the dataset's photo of this view, when there is one
    group: int = 0  # the spatial group of the selection this view's crop frames (engine.edit.regions)


@dataclass(frozen=True)
class KeyframeChoice:
    """The chosen keyframes and how well they cover the candidates."""

    indices: tuple[int, ...]  # candidate indices, in the order chosen
    visibility: Tensor  # [M] visibility of every candidate in [0, 1]
    features: Tensor  # [M, D] normalised features of every candidate
    coverage: float  # visibility-weighted share of visible candidates within `radius` of a keyframe
    radius: float  # coverage radius: 0.25 × the feature-space diameter of the visible candidates
    covering_radius: float  # largest distance from a visible candidate to its nearest keyframe
    mean_distance: float  # mean distance from a visible candidate to its nearest keyframe
    region_coverage: float = 1.0  # weighted share of the selected Gaussians some candidate shows that a keyframe shows

    def describe(self) -> str:
        return (f"{len(self.indices)} keyframes cover {100 * self.coverage:.0f}% of the visible views "
                f"(within {self.radius:.2f}; farthest view {self.covering_radius:.2f}, mean {self.mean_distance:.2f}) "
                f"and show {100 * self.region_coverage:.0f}% of the visible selection")


def _axis_angle_matrix(aa: Tensor) -> Tensor:
    """[3, 3] rotation of an axis-angle vector [3] (Rodrigues)."""
    angle = aa.norm()
    if float(angle) < 1e-9:
        return torch.eye(3, dtype=aa.dtype)
    k = aa / angle
    kx = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], dtype=aa.dtype)
    return torch.eye(3, dtype=aa.dtype) + torch.sin(angle) * kx + (1 - torch.cos(angle)) * kx @ kx


def orbit_cameras(avatar: Avatar, count: int, size: int, yaw_range: float = 70.0,
                  pitches: tuple[float, ...] = (-12.0, 10.0), fov: float = 20.0, offset: float = 0.0) -> list[Camera]:
    """`count` cameras on an orbit framing the avatar's first frame: yaws spread over ±yaw_range,
    alternating pitches; `offset` (fraction of a step) shifts the yaws, for held-out views."""
    with torch.no_grad():
        verts = avatar.posed_vertices().float()
    target, distance = framing(verts, fov)
    cams = []
    for i in range(count):
        t = (i + 0.5 + offset) / count
        yaw = -yaw_range + 2 * yaw_range * t
        cams.append(orbit_camera(yaw, pitches[i % len(pitches)], distance, target, fov, size, size))
    return cams


def orbit_views(avatar: Avatar, params: FlameParams, cameras: list[Camera], max_timesteps: int = 24) -> list[View]:
    """Every (frame, camera) pair of a FLAME sequence (subsampled to max_timesteps frames) and cameras."""
    frames = params.frames
    step = max(1, math.ceil(frames / max_timesteps))
    return [View(params.frame(t), cam, t, c) for t in range(0, frames, step) for c, cam in enumerate(cameras)]


def dataset_views(avatar: Avatar, dataset: object, size: int, split: str = "train") -> list[View]:
    """Every frame of a dataset split (an engine.data.vhap_format.AvatarDataset), cameras resized to fit size."""
    from engine.data.frames import fit_size

    records = dataset.frames(split)  # type: ignore[attr-defined]
    if not records:
        raise EditError(f"dataset {dataset.root} has no {split!r} frames to edit")  # type: ignore[attr-defined]
    steps = dataset.timesteps(split)  # type: ignore[attr-defined]
    params = avatar.head.fit_params(dataset.flame_params(split), str(dataset.root))  # type: ignore[attr-defined]
    row = {t: i for i, t in enumerate(steps)}
    views = []
    for r in records:
        w, h = fit_size(r.camera.width, r.camera.height, size)
        views.append(View(params.frame(row[r.timestep]), r.camera.resized(w, h), r.timestep, r.camera_index,
                          r.image_path))
    return views


def spread_subset(avatar: Avatar, views: list[View], count: int) -> list[View]:
    """At most `count` of views, spread over expression, pose and view direction (farthest-point sampling on
    view_features from the first view), in their original order."""
    if len(views) <= count:
        return views
    feats = view_features(avatar, views)
    chosen = [0]
    dist = torch.cdist(feats, feats[:1])[:, 0]
    for _ in range(count - 1):
        nxt = int(torch.argmax(dist))
        chosen.append(nxt)
        dist = torch.minimum(dist, torch.cdist(feats, feats[nxt][None])[:, 0])
    return [views[i] for i in sorted(chosen)]


def per_group(views: list[View], groups: int) -> list[View]:
    """Every view once per spatial group of the selection (each candidate frames one group)."""
    return [replace(v, group=g) for v in views for g in range(groups)]


def _group_normalise(x: Tensor) -> Tensor:
    """x [M, D] centred and scaled so the group's total variance is 1 (zeros when it does not vary)."""
    x = x - x.mean(0, keepdim=True)
    spread = x.pow(2).sum(1).mean().sqrt()
    return x / spread if float(spread) > 1e-9 else torch.zeros_like(x)


def _feature_groups(views: list[View], centre: Tensor, max_expr: int = 16) -> list[Tensor]:
    expr = torch.stack([v.params.expr[0, :max_expr].float().cpu() for v in views])
    jaw = torch.stack([v.params.jaw_pose[0].float().cpu() for v in views])
    pose = torch.stack([torch.cat([v.params.rotation[0], v.params.neck_pose[0]]).float().cpu() for v in views])
    dirs = []
    for v in views:
        d = v.camera.position.float().cpu() - centre
        dirs.append(_axis_angle_matrix(v.params.rotation[0].float().cpu()).T @ (d / d.norm()))
    return [expr, jaw, pose, torch.stack(dirs)]


def view_features(avatar: Avatar, views: list[View], max_expr: int = 16) -> Tensor:
    """[M, D] features: expression, jaw, head + neck pose, view direction in the head frame, and which spatial
    group of the selection the view frames (one-hot); each group of features normalised to unit spread."""
    with torch.no_grad():
        centre = avatar.posed_vertices().float().mean(0).cpu()
    region = torch.nn.functional.one_hot(torch.tensor([v.group for v in views]), max(v.group for v in views) + 1)
    groups = _feature_groups(views, centre, max_expr) + [region.float()]
    return torch.cat([_group_normalise(g) for g in groups], dim=1)


def view_visibility(avatar: Avatar, views: list[View], selection: Tensor, size: int = 48,
                    backend: str = "auto") -> Tensor:
    """[M] the region's visible pixels in each view relative to the best view (from size × size renders of
    the selection mask; engine.edit.visibility.measure_visibility also returns the renders)."""
    from engine.edit.visibility import measure_visibility

    return measure_visibility(avatar, views, selection, size, backend).visibility


def farthest_point_keyframes(features: Tensor, visibility: Tensor, k: int, gamma: float = 1.0,
                             min_visibility: float = 0.05, seen: Tensor | None = None,
                             seen_weights: Tensor | None = None) -> KeyframeChoice:
    """K keyframes by visibility-weighted farthest-point sampling over features [M, D], visibility [M].

    With seen [M, P] (which selected Gaussians each candidate shows) and their weights [P], a
    candidate's score also gains the weighted share of Gaussians it shows that no keyframe shows yet:
    score = visibility^γ × (distance / largest distance + newly seen share), so every part of the
    region that some candidate shows gets a keyframe showing it (an unseen Gaussian gets no target).
    """
    m = features.shape[0]
    assert visibility.shape == (m,), f"visibility must be [M={m}], got {tuple(visibility.shape)}"
    if seen is not None:
        assert seen.ndim == 2 and seen.shape[0] == m, f"seen must be [M={m}, P], got {tuple(seen.shape)}"
        seen_weights = torch.ones(seen.shape[1]) if seen_weights is None else seen_weights.float()
        assert seen_weights.shape == (seen.shape[1],), f"seen_weights must be [P={seen.shape[1]}]"
    eligible = visibility >= min_visibility
    if not bool(eligible.any()):
        raise EditError("the selected region is not visible in any candidate view: nothing to edit")
    weight = visibility.clamp(0, 1) ** gamma
    chosen = [int(torch.argmax(torch.where(eligible, visibility, torch.full_like(visibility, -1.0))))]
    dist = torch.cdist(features, features[chosen[0]][None])[:, 0]
    covered = seen[chosen[0]].clone() if seen is not None else None
    for _ in range(min(k, int(eligible.sum())) - 1):
        gain = dist / dist[eligible].max().clamp_min(1e-9)
        if seen is not None and covered is not None:
            fresh = (seen & ~covered).float() @ seen_weights
            gain = gain + fresh / seen_weights.sum().clamp_min(1e-9)
        score = torch.where(eligible, weight * gain, torch.full_like(dist, -1.0))
        nxt = int(torch.argmax(score))
        if float(score[nxt]) <= 0:
            break
        chosen.append(nxt)
        dist = torch.minimum(dist, torch.cdist(features, features[nxt][None])[:, 0])
        if seen is not None and covered is not None:
            covered |= seen[nxt]
    return _coverage(features, visibility, eligible, chosen, dist, seen, seen_weights)


def _coverage(features: Tensor, visibility: Tensor, eligible: Tensor, chosen: list[int], dist: Tensor,
              seen: Tensor | None = None, seen_weights: Tensor | None = None) -> KeyframeChoice:
    vis_feats = features[eligible]
    diameter = float(torch.cdist(vis_feats, vis_feats).max()) if vis_feats.shape[0] > 1 else 0.0
    radius = 0.25 * diameter
    d, w = dist[eligible], visibility[eligible]
    coverage = float((w * (d <= radius + 1e-9).float()).sum() / w.sum().clamp_min(1e-9))
    region = 1.0
    if seen is not None and seen_weights is not None and seen.shape[1]:
        anywhere = seen[eligible].any(0).float() * seen_weights
        shown = seen[list(chosen)].any(0).float() * seen_weights
        region = float(shown.sum() / anywhere.sum().clamp_min(1e-9))
    return KeyframeChoice(tuple(chosen), visibility, features, coverage, radius, float(d.max()), float(d.mean()),
                          region)


def all_visible(visibility: Tensor, features: Tensor, min_visibility: float = 0.05, seen: Tensor | None = None,
                seen_weights: Tensor | None = None) -> KeyframeChoice:
    """Every candidate the region is visible in (the "edit all frames" baseline)."""
    eligible = visibility >= min_visibility
    chosen = [int(i) for i in torch.nonzero(eligible).squeeze(1)]
    if not chosen:
        raise EditError("the selected region is not visible in any candidate view: nothing to edit")
    return _coverage(features, visibility, eligible, chosen, torch.zeros(features.shape[0]), seen, seen_weights)
