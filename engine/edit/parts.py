"""Named parts inside components (engine.head.components.PARTS): which Gaussians are the iris, the sclera,
the teeth.

Every rule works on the avatar at rest (zero expression and pose, its own shape and static offset), where
the eyes look along the head's forward axis +z; a part is a set of Gaussians, so it then follows every
expression, jaw and eye pose through the triangle binding.

- iris / sclera: per eye, a sphere fitted to the eye's Gaussians gives the eyeball centre; the forward
  axis is +z bent toward the dark centre of the front (where this avatar's pupil really is, within 20°).
  Along the angle θ from that axis the Gaussians' lightness profile is measured: the iris edge is where
  the front's lightness climbs halfway from the iris to the sclera (20°–40°; 30° when the eye shows no
  contrast, e.g. an untextured eyeball), and a pupil, when the centre is clearly darker than the iris
  ring, is cut out the same way. Iris = pupil edge ≤ θ ≤ iris edge, less catch lights (Gaussians far
  lighter than the ring: a reflection stays white) — "green eyes" keeps black pupils and white glints;
  sclera = θ > iris edge.
- teeth: the FLAME teeth triangles when the head is the augmented FLAME mesh (GaussianAvatars/VHAP add
  168 teeth faces after FLAME's 9976); otherwise the bright cluster of the mouth interior's colours
  (Otsu split of Oklab lightness − 3 × chroma: teeth are light and nearly grey) when it stands out from
  the dark red cavity and a frontal view of the open mouth shows it (a tenth of what it shows of the
  mouth interior, at least); otherwise what that view shows of
  the mouth interior (its front: what a person sees as the teeth when the avatar has no visible ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.errors import UserError
from engine.head.components import LABEL, PARTS
from engine.render.splats import dc_to_rgb

FLAME_FACES = 9976  # triangles of the FLAME mesh
FLAME_TEETH_FACES = 168  # triangles GaussianAvatars / VHAP append for the teeth
IRIS_EDGE_RANGE = (math.radians(20.0), math.radians(40.0))  # where an iris edge may be found
DEFAULT_IRIS_EDGE = math.radians(30.0)  # iris edge of an eye without visible contrast
MAX_AXIS_TILT = math.radians(20.0)  # largest bend of the forward axis toward the measured dark centre
BIN = math.radians(2.0)  # angle bins of the lightness profile
OPEN_JAW = 0.35  # jaw opening (rad) at which the front of the mouth interior is judged


class PartError(UserError, ValueError):
    """A part that this avatar does not have (no eye Gaussians for an iris, no mouth interior for teeth)."""


HIGHLIGHT = 0.25  # an iris Gaussian this much lighter than the iris ring's median is a catch light, not iris


@dataclass(frozen=True)
class EyeGeometry:
    """What the iris rule measured on one eye (angles in radians)."""

    centre: Tensor  # [3] fitted eyeball centre at rest
    axis: Tensor  # [3] unit forward axis at rest
    radius: float  # fitted eyeball radius
    iris_edge: float  # angle of the iris edge from the axis
    pupil_edge: float  # angle of the pupil edge (0: no pupil cut out)
    ring_lightness: float  # median Oklab lightness of the iris ring (between the pupil and the iris edge)


def rest_means(avatar: Avatar) -> Tensor:
    """[N, 3] Gaussian centres at rest: zero expression and pose, the avatar's own shape and static offset."""
    rest = avatar.head.neutral_params().with_values(shape=avatar.params.shape)
    with torch.no_grad():
        verts = avatar.posed_vertices(rest).float()
        return avatar.gaussians.deform(verts, avatar.head.faces).means


def base_oklab(avatar: Avatar) -> Tensor:
    """[N, 3] Oklab (L, a, b) of every Gaussian's base (DC) colour."""
    from engine.edit.colour_space import srgb_to_oklab

    return srgb_to_oklab(dc_to_rgb(avatar.gaussians.sh[:, 0].float()).clamp(0, 1))


def fit_sphere(points: Tensor) -> tuple[Tensor, float]:
    """(centre [3], radius) of the least-squares sphere through points [P, 3] (P ≥ 4)."""
    assert points.ndim == 2 and points.shape[1] == 3, f"points must be [P, 3], got {tuple(points.shape)}"
    p = points.double()
    a = torch.cat([2 * p, torch.ones(p.shape[0], 1, dtype=p.dtype)], dim=1)
    b = (p * p).sum(1, keepdim=True)
    sol = torch.linalg.lstsq(a, b).solution[:, 0]
    centre = sol[:3]
    radius = math.sqrt(max(float(sol[3] + centre.dot(centre)), 1e-12))
    return centre.float(), radius


