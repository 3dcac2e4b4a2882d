"""Training data for the mask-mapping network, rendered from the modeling stage.

For one reference view (t0, p0) and S masks painted there: lift the masks onto the Gaussians
(exact lifting, engine.semantics.lift), then at each of K sample views (frames of the training
sequence × training cameras) render the lifted selections, the alpha, and the backward
displacement to the reference view. Every Gaussian carries its own displacement (its centre
projected at the reference view minus its centre projected at the sample view) as a feature, so the
composited feature at a pixel is the displacement of the surface seen there. (Compositing the
reference positions themselves would be off by the distance from the pixel to the centres of the
Gaussians covering it: up to a footprint, even at the reference view.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from engine.head.params import FlameParams
from engine.render.camera import Camera
from engine.render.rasterize import render
from engine.render.splats import Splats
from engine.semantics.lift import fill_unseen, lift_many
from engine.semantics.mapping_net import MappingData, camera_azimuth


@dataclass(frozen=True)
class SampleView:
    """One (time, camera) sample of the modeling stage."""

    splats: Splats  # the avatar's Gaussians posed at that time
    camera: Camera  # the view (rendered at the data size, see build_mapping_data)
    t: float  # normalised time in [0, 1]
    p: float  # normalised camera azimuth in [0, 1]


def flame_keys(params: FlameParams) -> Tensor:
    """[T, D] what tells frames apart for the mapping network: expression, jaw, eyes and head rotation."""
    return torch.cat([params.expr, params.jaw_pose, params.eyes_pose, params.rotation], dim=-1).float()


@dataclass(frozen=True)
class TimePose:
    """Where a frame falls on the mapping network's time–pose plane (t and p in [0, 1]).

    Time is the frame's place in the training sequence, scaled so the first and last timesteps the
    network trains on are 0 and 1 (frames in between interpolate the grid). A frame of another
    sequence (held-out expressions) takes the place of the training frame whose FLAME parameters are
    nearest. Pose is the camera azimuth, scaled over the training cameras' range.
    """

    sequence: tuple[int, ...]  # the training sequence's timesteps, in order
    keys: Tensor  # [T, D] their flame_keys
    lo: int  # row of the first trained timestep in sequence
    hi: int  # row of the last trained timestep
    az_lo: float  # degrees: azimuth of the training cameras, lowest
    az_hi: float  # highest

    @staticmethod
    def of(sequence: list[int], keys: Tensor, trained: list[int], cameras: list[Camera]) -> TimePose:
        """From the sequence's timesteps and flame_keys [T, D], the trained timesteps and the training cameras."""
        assert keys.shape[0] == len(sequence), f"keys must be [T={len(sequence)}, D], got {tuple(keys.shape)}"
        rows = [sequence.index(t) for t in trained]
        azimuths = [camera_azimuth(c) for c in cameras]
        return TimePose(tuple(sequence), keys, min(rows), max(rows), min(azimuths), max(azimuths))

    def t(self, timestep: int, key: Tensor | None = None) -> float:
        """Normalised time of a timestep of the sequence, or of another frame by its flame_keys row key [D]."""
        if timestep in self.sequence and key is None:
            row = self.sequence.index(timestep)
        else:
            assert key is not None, f"timestep {timestep} is not in the training sequence: give its FLAME key"
            row = int((self.keys - key.to(self.keys)).norm(dim=-1).argmin())
        return min(1.0, max(0.0, (row - self.lo) / max(1, self.hi - self.lo)))

    def p(self, camera: Camera) -> float:
        """Normalised azimuth of a camera (clamped to the training cameras' range)."""
        return min(1.0, max(0.0, (camera_azimuth(camera) - self.az_lo) / max(1e-6, self.az_hi - self.az_lo)))


