"""The demo avatar: Gaussians sampled over the embedded demo head, coloured like a plain human head.

Built deterministically in memory (about a second); only the Gaussians' fitted geometry is shipped
(OUTLINES_FILE, below). Colours come from
the component labels plus the head's own smooth lip and brow outlines (engine/head/sculpt/labels.py), so
colour edges follow smooth curves instead of triangle edges; eyes get an iris and pupil where the
eyeball faces; a little baked light and cavity shading (from the mesh's concavity) give depth.
At the mouth, the few mouth-interior faces that lie on the outer skin at the corners are painted as
skin (commissure_faces), so a smile's corners stay skin.

Sampled Gaussians blur every part's outline by their own size (a lid's Gaussians cover the edge of the
eye, a lip's spill over the mouth opening): the avatar then draws its parts where its head does not.
So the Gaussians' geometry (position in the triangle, scale, rotation, opacity; never colour or label)
is fitted once to the head's own label renders (engine/train/demo_outlines.py, run by
scripts/build_demo_outlines.py) and shipped as OUTLINES_FILE, which load_demo_avatar applies to the
freshly built Gaussians.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.avatar.binding import sample_on_triangles, triangle_areas, triangle_frames, world_to_local
from engine.avatar.gaussians import BoundGaussians
from engine.head.components import LABEL
from engine.head.model import DEMO_HEAD_DIR, HeadModel, load_head
from engine.head.sculpt import sdf
from engine.head.sculpt.labels import brow_field, lip_fields
from engine.head.triangles import face_normals
from engine.io.atomic import FileFormatError, atomic_write
from engine.io.npz import read_npz
from engine.render.splats import rgb_to_dc

ALBEDO: dict[str, tuple[float, float, float]] = {
    "skin": (0.87, 0.70, 0.60),
    "hair": (0.28, 0.18, 0.11),
    "left_eye": (0.92, 0.90, 0.87),
    "right_eye": (0.92, 0.90, 0.87),
    "left_brow": (0.87, 0.70, 0.60),  # skin under the brow hairs (hairs drawn from brow_field)
    "right_brow": (0.87, 0.70, 0.60),
    "nose": (0.87, 0.69, 0.59),
    "upper_lip": (0.87, 0.70, 0.60),  # lip colour drawn from lip_fields over skin
    "lower_lip": (0.87, 0.70, 0.60),
    "mouth_interior": (0.58, 0.32, 0.31),  # front of the mouth; darker with depth
    "ears": (0.86, 0.66, 0.57),
    "neck": (0.85, 0.68, 0.58),
    "accessory": (0.6, 0.6, 0.6),
}
"""Base albedo per component for the demo avatar."""

LIP_COLOUR = (0.76, 0.45, 0.44)  # upper lip (the lower one is a touch lighter)
BROW_COLOUR = (0.22, 0.14, 0.09)  # brow hairs
IRIS_COLOUR = (0.38, 0.26, 0.15)  # hazel-brown iris
TEETH_COLOUR = (0.90, 0.87, 0.80)  # front teeth band inside the mouth
IRIS_ANGLE = math.radians(31.0)  # iris edge, as an angle from the eye's forward axis
PUPIL_ANGLE = math.radians(12.5)  # pupil edge
MOUTH = torch.tensor(sdf.ANATOMY["mouth"], dtype=torch.float32)  # centre of the lip seam at rest
DEMO_COUNT = 40_000  # Gaussians the demo is built with (about; at least one per triangle); its outlines fit these
LIP_RECEDE = 0.010  # how far the lips' front lies behind their centre at the corners (as lip_fields)


def _hash_noise(p: Tensor, freq: float) -> Tensor:
    """Deterministic value noise in [-1, 1] at points p [N, 3] (sum of sines, no RNG)."""
    q = p * freq
    return (torch.sin(q @ torch.tensor([12.9898, 78.233, 37.719])) * 0.5
            + torch.sin(q @ torch.tensor([-41.3, 17.77, 29.1]) + 1.3) * 0.3
            + torch.sin(q @ torch.tensor([5.1, -9.7, 63.2]) + 0.7) * 0.2)


def _bump(p: Tensor, centre: list[float], radius: float) -> Tensor:
    """Gaussian falloff exp(-|p - centre|² / radius²) at points p [N, 3] -> [N]."""
    return torch.exp(-((p - torch.tensor(centre)) ** 2).sum(dim=1) / radius**2)


def _mix(a: Tensor, b: Tensor | tuple[float, float, float], w: Tensor) -> Tensor:
    """a [N, 3] blended toward b ([N, 3] or one colour) by weights w [N]."""
    b_t = torch.as_tensor(b, dtype=a.dtype).expand_as(a)
    return a + (b_t - a) * w[:, None]


def _skin(points: Tensor, labels: Tensor, colour: Tensor) -> Tensor:
    """Skin tone variation: cheek, nose and ear warmth, a cooler jaw shadow zone; [N, 3]."""
    warm = sum(_bump(points, [s * 0.040, -0.010, 0.062], 0.020) for s in (1.0, -1.0)) * 0.16
    warm = warm + _bump(points, [0.0, -0.012, 0.108], 0.010) * 0.12  # nose tip
    warm = warm + (labels == LABEL["ears"]).float() * 0.10
    colour = _mix(colour, (0.88, 0.58, 0.54), warm.clamp(max=0.4))
    beard = _bump(points, [0.0, -0.085, 0.060], 0.030) * 0.10  # faint shadow on chin and upper lip
    return _mix(colour, (0.72, 0.60, 0.55), beard)


def _features(points: Tensor, normals: Tensor, labels: Tensor, colour: Tensor, fine: Tensor) -> Tensor:
    """Lips and brows painted from the head's smooth outlines (normals [N, 3] at rest); [N, 3]."""
    p = points.double().numpy()
    upper, lower = (torch.from_numpy(w).float() for w in lip_fields(p, soft=0.0005))
    skinlike = ~torch.isin(labels, torch.tensor([LABEL["mouth_interior"], LABEL["left_eye"], LABEL["right_eye"]]))
    lip = torch.where(skinlike, upper + lower, torch.zeros_like(upper)).clamp(max=1.0)
    lip_rgb = _mix(torch.tensor(LIP_COLOUR).expand_as(colour), (0.80, 0.50, 0.48), (lower > upper).float())
    inner = ((0.35 - normals[:, 2]) / 0.30).clamp(0.0, 1.0)  # inside of the lips, seen when the jaw opens
    lip_rgb = _mix(lip_rgb, (0.50, 0.22, 0.22), inner)
    colour = _mix(colour, lip_rgb, lip * 0.92)
    brow = torch.from_numpy(brow_field(p, soft=0.0010)).float() * skinlike.float()
    ax = points[:, 0].abs()
    hairs = 0.5 + 0.5 * torch.sin(points[:, 1] * 2600.0 - ax * 900.0 + 3.0 * fine)  # strands slant outward
    density = (brow * (0.70 + 0.30 * hairs)).clamp(0.0, 1.0)
    return _mix(colour, BROW_COLOUR, density * 0.92)


