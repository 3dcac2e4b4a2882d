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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from engine.head.params import FlameParams
from engine.render.camera import Camera, look_at
from engine.render.rasterize import render
from engine.render.splats import Splats
from engine.semantics.lift import fill_unseen, lift_many
from engine.semantics.mapping_net import MappingData


@dataclass(frozen=True)
class SampleView:
    """One (time, camera) sample of the modeling stage."""

    splats: Splats  # the avatar's Gaussians posed at that time
    camera: Camera  # the view (rendered at the data size, see build_mapping_data)
    t: float  # normalised time in [0, 1]
    p: float  # normalised camera azimuth in [0, 1]
    e: float = 0.0  # normalised camera elevation in [0, 1]


def flame_keys(params: FlameParams) -> Tensor:
    """[T, D] what tells frames apart for the mapping network: expression, jaw, eyes and head rotation."""
    return torch.cat([params.expr, params.jaw_pose, params.eyes_pose, params.rotation], dim=-1).float()


LATTICE_STEP_DEG = 10.0  # spacing of the poses the network trains at: flows interpolate well over ~10°


def rig_centre(cameras: Sequence[Camera]) -> Tensor:
    """[3] the point the cameras look at: least-squares meeting point of their optical axes
    (the origin when they are all parallel, e.g. a single camera)."""
    a, b = torch.zeros(3, 3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    for c in cameras:
        axis = c.cam_to_world[:3, 2].double()
        off_axis = torch.eye(3, dtype=torch.float64) - torch.outer(axis, axis) / axis.dot(axis)
        a, b = a + off_axis, b + off_axis @ c.position.double()
    if torch.linalg.matrix_rank(a) < 3:
        return torch.zeros(3, dtype=torch.float64)
    return torch.linalg.solve(a, b)


def camera_orbit(camera: Camera, centre: Tensor) -> tuple[float, float, float]:
    """(azimuth, elevation in degrees, distance) of a camera around centre [3] (azimuth 0 = on +z, world +y up)."""
    v = camera.position.double() - centre.double()
    r = float(v.norm())
    return math.degrees(math.atan2(float(v[0]), float(v[2]))), math.degrees(math.asin(float(v[1]) / max(r, 1e-12))), r


@dataclass(frozen=True)
class TimePose:
    """Where a frame falls on the mapping network's time–pose grid (t, p, e in [0, 1]).

    Time is the frame's place in the training sequence, scaled so the first and last timesteps the
    network trains on are 0 and 1 (frames in between interpolate the grid). A frame of another
    sequence (held-out expressions) takes the place of the training frame whose FLAME parameters are
    nearest. Pose is the camera's azimuth p and elevation e around the point the training cameras
    look at, each scaled over the training cameras' range.
    """

    sequence: tuple[int, ...]  # the training sequence's timesteps, in order
    keys: Tensor  # [T, D] their flame_keys
    lo: int  # row of the first trained timestep in sequence
    hi: int  # row of the last trained timestep
    centre: Tensor  # [3] the point the training cameras look at (rig_centre)
    az: tuple[float, float]  # degrees: lowest and highest azimuth of the training cameras
    el: tuple[float, float]  # degrees: lowest and highest elevation
    distance: float  # mean distance of the training cameras from the centre

    @staticmethod
    def of(sequence: list[int], keys: Tensor, trained: list[int], cameras: list[Camera]) -> TimePose:
        """From the sequence's timesteps and flame_keys [T, D], the trained timesteps and the training cameras."""
        assert keys.shape[0] == len(sequence), f"keys must be [T={len(sequence)}, D], got {tuple(keys.shape)}"
        rows = [sequence.index(t) for t in trained]
        centre = rig_centre(cameras)
        az, el, dist = zip(*(camera_orbit(c, centre) for c in cameras))
        return TimePose(tuple(sequence), keys, min(rows), max(rows), centre, (min(az), max(az)), (min(el), max(el)),
                        sum(dist) / len(dist))

    def t(self, timestep: int, key: Tensor | None = None) -> float:
        """Normalised time of a timestep of the sequence, or of another frame by its flame_keys row key [D]."""
        if timestep in self.sequence and key is None:
            row = self.sequence.index(timestep)
        else:
            assert key is not None, f"timestep {timestep} is not in the training sequence: give its FLAME key"
            row = int((self.keys - key.to(self.keys)).norm(dim=-1).argmin())
        return min(1.0, max(0.0, (row - self.lo) / max(1, self.hi - self.lo)))

    def pe(self, camera: Camera) -> tuple[float, float]:
        """Normalised (azimuth, elevation) of a camera, each clamped to the training cameras' range."""
        az, el, _ = camera_orbit(camera, self.centre)
        return tuple(min(1.0, max(0.0, (x - lo) / max(1e-6, hi - lo))) for x, (lo, hi) in ((az, self.az), (el, self.el)))  # type: ignore[return-value]

    def p(self, camera: Camera) -> float:
        """Normalised azimuth of a camera (clamped to the training cameras' range)."""
        return self.pe(camera)[0]

    def lattice_size(self, step_deg: float = LATTICE_STEP_DEG) -> tuple[int, int]:
        """(azimuths, elevations): nodes that split the training cameras' range into steps of at most step_deg."""
        return tuple(1 + math.ceil((hi - lo) / step_deg - 1e-6) for lo, hi in (self.az, self.el))  # type: ignore[return-value]

    def lattice(self, like: Camera, azimuths: int, elevations: int) -> list[tuple[Camera, float, float]]:
        """(camera, p, e) at every node of an azimuths x elevations lattice over the training cameras'
        range, at their mean distance from the centre, with like's intrinsics and image size: the
        poses the network trains at (the modeling stage renders any pose, not only the dataset's)."""
        out = []
        for i in range(elevations):
            e = i / max(1, elevations - 1)
            el = math.radians(self.el[0] + e * (self.el[1] - self.el[0]))
            for j in range(azimuths):
                p = j / max(1, azimuths - 1)
                az = math.radians(self.az[0] + p * (self.az[1] - self.az[0]))
                eye = self.centre.double() + self.distance * torch.tensor(
                    [math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)], dtype=torch.float64)
                w2c = look_at(eye.float(), self.centre.float(), torch.tensor([0.0, 1.0, 0.0]))
                out.append((replace(like, world_to_cam=w2c.to(like.world_to_cam)), p, e))
        return out


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
        e=torch.tensor([v.e for v in samples], dtype=torch.float32),
    )
    return data, selected