def _profile(theta: Tensor, light: Tensor, upto: float) -> tuple[Tensor, Tensor]:
    """(bin centres [B], median lightness per bin [B], NaN where empty) of light [P] over angles theta [P]."""
    n = math.ceil(upto / BIN)
    centres = (torch.arange(n, dtype=torch.float32) + 0.5) * BIN
    med = torch.full((n,), float("nan"))
    which = (theta / BIN).long()
    for i in range(n):
        vals = light[which == i]
        if vals.numel():
            med[i] = vals.median()
    return centres, med


def _first_rise(centres: Tensor, med: Tensor, level: float, start: float, stop: float) -> float | None:
    """The lower edge of the first bin (centres [B]) in [start, stop] whose median med [B] reaches level, or None."""
    for c, m in zip(centres.tolist(), med.tolist()):
        if start <= c <= stop and not math.isnan(m) and m >= level:
            return c - BIN / 2
    return None


def _median_in(theta: Tensor, light: Tensor, lo: float, hi: float) -> float | None:
    inside = (theta >= lo) & (theta <= hi)
    return float(light[inside].median()) if bool(inside.any()) else None


def eye_geometry(points: Tensor, light: Tensor) -> EyeGeometry:
    """The iris rule on one eye: rest positions points [P, 3] and lightness light [P] of its Gaussians."""
    assert points.ndim == 2 and points.shape[1] == 3, f"points must be [P, 3], got {tuple(points.shape)}"
    assert light.shape == (points.shape[0],) and points.shape[0] >= 4, "an eye needs light [P] and P ≥ 4 Gaussians"
    centre, radius = fit_sphere(points)
    forward = torch.tensor([0.0, 0.0, 1.0])
    d = torch.nn.functional.normalize(points - centre, dim=1)
    theta0 = torch.acos((d @ forward).clamp(-1, 1))
    front = theta0 < math.radians(45.0)
    axis = forward
    if bool(front.any()):
        sclera = _median_in(theta0, light, math.radians(40.0), math.radians(70.0))
        dark = (((sclera if sclera is not None else float(light[front].max())) - light) * front.float()).clamp_min(0)
        if float(dark.sum()) > 1e-6:
            bent = torch.nn.functional.normalize((d * dark[:, None]).sum(0), dim=0)
            if math.acos(max(-1.0, min(1.0, float(bent @ forward)))) <= MAX_AXIS_TILT:
                axis = bent
    theta = torch.acos((d @ axis).clamp(-1, 1))
    centres, med = _profile(theta, light, math.radians(60.0))
    iris_edge, pupil_edge = DEFAULT_IRIS_EDGE, 0.0
    inner = _median_in(theta, light, 0.0, math.radians(20.0))
    sclera = _median_in(theta, light, math.radians(40.0), math.radians(60.0))
    if inner is not None and sclera is not None and sclera - inner > 0.1:
        found = _first_rise(centres, med, 0.5 * (inner + sclera), IRIS_EDGE_RANGE[0], IRIS_EDGE_RANGE[1])
        iris_edge = found if found is not None else DEFAULT_IRIS_EDGE
    nearest = torch.argsort(theta)[:10]  # the centre of the front (few Gaussians lie within a few degrees)
    centre_l = float(light[nearest].median())
    ring = _median_in(theta, light, 0.55 * iris_edge, 0.85 * iris_edge)
    if ring is not None and ring - centre_l > 0.1:
        found = _first_rise(centres, med, 0.5 * (centre_l + ring), 0.0, 0.7 * iris_edge)
        pupil_edge = found if found is not None else 0.0
    ring_all = _median_in(theta, light, pupil_edge, iris_edge)
    return EyeGeometry(centre, axis, radius, iris_edge, pupil_edge, ring_all if ring_all is not None else 0.5)


def _eye_part(avatar: Avatar, part: str, points: Tensor, light: Tensor) -> Tensor:
    out = torch.zeros(avatar.gaussians.count, dtype=torch.bool)
    for name in PARTS[part]:
        on = avatar.gaussians.labels == LABEL[name]
        if int(on.sum()) < 4:
            continue
        geo = eye_geometry(points[on], light[on])
        d = torch.nn.functional.normalize(points[on] - geo.centre, dim=1)
        theta = torch.acos((d @ geo.axis).clamp(-1, 1))
        if part == "iris":
            highlight = light[on] > geo.ring_lightness + HIGHLIGHT
            out[on] = (theta >= geo.pupil_edge) & (theta <= geo.iris_edge) & ~highlight
        else:
            out[on] = theta > geo.iris_edge
    return out