def project_uv(means: Tensor, camera: Camera) -> Tensor:
    """[N, 2] centres means [N, 3] projected by camera, normalised to [-1, 1] (grid_sample, align_corners=False)."""
    pixels, _ = camera.project_points(means)
    return pixels / torch.tensor([camera.width, camera.height]).to(pixels) * 2 - 1


def render_sample(
    splats: Splats, camera: Camera, weights: Tensor, uv: Tensor, backend: str = "auto"  # weights [N, S]; uv [N, 2]
) -> tuple[Tensor, Tensor, Tensor]:
    """(masks [S, H, W] coverage, alpha [H, W], flow [H, W, 2]) of one sample view.

    uv: the Gaussians' centres at the reference view (project_uv). flow is the backward
    displacement of the surface seen at each pixel (reference position − position here,
    normalised units), the alpha-weighted mean of the Gaussians' own displacements; 0 where
    nothing is rendered.
    """
    assert weights.ndim == 2 and weights.shape[0] == splats.count, f"weights must be [N={splats.count}, S], got {tuple(weights.shape)}"
    assert uv.shape == (splats.count, 2), f"uv must be [N={splats.count}, 2], got {tuple(uv.shape)}"
    light = Splats(splats.means, splats.quats, splats.scales, splats.opacities, splats.sh[:, :1])
    with torch.no_grad():
        shift = uv.to(splats.means) - project_uv(splats.means, camera)
        r = render(light, camera, (0.0, 0.0, 0.0), features=torch.cat([weights.to(splats.means), shift], 1), backend=backend)
    assert r.features is not None
    s = weights.shape[1]
    alpha = r.alpha
    has = alpha > 1e-3
    flow = r.features[..., s:] / torch.where(has, alpha, torch.ones_like(alpha))[..., None]
    flow = torch.where(has[..., None], flow, torch.zeros_like(flow))
    return r.features[..., :s].permute(2, 0, 1).clamp(0, 1), alpha, flow


def build_mapping_data(
    ref_splats: Splats,
    ref_camera: Camera,
    masks: Tensor,  # [S, H, W] masks painted at the reference view (H, W = ref_camera's size)
    samples: Sequence[SampleView],
    rest_points: Tensor | None = None,  # [N, 3]: when given, unseen Gaussians are filled (lift.fill_unseen)
    labels: Tensor | None = None,  # [N] component labels: fill from the same component (lift.fill_unseen)
    threshold: float = 0.5,  # lifted weight at which a Gaussian is selected
    backend: str = "auto",
    progress: Callable[[float, str], None] | None = None,
    selected: Tensor | None = None,  # [N, S] the masks' selections when already lifted (then no lifting here)
) -> tuple[MappingData, Tensor]:
    """(MappingData with targets at the samples' camera size, selected [N, S] float)."""
    assert samples, "build_mapping_data needs at least one sample view"
    if selected is None:
        lifted = lift_many(ref_splats, ref_camera, masks, backend)
        weights = lifted.weights
        if rest_points is not None:
            weights = fill_unseen(weights, lifted.seen, rest_points, labels=labels)
        selected = (weights >= threshold).float()
    assert selected.shape == (ref_splats.count, masks.shape[0]), (
        f"selected must be [N={ref_splats.count}, S={masks.shape[0]}], got {tuple(selected.shape)}")
    uv = project_uv(ref_splats.means, ref_camera)
    targets, alphas, flows = [], [], []
    for i, view in enumerate(samples):
        m, a, f = render_sample(view.splats, view.camera, selected, uv, backend)
        targets.append(m)
        alphas.append(a)
        flows.append(f)
        if progress is not None:
            progress((i + 1) / len(samples), f"rendered mapping sample {i + 1}/{len(samples)}")
    data = MappingData(
        m0=masks.float(), targets=torch.stack(targets), foreground=torch.stack(alphas), flow=torch.stack(flows),
        t=torch.tensor([v.t for v in samples], dtype=torch.float32), p=torch.tensor([v.p for v in samples], dtype=torch.float32),
    )
    return data, selected