def _eyes(points: Tensor, labels: Tensor, colour: Tensor, eye_centres: Tensor, fine: Tensor) -> Tensor:
    """Sclera, iris, limbal ring, pupil and a catch light on each eyeball (looking +z at rest)."""
    for label, centre in ((LABEL["left_eye"], eye_centres[0]), (LABEL["right_eye"], eye_centres[1])):
        on = labels == label
        d = points[on] - centre
        cos = d[:, 2] / d.norm(dim=1).clamp(min=1e-9)
        angle = torch.acos(cos.clamp(-1.0, 1.0))
        c = colour[on]
        c = _mix(c, (0.86, 0.70, 0.66), ((angle - 0.9) / 0.5).clamp(0.0, 1.0) * 0.6)  # pink toward the lids
        swirl = torch.atan2(d[:, 1], d[:, 0])
        iris = torch.tensor(IRIS_COLOUR) * (1.0 + 0.25 * torch.sin(swirl * 23.0 + 2.0 * fine[on])[:, None])
        iris = _mix(iris, (0.16, 0.10, 0.06), ((angle - IRIS_ANGLE + 0.09) / 0.09).clamp(0.0, 1.0))  # limbus
        iris = _mix(iris, (0.55, 0.42, 0.22), ((PUPIL_ANGLE + 0.10 - angle) / 0.10).clamp(0.0, 1.0) * 0.5)
        c = _mix(c, iris, ((IRIS_ANGLE - angle) / 0.02).clamp(0.0, 1.0))
        c = _mix(c, (0.02, 0.02, 0.02), ((PUPIL_ANGLE - angle) / 0.02).clamp(0.0, 1.0))
        glint = torch.exp(-((d[:, 0] / d.norm(dim=1) - 0.16) ** 2 + (d[:, 1] / d.norm(dim=1) - 0.20) ** 2) / 0.004)
        colour[on] = _mix(c, (1.0, 1.0, 1.0), glint * 0.85)
    return colour


