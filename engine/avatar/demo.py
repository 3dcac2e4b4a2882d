"""The demo avatar: Gaussians sampled over the embedded demo head, coloured per facial component.

Built deterministically in memory (about a second) instead of shipping a file.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.avatar.binding import triangle_frames, world_to_local
from engine.avatar.gaussians import BoundGaussians
from engine.head.components import LABEL
from engine.head.model import HeadModel, load_head

SH_C0 = 0.28209479177387814
"""Y_0^0: SH DC coefficient c gives colour 0.5 + SH_C0·c."""

ALBEDO: dict[str, tuple[float, float, float]] = {
    "skin": (0.86, 0.66, 0.54),
    "hair": (0.30, 0.19, 0.11),
    "left_eye": (0.93, 0.92, 0.90),
    "right_eye": (0.93, 0.92, 0.90),
    "left_brow": (0.24, 0.15, 0.09),
    "right_brow": (0.24, 0.15, 0.09),
    "nose": (0.87, 0.64, 0.52),
    "upper_lip": (0.74, 0.38, 0.38),
    "lower_lip": (0.78, 0.42, 0.41),
    "mouth_interior": (0.35, 0.10, 0.10),
    "ears": (0.85, 0.62, 0.51),
    "neck": (0.82, 0.63, 0.52),
    "accessory": (0.6, 0.6, 0.6),
}
"""Base linear-ish albedo per component for the demo avatar."""


def rgb_to_sh_dc(rgb: Tensor) -> Tensor:
    """SH DC coefficients [..., 3] that render as rgb [..., 3]."""
    return (rgb - 0.5) / SH_C0


def _hash_noise(p: Tensor, freq: float) -> Tensor:
    """Deterministic value noise in [-1, 1] at points p [N, 3] (sum of sines, no RNG)."""
    q = p * freq
    return (torch.sin(q @ torch.tensor([12.9898, 78.233, 37.719])) * 0.5
            + torch.sin(q @ torch.tensor([-41.3, 17.77, 29.1]) + 1.3) * 0.3
            + torch.sin(q @ torch.tensor([5.1, -9.7, 63.2]) + 0.7) * 0.2)


def _albedo(points: Tensor, normals: Tensor, labels: Tensor, eye_centres: Tensor) -> Tensor:
    """Colour [N, 3] for surface points [N, 3] with normals [N, 3] and component labels [N]."""
    base = torch.tensor([ALBEDO[name] for name in LABEL])[labels]
    fine = _hash_noise(points, 900.0)[:, None]
    coarse = _hash_noise(points, 60.0)[:, None]
    colour = base * (1 + 0.04 * fine + 0.05 * coarse)
    hair = (labels == LABEL["hair"]) | (labels == LABEL["left_brow"]) | (labels == LABEL["right_brow"])
    strands = torch.sin(points[:, 0] * 2200 + 40 * torch.sin(points[:, 1] * 90))[:, None]
    colour = torch.where(hair[:, None], colour * (1 + 0.18 * strands), colour)
    for label, centre in ((LABEL["left_eye"], eye_centres[0]), (LABEL["right_eye"], eye_centres[1])):
        on_eye = labels == label
        d = points - centre
        off_axis = torch.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2)
        front = d[:, 2] > 0
        iris = on_eye & front & (off_axis < 0.0058)
        pupil = on_eye & front & (off_axis < 0.0024)
        colour[iris] = torch.tensor([0.30, 0.42, 0.25]) * (1 + 0.15 * fine[iris])
        colour[pupil] = torch.tensor([0.03, 0.03, 0.03])
    cheek = (labels == LABEL["skin"]) & (points[:, 2] > 0.03) & (points[:, 1].abs() < 0.03) & (points[:, 0].abs() > 0.03)
    colour[cheek] = colour[cheek] * torch.tensor([1.03, 0.95, 0.95])
    light = torch.nn.functional.normalize(torch.tensor([0.3, 0.6, 1.0]), dim=0)
    shade = 0.78 + 0.22 * (normals @ light).clamp(min=0)[:, None]
    return (colour * shade).clamp(0.0, 1.0)


def build_demo_gaussians(head: HeadModel, count: int = 40_000, seed: int = 0) -> BoundGaussians:
    """About `count` Gaussians over the head's neutral mesh, at least one per triangle."""
    gen = torch.Generator().manual_seed(seed)
    verts = head(head.neutral_params())[0].detach()
    faces = head.faces
    rot, centroid, tri_scale = triangle_frames(verts, faces)
    tri = verts[faces]
    area = 0.5 * torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1).norm(dim=-1)
    per_face = torch.clamp(torch.round(area / area.sum() * count), min=1).long()
    binding = torch.repeat_interleave(torch.arange(len(faces)), per_face)
    n = len(binding)
    u, v = torch.rand(n, generator=gen), torch.rand(n, generator=gen)
    flip = (u + v) > 1
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    t = tri[binding]
    points = t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])
    xyz = world_to_local(binding, points, rot, centroid, tri_scale)
    spacing = torch.sqrt(area[binding] / per_face[binding])  # world distance between neighbours
    sigma = 0.85 * spacing / tri_scale[binding]
    log_scale = torch.log(torch.stack([sigma, 0.25 * sigma, sigma], dim=1))  # local axis 1 is the normal
    labels = head.face_labels[binding]
    joints = head.J_regressor @ verts
    normals = rot[binding][:, :, 1]
    colour = _albedo(points, normals, labels, joints[3:5])
    sh = torch.zeros(n, 16, 3)
    sh[:, 0] = rgb_to_sh_dc(colour)
    rotation = torch.zeros(n, 4)
    rotation[:, 0] = 1.0
    return BoundGaussians(
        binding=binding,
        xyz=xyz,
        rotation=rotation,
        log_scale=log_scale,
        opacity_logit=torch.full((n,), math.log(0.97 / 0.03)),
        sh=sh,
        labels=labels,
    )


_DEMO: dict[int, BoundGaussians] = {}


def load_demo_avatar(count: int = 40_000) -> Avatar:
    """The demo avatar (a fresh Avatar each call; the Gaussians are built once per process)."""
    head = load_head("demo")
    if count not in _DEMO:
        _DEMO[count] = build_demo_gaussians(head, count)
    return Avatar(head, _DEMO[count].detach_clone(), head.neutral_params(), "demo avatar")