def _otsu(values: Tensor, bins: int = 64) -> float:
    """Otsu's threshold of values [P]."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
        return hi
    hist = torch.histc(values, bins, lo, hi).double()
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    mids = 0.5 * (edges[1:] + edges[:-1])
    w0 = hist.cumsum(0)
    w1 = hist.sum() - w0
    m0 = (hist * mids).cumsum(0) / w0.clamp_min(1e-12)
    m1 = ((hist * mids).sum() - (hist * mids).cumsum(0)) / w1.clamp_min(1e-12)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(edges[int(torch.argmax(between[:-1])) + 1])


def _bright(inside: Tensor, lab: Tensor) -> Tensor:
    """[N] bool: the light, nearly grey cluster of the Gaussians `inside` (none when it does not stand out)."""
    whiteness = lab[:, 0] - 3.0 * lab[:, 1:].norm(dim=1)  # teeth: light and nearly grey; the cavity: dark or red
    values = whiteness[inside]
    cut = _otsu(values)
    bright, light = values > cut, lab[inside, 0]
    if int(bright.sum()) < max(4, 0.02 * values.numel()) or bool(bright.all()) \
            or float(light[bright].mean() - light[~bright].mean()) < 0.15:
        return torch.zeros_like(inside)
    return inside & (whiteness > cut)


def open_mouth_front(avatar: Avatar, selection: Tensor, jaw: float = OPEN_JAW) -> Tensor:
    """[N] bool: Gaussians of selection ([N] bool) a frontal camera sees when the jaw opens by `jaw` rad."""
    from engine.edit.keyframes import orbit_cameras, orbit_views
    from engine.edit.visibility import measure_visibility

    params = avatar.head.neutral_params().with_values(shape=avatar.params.shape)
    params = params.with_values(jaw_pose=torch.tensor([[jaw, 0.0, 0.0]], dtype=params.jaw_pose.dtype))
    views = orbit_views(avatar, params, orbit_cameras(avatar, 1, 256, yaw_range=0.0, pitches=(0.0,)))
    report = measure_visibility(avatar, views, selection.float(), size=96)
    out = torch.zeros_like(selection)
    out[torch.nonzero(selection).squeeze(1)[report.seen[0]]] = True
    return out


def _teeth(avatar: Avatar, lab: Tensor) -> Tensor:
    g = avatar.gaussians
    if avatar.head.n_faces == FLAME_FACES + FLAME_TEETH_FACES:
        teeth_faces = (g.binding >= FLAME_FACES) & (g.binding < FLAME_FACES + FLAME_TEETH_FACES)
        if bool(teeth_faces.any()):
            return teeth_faces
    inside = g.labels == LABEL["mouth_interior"]
    if int(inside.sum()) < 4:
        return torch.zeros_like(inside)
    front = open_mouth_front(avatar, inside)
    bright = _bright(inside, lab)
    shows = int((bright & front).sum())
    return bright if shows >= max(8, 0.1 * int(front.sum())) else front


def part_mask(avatar: Avatar, part: str) -> Tensor:
    """[N] bool: the avatar's Gaussians that make up `part` (a PARTS name). PartError when it has none."""
    if part not in PARTS:
        raise PartError(f"unknown part {part!r}; known: {', '.join(PARTS)}")
    lab = base_oklab(avatar)
    out = _teeth(avatar, lab) if part == "teeth" else _eye_part(avatar, part, rest_means(avatar), lab[:, 0])
    if not bool(out.any()):
        raise PartError(f"avatar {avatar.name!r} has no {part} Gaussians (its {', '.join(PARTS[part])} "
                        f"{'do' if len(PARTS[part]) > 1 else 'does'} not show one)")
    return out


def narrow_to_part(avatar: Avatar, selection: Tensor, part: str | None) -> Tensor:
    """selection ([N] bool or weights) limited to the part's Gaussians (unchanged when part is None).

    PartError when the selection holds none of the part (e.g. a painted mask away from the eyes)."""
    if part is None:
        return selection
    n = avatar.gaussians.count
    assert selection.shape == (n,), f"selection must be [N={n}], got {tuple(selection.shape)}"
    mask = part_mask(avatar, part)
    narrowed = torch.where(mask, selection, torch.zeros_like(selection))
    if not bool((narrowed > 0).any()):
        raise PartError(f"the selection holds none of the {part}: select the {', '.join(PARTS[part])} to edit it")
    return narrowed