def _interior(points: Tensor, labels: Tensor, colour: Tensor, mouth: Tensor) -> Tensor:
    """Mouth cavity: dark red, deeper toward the back, with a band of front teeth above and below.

    Depth is taken behind the lips' front, which recedes toward the corners (LIP_RECEDE), so the inner
    lips at the corners are not painted as the back of the mouth."""
    on = labels == LABEL["mouth_interior"]
    q = points[on] - mouth
    depth = (-q[:, 2]).clamp(min=0.0)
    s = (q[:, 0].abs() / sdf.MOUTH_HALF_WIDTH).clamp(max=1.0)
    behind_lips = (depth - LIP_RECEDE * s**2).clamp(min=0.0)  # the lips' front recedes toward the corners
    c = _mix(colour[on], (0.16, 0.04, 0.05), ((behind_lips - 0.004) / 0.016).clamp(0.0, 1.0))
    teeth = ((depth > 0.008) & (depth < 0.020) & (q[:, 0].abs() < 0.016) & (q[:, 1].abs() > 0.002)).float()
    colour[on] = _mix(c, TEETH_COLOUR, teeth * 0.9)
    return colour


def _albedo(points: Tensor, normals: Tensor, labels: Tensor, eye_centres: Tensor, cavity: Tensor) -> Tensor:
    """Colour [N, 3] for surface points [N, 3] with normals [N, 3], labels [N] and cavity shade [N]."""
    base = torch.tensor([ALBEDO[name] for name in LABEL])[labels]
    fine = _hash_noise(points, 900.0)
    coarse = _hash_noise(points, 60.0)[:, None]
    colour = _skin(points, labels, base * (1 + 0.025 * fine[:, None] + 0.035 * coarse))
    colour = _features(points, normals, labels, colour, fine)
    hair = labels == LABEL["hair"]
    strands = torch.sin(points[:, 0] * 2200 + 40 * torch.sin(points[:, 1] * 90))[:, None]
    colour = torch.where(hair[:, None], colour * (1 + 0.16 * strands), colour)
    colour = _eyes(points, labels, colour, eye_centres, fine)
    colour = _interior(points, labels, colour, MOUTH)
    light = torch.nn.functional.normalize(torch.tensor([0.3, 0.6, 1.0]), dim=0)
    shade = 0.80 + 0.20 * (normals @ light).clamp(min=0)[:, None]
    return (colour * shade * cavity[:, None]).clamp(0.0, 1.0)


def vertex_cavity(verts: Tensor, faces: Tensor, rounds: int = 6, strength: float = 90.0) -> Tensor:
    """Cavity shade [V] in [0.62, 1]: darker where the surface sits below its smoothed self.

    verts [V, 3], faces [F, 3]. Compares each vertex with `rounds` of umbrella smoothing along
    its normal (a cheap stand-in for ambient occlusion in eye sockets, nostrils, the mouth line).
    """
    v = verts.double()
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).long()
    e = torch.cat([e, e.flip(1)])
    deg = torch.zeros(len(v), dtype=v.dtype).index_add_(0, e[:, 0], torch.ones(len(e), dtype=v.dtype))
    s = v.clone()
    for _ in range(rounds):
        s = 0.5 * s + 0.5 * torch.zeros_like(s).index_add_(0, e[:, 0], s[e[:, 1]]) / deg.clamp(min=1)[:, None]
    fn = face_normals(v[faces])
    n = torch.zeros_like(v)
    for k in range(3):
        n.index_add_(0, faces[:, k].long(), fn)
    n = torch.nn.functional.normalize(n, dim=1)
    depth = ((s - v) * n).sum(dim=1)  # > 0 in hollows
    return (1.0 - strength * depth.clamp(min=0.0)).clamp(0.62, 1.0).float()


def _eye_centres(verts: Tensor, faces: Tensor, labels: Tensor) -> Tensor:
    """Eyeball centres [2, 3] (left, right): box centre in x/y, back of the ball + radius in z."""
    out = []
    for label in (LABEL["left_eye"], LABEL["right_eye"]):
        p = verts[faces[labels == label].reshape(-1)]
        lo, hi = p.min(0).values, p.max(0).values
        radius = 0.5 * (hi[0] - lo[0])
        out.append(torch.stack([0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), lo[2] + radius]))
    return torch.stack(out)


def commissure_faces(normals: Tensor, centroids: Tensor, labels: Tensor) -> Tensor:
    """[F] bool: the mouth-interior faces that lie on the outer skin at the mouth corners.

    normals [F, 3] and centroids [F, 3] of the faces at rest (engine.avatar.binding.triangle_frames), labels [F].
    The demo head labels the faces that bridge the
    upper and lower lip (their jaw weights differ) as mouth interior, and at the corners a few of
    them lie on the face's outer surface, set back ~14 mm from the lip front as the face curves: they
    face forward (normal z > 0.3), sit in the front 2 cm of the mouth and beyond its inner 21 mm.
    Painted as cavity they showed as dark wedges at the corners of every smile; they are painted as
    skin (their labels stay the head's).
    """
    return ((labels == LABEL["mouth_interior"]) & (normals[:, 2] > 0.3) & (centroids[:, 2] > MOUTH[2] - 0.020)
            & (centroids[:, 0].abs() > sdf.MOUTH_HALF_WIDTH - 0.004))


