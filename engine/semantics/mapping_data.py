"""Training data for the mask-mapping network, rendered from the modeling stage.

For one reference view (t0, p0) and S masks painted there: lift the masks onto the Gaussians
(exact lifting, engine.semantics.lift), then at each of K sample views (timesteps of the training
sequence × a lattice of camera poses around the head, lattice_samples) render the lifted
selections, the alpha, and the backward displacement to the reference view.

Poses are taken in the head's frame: a frame's head rotation and translation are taken out of the
avatar (head_frame) and put on the camera (head_relative), so the time axis carries expressions
only and a head turn the network never saw is a pose between lattice nodes. A camera that, seen
from the head, does not look at the lattice's centre is read through the lattice camera at its
place (TimePose.to_lattice, predict_at). Every Gaussian carries its own displacement (its centre
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
import torch.nn.functional as F
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.data.vhap_format import AvatarDataset
from engine.head.params import FlameParams
from engine.render.camera import Camera, look_at
from engine.render.rasterize import render
from engine.render.splats import Splats
from engine.semantics.lift import fill_unseen, lift_many
from engine.semantics.mapping_net import MappingData, MaskMappingNet, predict_masks


@dataclass(frozen=True)
class SampleView:
    """One (time, camera) sample of the modeling stage."""

    splats: Splats  # the avatar's Gaussians posed at that time
    camera: Camera  # the view (rendered at the data size, see build_mapping_data)
    t: float  # normalised time in [0, 1]
    p: float  # normalised camera azimuth in [0, 1]
    e: float = 0.0  # normalised camera elevation in [0, 1]


def flame_keys(params: FlameParams) -> Tensor:
    """[T, D] what tells frames apart for the mapping network's time axis: expression, jaw and eyes
    (the head's own rotation is on the pose axes: see head_frame)."""
    return torch.cat([params.expr, params.jaw_pose, params.eyes_pose], dim=-1).float()


def head_frame(avatar: Avatar, params: FlameParams) -> tuple[FlameParams, Tensor]:
    """(params without the global head rotation and translation, head_to_world [4, 4]) of one frame [T=1].

    The network's pose axes are the camera's pose relative to the head: a frame whose head turned
    is the still head seen from a turned camera, so the lattice of poses covers head turns too and
    a new head pose needs no new time. head_to_world is the rigid motion between the mesh posed
    without and with the rotation and translation (Kabsch fit: FLAME applies them rigidly).
    """
    still = params.with_values(rotation=torch.zeros_like(params.rotation), translation=torch.zeros_like(params.translation))
    with torch.no_grad():
        a, b = avatar.posed_vertices(still).double(), avatar.posed_vertices(params).double()
    ca, cb = a.mean(0), b.mean(0)
    u, _, vt = torch.linalg.svd((a - ca).T @ (b - cb))
    flip = torch.diag(torch.tensor([1.0, 1.0, float(torch.sign(torch.det(vt.T @ u.T)))], dtype=torch.float64))
    rot = vt.T @ flip @ u.T
    head_to_world = torch.eye(4, dtype=torch.float64)
    head_to_world[:3, :3], head_to_world[:3, 3] = rot, cb - rot @ ca
    return still, head_to_world.float()


def head_relative(camera: Camera, head_to_world: Tensor) -> Camera:
    """The camera as seen from the head's frame (head_to_world [4, 4], head_frame): it draws the still
    head as camera draws the moved one."""
    return replace(camera, world_to_cam=camera.world_to_cam @ head_to_world.to(camera.world_to_cam))


class StillHeads:
    """The avatar at each timestep without its head's rotation and translation (degree-0 colours: the
    network needs no colour), with the head_to_world of each; cached."""

    def __init__(self, avatar: Avatar, params_of: Callable[[int], FlameParams]) -> None:
        self.avatar, self.params_of = avatar, params_of  # params_of: timestep -> its FLAME parameters [T=1]
        self._cache: dict[int, tuple[Splats, Tensor]] = {}

    def __call__(self, timestep: int) -> tuple[Splats, Tensor]:
        """(still splats, head_to_world [4, 4]) at a timestep."""
        if timestep not in self._cache:
            still, head_to_world = head_frame(self.avatar, self.params_of(timestep))
            with torch.no_grad():
                s = self.avatar.splats(still)
            self._cache[timestep] = Splats(s.means, s.quats, s.scales, s.opacities, s.sh[:, :1]), head_to_world
        return self._cache[timestep]

    def relative(self, camera: Camera, timestep: int) -> Camera:
        """camera as seen from the head's frame at a timestep (the network's pose)."""
        return head_relative(camera, self(timestep)[1])


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


def camera_orbit(camera: Camera, centre: Tensor | None = None) -> tuple[float, float, float]:
    """(azimuth, elevation in degrees, distance) of a camera around centre [3] (default the origin;
    azimuth 0 = in front, on +z; world +y up)."""
    v = camera.position.double() - (0.0 if centre is None else centre.double())
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

    @staticmethod
    def of_dataset(dataset: AvatarDataset, trained: list[int], heads: StillHeads) -> TimePose:
        """For a dataset's training sequence, of which the network trains on the timesteps `trained`;
        the training cameras as seen from the head's frame at each of their frames."""
        return TimePose.of(dataset.timesteps("train"), flame_keys(dataset.flame_params("train")), trained,
                           [heads.relative(r.camera, r.timestep) for r in dataset.frames("train")])

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

    def lattice_size(self, step_deg: float = LATTICE_STEP_DEG) -> tuple[int, int]:
        """(azimuths, elevations): nodes that split the training cameras' range into steps of at most step_deg."""
        return tuple(1 + math.ceil((hi - lo) / step_deg - 1e-6) for lo, hi in (self.az, self.el))  # type: ignore[return-value]

    def orbit(self, like: Camera, azimuth: float, elevation: float, distance: float | None = None) -> Camera:
        """A camera with like's intrinsics at (azimuth, elevation in degrees, distance: default the
        lattice's) around the centre, looking at it, world +y up."""
        az, el = math.radians(azimuth), math.radians(elevation)
        eye = self.centre.double() + (distance or self.distance) * torch.tensor(
            [math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)], dtype=torch.float64)
        w2c = look_at(eye.float(), self.centre.float(), torch.tensor([0.0, 1.0, 0.0]))
        return replace(like, world_to_cam=w2c.to(like.world_to_cam))

    def lattice(self, like: Camera, azimuths: int, elevations: int) -> list[tuple[Camera, float, float]]:
        """(camera, p, e) at every node of an azimuths x elevations lattice over the training cameras'
        range, at their mean distance from the centre, with like's intrinsics and image size: the
        poses the network trains at (the modeling stage renders any pose, not only the dataset's)."""
        out = []
        for i in range(elevations):
            e = i / max(1, elevations - 1)
            for j in range(azimuths):
                p = j / max(1, azimuths - 1)
                out.append((self.orbit(like, self.az[0] + p * (self.az[1] - self.az[0]), self.el[0] + e * (self.el[1] - self.el[0])), p, e))
        return out

    def to_lattice(self, camera: Camera, like: Camera) -> tuple[float, float, Tensor]:
        """(p, e, where [1, H, W, 2]) for a camera of H x W pixels: its pose on the lattice, and where
        each of its pixels falls in the lattice camera's H x W image there (like: the lattice's
        intrinsics, at any size; normalised coordinates for grid_sample).

        A camera that does not look at the centre (a head that turned about the neck, seen from the
        head's frame, head_relative) is the orbit camera at its own place turned about its centre: a
        homography of the orbit camera's image; its distance from the centre differs from the
        lattice's by a zoom about the image of the centre.
        """
        az, el, dist = camera_orbit(camera, self.centre)
        p, e = self.pe(camera)
        lat = self.orbit(like.resized(camera.width, camera.height), az, el, dist)
        ys, xs = torch.meshgrid(torch.arange(camera.height, dtype=torch.float64) + 0.5,
                                torch.arange(camera.width, dtype=torch.float64) + 0.5, indexing="ij")
        rays = torch.stack([(xs - camera.cx) / camera.fx, (ys - camera.cy) / camera.fy, torch.ones_like(xs)], -1)  # [H, W, 3]
        turn = lat.world_to_cam[:3, :3].double() @ camera.cam_to_world[:3, :3].double()  # camera axes -> lattice camera axes
        r = rays @ turn.T
        zoom = dist / self.distance
        u = lat.cx + zoom * lat.fx * r[..., 0] / r[..., 2]
        v = lat.cy + zoom * lat.fy * r[..., 1] / r[..., 2]
        where = torch.stack([u / lat.width * 2 - 1, v / lat.height * 2 - 1], -1)
        where = torch.where(r[..., 2:] > 0, where, torch.full_like(where, 2.0))  # behind the lattice camera: outside
        return p, e, where[None].float()


def lattice_samples(tp: TimePose, heads: StillHeads, timesteps: Sequence[int], like: Camera,
                    step_deg: float = LATTICE_STEP_DEG) -> tuple[list[SampleView], int, int]:
    """(samples, azimuths, elevations): the still head at each timestep x every pose of the lattice
    (TimePose.lattice_size(step_deg); like: the samples' intrinsics and size)."""
    azimuths, elevations = tp.lattice_size(step_deg)
    poses = tp.lattice(like, azimuths, elevations)
    return [SampleView(heads(t)[0], cam, tp.t(t), p, e) for t in timesteps for cam, p, e in poses], azimuths, elevations


def predict_at(net: MaskMappingNet, tp: TimePose, m0: Tensor, t: float, camera: Camera, like: Camera) -> Tensor:
    """[S, H, W] probabilities of the masks m0 [S, h, w] at normalised time t seen by camera (in the
    head's frame, head_relative; H x W its size); like: the lattice's intrinsics (any size)."""
    p, e, where = tp.to_lattice(camera, like)
    probs = predict_masks(net, m0, t, p, e, (camera.height, camera.width))
    return F.grid_sample(probs[None], where, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


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