def build_demo_gaussians(head: HeadModel, count: int = DEMO_COUNT, seed: int = 0) -> BoundGaussians:
    """About `count` Gaussians over the head's neutral mesh, at least one per triangle."""
    gen = torch.Generator().manual_seed(seed)
    verts = head(head.neutral_params())[0].detach()
    faces = head.faces
    rot, centroid, tri_scale = triangle_frames(verts, faces)
    area = triangle_areas(verts, faces)
    per_face = torch.clamp(torch.round(area / area.sum() * count), min=1).long()
    binding = torch.repeat_interleave(torch.arange(len(faces)), per_face)
    n = len(binding)
    points, u, v = sample_on_triangles(verts, faces, binding, gen)
    xyz = world_to_local(binding, points, rot, centroid, tri_scale)
    spacing = torch.sqrt(area[binding] / per_face[binding])  # world distance between neighbours
    commissure = commissure_faces(rot[:, :, 1], centroid, head.face_labels)  # local axis 1 is the normal
    sigma = 0.85 * spacing / tri_scale[binding]
    log_scale = torch.log(torch.stack([sigma, 0.25 * sigma, sigma], dim=1))  # local axis 1 is the normal
    labels = head.face_labels[binding]
    cav = vertex_cavity(verts, faces)[faces[binding]]  # [N, 3] at the triangle corners
    cavity = (1 - u - v) * cav[:, 0] + u * cav[:, 1] + v * cav[:, 2]
    normals = rot[binding][:, :, 1]
    paint = torch.where(commissure[binding], LABEL["skin"], labels)  # commissure faces: skin, whatever their label
    colour = _albedo(points, normals, paint, _eye_centres(verts, faces, head.face_labels), cavity)
    sh = torch.zeros(n, 16, 3)
    sh[:, 0] = rgb_to_dc(colour)
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


OUTLINES_FILE = DEMO_HEAD_DIR.parent / "demo_avatar" / "outlines.npz"
OUTLINE_FIELDS = ("xyz", "rotation", "log_scale", "opacity_logit")  # what the outline fit changes
_KEYS = ("binding", "labels")  # written beside them: the Gaussians they belong to


def save_outlines(gaussians: BoundGaussians, path: str | os.PathLike) -> Path:
    """Write the fitted geometry of the demo Gaussians (OUTLINE_FIELDS, with binding and labels to check
    them against) to an .npz, atomically."""
    arrays = {k: getattr(gaussians, k).detach().cpu().numpy() for k in OUTLINE_FIELDS + _KEYS}
    with atomic_write(path) as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def apply_outlines(gaussians: BoundGaussians, path: str | os.PathLike) -> BoundGaussians:
    """gaussians with their geometry replaced by the fitted one at path. FileFormatError naming the file when
    it cannot be read or was fitted to other Gaussians (the builder changed: run scripts/build_demo_outlines.py)."""
    data = read_npz(path, lambda problem: FileFormatError(path, f"cannot read the demo avatar's outlines: {problem}"))
    for k in OUTLINE_FIELDS + _KEYS:
        want = tuple(getattr(gaussians, k).shape)
        if k not in data or data[k].shape != want:
            got = "missing" if k not in data else f"shaped {list(data[k].shape)}"
            raise FileFormatError(path, f"{k!r} is {got}, the demo Gaussians need {list(want)}: "
                                  "rebuild it with scripts/build_demo_outlines.py")
    for k in _KEYS:
        if not np.array_equal(data[k], getattr(gaussians, k).numpy()):
            raise FileFormatError(path, f"fitted to other demo Gaussians ({k} differ): rebuild it with "
                                  "scripts/build_demo_outlines.py")
    fitted = {k: torch.from_numpy(np.array(data[k], dtype=np.float32)) for k in OUTLINE_FIELDS}
    if not all(bool(torch.isfinite(v).all()) for v in fitted.values()):
        raise FileFormatError(path, "holds values that are not finite")
    return gaussians.replace(**fitted)


_DEMO: dict[tuple[int, bool], BoundGaussians] = {}


def load_demo_avatar(count: int = DEMO_COUNT, outlines: bool = True) -> Avatar:
    """The demo avatar (a fresh Avatar each call; the Gaussians are built once per process): with the shipped
    fitted outlines (OUTLINES_FILE, for the default count) unless outlines is False (the procedural Gaussians,
    which the outline fit starts from)."""
    head = load_head("demo")
    fitted = outlines and count == DEMO_COUNT and OUTLINES_FILE.is_file()
    key = (count, fitted)
    if key not in _DEMO:
        built = build_demo_gaussians(head, count)
        _DEMO[key] = apply_outlines(built, OUTLINES_FILE) if fitted else built
    return Avatar(head, _DEMO[key].detach_clone(), head.neutral_params(), "demo avatar")
