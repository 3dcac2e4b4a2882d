"""Direct adjustments of selected Gaussians (no image editor in the loop), as edit layers.

Tint, brightness, contrast, saturation, temperature, black/white point, opacity scale, hide, and a
small transform (offset, scale, rotation). Each is a pure function of (Gaussians, selection,
params) that returns additive deltas, gathered into an `EditLayer` of kind "adjust" by
`adjust_layer`. A selection is bool [N] or float weights [N] in [0, 1] (a soft mask: every change
is scaled by the weight; hide takes weights >= 0.5).

Colour: every operation grades the view-independent colour rgb = 0.5 + SH_C0·DC (see
engine/edit/colour_space.py) and writes the SH DC term. The higher SH bands (view-dependent
detail) are scaled by the ratio of the graded to the original luma (clamped to [0, 4]), so a
darker region also gets dimmer sheen and a tint leaves highlights' hue alone; they are not
re-hued. Where the higher bands are all zero (the demo avatar) nothing changes there.

Transform: offset (metres), rotation (degrees about x, y, z, about the selection's centroid) and
uniform scale are given in head space at a reference pose (frame 0 of the avatar's sequence by
default) and stored per Gaussian in its bound triangle's frame (xyz, rotation, log_scale deltas),
so the moved part still follows the face at every expression.

Live preview: `AdjustPreview` keeps one composed copy of the avatar and rewrites only the selected
rows (only the DC column of the SH unless the higher bands are non-zero) for each slider value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from engine.avatar.binding import quat_from_matrix, quat_multiply, quat_to_matrix, triangle_frames
from engine.avatar.gaussians import BoundGaussians
from engine.edit import colour_space as cs
from engine.edit.layers import DELTA_FIELDS, EditLayer, compose
from engine.head.components import labels_of

HIDDEN_LOGIT = -40.0
"""Opacity logit the live preview gives hidden Gaussians (sigmoid ≈ 4e-18: culled by every renderer)."""


@dataclass(frozen=True)
class AdjustParams:
    """One direct adjustment; every field at its default changes nothing."""

    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # target colour, sRGB in [0, 1]
    strength: float = 0.0  # how far toward the tint colour, 0..1
    brightness: float = 0.0  # exposure in [-1, 1] = ±2 stops of linear light
    contrast: float = 0.0  # in [-1, 1]; distances from the selection's mean luma scale by 1 + contrast
    saturation: float = 0.0  # in [-1, 1]; Oklab chroma scales by 1 + saturation (−1 = grey)
    temperature: float = 0.0  # in [-1, 1]; positive warmer, negative cooler
    black_point: float = 0.0  # input level that becomes black, 0..1
    white_point: float = 1.0  # input level that becomes white, 0..1, above black_point
    opacity: float = 1.0  # opacity multiplier, 0..4 (results clipped below 1)
    hide: bool = False  # remove the selected Gaussians (hide / delete)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # translation in metres, head space at the reference pose
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)  # degrees about x, y, z (applied z·y·x) about the centroid
    scale: float = 1.0  # uniform scale about the selection's centroid, > 0

    def __post_init__(self) -> None:
        checks = [
            (all(0.0 <= c <= 1.0 for c in self.tint) and len(self.tint) == 3, "tint must be 3 values in [0, 1]"),
            (0.0 <= self.strength <= 1.0, "strength must be in [0, 1]"),
            (0.0 <= self.black_point < self.white_point <= 1.0, "need 0 <= black_point < white_point <= 1"),
            (0.0 <= self.opacity <= 4.0, "opacity must be in [0, 4]"),
            (self.scale > 0.0, "scale must be positive"),
            (len(self.offset) == 3 and len(self.rotation) == 3, "offset and rotation take 3 values"),
        ]
        for name in ("brightness", "contrast", "saturation", "temperature"):
            checks.append((-1.0 <= getattr(self, name) <= 1.0, f"{name} must be in [-1, 1]"))
        for ok, message in checks:
            if not ok:
                raise ValueError(f"adjustment: {message}")

    @property
    def changes_colour(self) -> bool:
        return bool(self.strength or self.brightness or self.contrast or self.saturation or self.temperature
                    or self.black_point != 0.0 or self.white_point != 1.0)

    @property
    def changes_opacity(self) -> bool:
        return self.opacity != 1.0

    @property
    def changes_geometry(self) -> bool:
        return any(self.offset) or any(self.rotation) or self.scale != 1.0

    @property
    def is_identity(self) -> bool:
        return not (self.changes_colour or self.changes_opacity or self.changes_geometry or self.hide)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> AdjustParams:
        known = set(AdjustParams.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"adjustment: unknown fields {sorted(unknown)}")
        return AdjustParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def describe(self) -> str:
        """Short words for a layer name: 'tint', 'brightness, opacity', 'hide', ..."""
        words = [name for name, on in (
            ("hide", self.hide), ("tint", self.strength > 0), ("brightness", self.brightness != 0),
            ("contrast", self.contrast != 0), ("saturation", self.saturation != 0),
            ("temperature", self.temperature != 0),
            ("levels", self.black_point != 0 or self.white_point != 1), ("opacity", self.changes_opacity),
            ("move", self.changes_geometry)) if on]
        return ", ".join(words) or "no change"


@dataclass(frozen=True)
class TriangleFrames:
    """Triangle frames of the mesh at the reference pose a transform is specified in."""

    rot: Tensor  # [F, 3, 3] columns = triangle axes (edge, normal, in-plane)
    centroid: Tensor  # [F, 3]
    scale: Tensor  # [F] triangle scale k


def reference_frames(avatar: Any, params: Any = None) -> TriangleFrames:
    """TriangleFrames of an Avatar's mesh at params (default: frame 0 of its own sequence)."""
    with torch.no_grad():
        rot, centroid, scale = triangle_frames(avatar.posed_vertices(params), avatar.head.faces)
    return TriangleFrames(rot, centroid, scale)


def selection_from_components(gaussians: BoundGaussians, names: list[str] | tuple[str, ...]) -> Tensor:
    """Bool [N]: Gaussians whose label is one of the named components or groups (e.g. ["lips"])."""
    wanted = torch.tensor(labels_of(list(names)), dtype=gaussians.labels.dtype, device=gaussians.labels.device)
    return torch.isin(gaussians.labels, wanted)


def selection_weights(selection: Tensor, count: int) -> Tensor:
    """Float weights [N] in [0, 1] of a bool or float selection [N]."""
    assert selection.shape == (count,), f"selection must be [N] = [{count}], got {tuple(selection.shape)}"
    if selection.dtype == torch.bool:
        return selection.float()
    return selection.float().clamp(0.0, 1.0)


def grade_colours(rgb: Tensor, weights: Tensor, params: AdjustParams) -> Tensor:
    """Graded display colours [M, 3] of rgb [M, 3] with selection weights [M] (0 leaves a row as is).

    Order: levels, brightness, contrast, saturation, temperature, tint. Stages at their neutral
    value are skipped, so an identity adjustment returns rgb unchanged (bit for bit).
    """
    assert rgb.ndim == 2 and rgb.shape[1] == 3, f"rgb must be [M, 3], got {tuple(rgb.shape)}"
    out = rgb
    if params.black_point != 0.0 or params.white_point != 1.0:
        out = cs.levels(out, params.black_point, params.white_point)
    if params.brightness:
        out = cs.brightness(out, params.brightness)
    if params.contrast:
        out = cs.contrast(out, params.contrast, cs.weighted_mean(cs.luma(out), weights))
    if params.saturation:
        out = cs.saturation(out, params.saturation)
    if params.temperature:
        out = cs.temperature(out, params.temperature)
    if params.strength:
        out = cs.tint(out, torch.tensor(params.tint), params.strength, weights)
    if out is rgb:
        return rgb
    return rgb + weights[:, None] * (out - rgb)


def colour_delta(sh: Tensor, weights: Tensor, params: AdjustParams) -> tuple[Tensor, Tensor | None]:
    """(DC delta [M, 3], factor [M] for the higher bands or None) of SH rows sh [M, K, 3].

    The higher bands become sh[:, 1:] · factor (graded luma / original luma, clamped to [0, 4]);
    None when they are all zero or the adjustment changes no colour.
    """
    assert sh.ndim == 3 and sh.shape[2] == 3, f"sh must be [M, K, 3], got {tuple(sh.shape)}"
    assert weights.shape == sh.shape[:1], f"weights must be [M] = [{sh.shape[0]}], got {tuple(weights.shape)}"
    dc = sh[:, 0]
    if not params.changes_colour or sh.shape[0] == 0:
        return torch.zeros_like(dc), None
    rgb = cs.dc_to_rgb(dc)
    graded = grade_colours(rgb, weights, params)
    delta = cs.rgb_to_dc(graded) - dc
    if sh.shape[1] == 1 or not bool(sh[:, 1:].any()):
        return delta, None
    before = cs.luma(rgb.clamp_min(0.0)).clamp_min(1e-3)
    factor = (cs.luma(graded.clamp_min(0.0)).clamp_min(1e-3) / before).clamp(0.0, 4.0)
    return delta, factor


def opacity_delta(opacity_logit: Tensor, weights: Tensor, factor: float) -> Tensor:
    """Delta [M] on opacity logits [M] that multiplies opacity by factor^weight (result kept in (0, 1))."""
    if factor == 1.0:
        return torch.zeros_like(opacity_logit)
    scaled = torch.sigmoid(opacity_logit) * torch.pow(max(factor, 1e-6), weights)
    scaled = scaled.clamp(1e-6, 1.0 - 1e-6)
    return torch.logit(scaled) - opacity_logit


def _euler_quat(degrees: tuple[float, float, float]) -> Tensor:
    """[4] unit quaternion (w, x, y, z) of Rz·Ry·Rx for angles in degrees about x, y, z."""
    out = torch.tensor([1.0, 0.0, 0.0, 0.0])
    for axis, angle in enumerate(degrees):
        half = math.radians(angle) / 2
        q = torch.zeros(4)
        q[0], q[1 + axis] = math.cos(half), math.sin(half)
        out = quat_multiply(q, out)
    return out


def transform_delta(
    g: BoundGaussians, frames: TriangleFrames, weights: Tensor, params: AdjustParams
) -> dict[str, Tensor]:
    """xyz [M, 3], rotation [M, 4], log_scale [M, 3] deltas of the rows g (M Gaussians) with weights [M].

    At the reference pose every Gaussian moves by p' − p = w·offset + (s^w·Rot_w − I)(p − c), c the
    weighted centroid, Rot_w the rotation with its angle scaled by w; in its triangle's frame that
    is Rᵀ(p' − p)/k, and its orientation becomes q(R)⁻¹ ⊗ q_w ⊗ q(R) ⊗ q'.
    """
    rot, cen, k = frames.rot[g.binding], frames.centroid[g.binding], frames.scale[g.binding]
    world = k[:, None] * (rot @ g.xyz[:, :, None])[:, :, 0] + cen  # [M, 3]
    pivot = cs.weighted_mean(world, weights)
    move = weights[:, None] * torch.tensor(params.offset, dtype=world.dtype, device=world.device)
    out: dict[str, Tensor] = {}
    q_full = _euler_quat(params.rotation)
    half = math.acos(max(-1.0, min(1.0, float(q_full[0]))))
    if half > 0.0:
        axis = (q_full[1:] / q_full[1:].norm()).to(world)
        q_w = torch.cat([torch.cos(half * weights)[:, None], torch.sin(half * weights)[:, None] * axis], 1)  # [M, 4]
        rel = world - pivot
        s_w = torch.pow(params.scale, weights)[:, None]
        move = move + s_w * (quat_to_matrix(q_w) @ rel[:, :, None])[:, :, 0] - rel
        q_tri = quat_from_matrix(rot)
        q_tri_inv = q_tri * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=q_tri.dtype, device=q_tri.device)
        new_rot = quat_multiply(q_tri_inv, quat_multiply(q_w, quat_multiply(q_tri, g.rotation)))
        out["rotation"] = new_rot - g.rotation
    elif params.scale != 1.0:
        move = move + (torch.pow(params.scale, weights)[:, None] - 1.0) * (world - pivot)
    if params.scale != 1.0:
        out["log_scale"] = (weights * math.log(params.scale))[:, None].expand(-1, 3).clone()
    if bool(move.any()):
        out["xyz"] = (rot.transpose(1, 2) @ move[:, :, None])[:, :, 0] / k[:, None]
    return out


def row_deltas(
    g: BoundGaussians, weights: Tensor, params: AdjustParams, frames: TriangleFrames | None = None
) -> dict[str, Tensor]:
    """Non-zero deltas {field: [M, ...]} of one adjustment on the rows g (M Gaussians, weights [M])."""
    assert weights.shape == (g.count,), f"weights must be [M] = [{g.count}], got {tuple(weights.shape)}"
    out: dict[str, Tensor] = {}
    if params.changes_colour:
        dc, factor = colour_delta(g.sh, weights, params)
        sh = torch.zeros_like(g.sh)
        sh[:, 0] = dc
        if factor is not None:
            sh[:, 1:] = g.sh[:, 1:] * (factor - 1.0)[:, None, None]
        out["sh"] = sh
    if params.changes_opacity:
        out["opacity_logit"] = opacity_delta(g.opacity_logit, weights, params.opacity)
    if params.changes_geometry:
        if frames is None:
            raise ValueError("a move/rotate/scale adjustment needs the avatar's triangle frames (reference_frames)")
        out.update(transform_delta(g, frames, weights, params))
    return {k: v for k, v in out.items() if bool(v.any())}


def adjust_layer(
    gaussians: BoundGaussians,
    selection: Tensor,
    params: AdjustParams,
    frames: TriangleFrames | None = None,
    name: str | None = None,
    info: dict[str, Any] | None = None,
) -> EditLayer:
    """The "adjust" EditLayer of params applied to the selected Gaussians.

    gaussians: the avatar's Gaussians as they currently look (base with earlier layers' deltas,
    see `apply_deltas`), indexed like the base. selection: bool [N] or weights [N]. frames:
    needed for a transform. Unselected Gaussians are never touched.
    """
    weights = selection_weights(selection, gaussians.count)
    idx = torch.nonzero(weights > 0).squeeze(1)
    w = weights[idx]
    deltas = row_deltas(gaussians.subset(idx), w, params, frames) if not params.is_identity else {}
    hidden = idx[w >= 0.5] if params.hide else idx[:0]
    layer_info = {"operation": "adjust", "params": params.to_dict(), "selected": int(idx.numel())}
    layer_info.update(info or {})
    return EditLayer(name=name or params.describe(), kind="adjust", indices=idx if deltas else idx[:0],
                     deltas=deltas, hidden=hidden, info=layer_info)


def apply_deltas(base: BoundGaussians, layers: list[EditLayer]) -> BoundGaussians:
    """Base [N] with the enabled layers' deltas added in order (no hides, no additions: same indexing)."""
    active = [layer for layer in layers if layer.enabled and layer.deltas]
    if not active:
        return base
    values = {name: getattr(base, name).clone() for name in DELTA_FIELDS}
    for layer in active:
        for name, delta in layer.deltas.items():
            values[name].index_add_(0, layer.indices, delta.to(values[name].dtype))
    return base.replace(**values)


def _kept_rows(base_count: int, layers: list[EditLayer], device: torch.device) -> Tensor:
    """[N_base] row of each base Gaussian in compose(base, layers), −1 where a layer hides it."""
    keep = torch.ones(base_count, dtype=torch.bool, device=device)
    for layer in layers:
        if layer.enabled:
            keep[layer.hidden] = False
    rows = torch.cumsum(keep.long(), 0) - 1
    return torch.where(keep, rows, torch.full_like(rows, -1))


@dataclass
class AdjustPreview:
    """Live preview of one adjustment on top of existing layers, for slider drags.

    Composes the avatar once, then each `update(params)` rewrites only the selected rows of that
    cached copy in place (the SH DC column only, unless the selected Gaussians have non-zero higher
    bands) and returns it; hide sets the rows' opacity to ~0 instead of removing them. The result
    equals compose(base, layers + [layer(params)]) up to the hidden rows. `layer(params)` gives
    the layer to commit. The returned BoundGaussians is the same object every time (mutated in
    place), as are its tensors: renderers keyed on tensor versions see the change.
    """

    base: BoundGaussians  # the avatar's untouched Gaussians [N]
    layers: list[EditLayer]  # the layers already applied, in order
    selection: Tensor  # [N] bool or float weights
    frames: TriangleFrames | None = None  # reference-pose triangle frames (needed for transforms)
    gaussians: BoundGaussians = field(init=False)  # the cached composition, updated in place
    needs_deform: bool = field(init=False, default=False)  # True when the last update moved Gaussians

    def __post_init__(self) -> None:
        self._source = apply_deltas(self.base, self.layers)
        composed = compose(self.base, self.layers)
        self.gaussians = composed.replace(**{k: getattr(composed, k).clone() for k in DELTA_FIELDS})
        weights = selection_weights(self.selection, self.base.count)
        rows = _kept_rows(self.base.count, self.layers, self.base.binding.device)
        self._idx = torch.nonzero((weights > 0) & (rows >= 0)).squeeze(1)  # [M] base indices
        self._rows = rows[self._idx]  # [M] rows in self.gaussians
        self._w = weights[self._idx]
        self._src = self._source.subset(self._idx)
        self._rest = self._src.sh.shape[1] > 1 and bool(self._src.sh[:, 1:].any())
        self._dirty: set[str] = set()

    def update(self, params: AdjustParams) -> BoundGaussians:
        """The composition with params applied to the selection (same object each call)."""
        g, rows, src = self.gaussians, self._rows, self._src
        deltas = row_deltas(src, self._w, params, self.frames) if not params.is_identity else {}
        for name in self._dirty - set(deltas) - {"sh"}:  # restore fields the previous update changed
            getattr(g, name)[rows] = getattr(src, name)
        if "sh" in self._dirty or "sh" in deltas:
            if self._rest:
                g.sh[rows] = src.sh + deltas["sh"] if "sh" in deltas else src.sh
            else:
                g.sh[rows, 0] = src.sh[:, 0] + deltas["sh"][:, 0] if "sh" in deltas else src.sh[:, 0]
        for name in set(deltas) - {"sh"}:
            getattr(g, name)[rows] = getattr(src, name) + deltas[name]
        if params.hide:
            g.opacity_logit[rows[self._w >= 0.5]] = HIDDEN_LOGIT
        self.needs_deform = bool({"xyz", "rotation", "log_scale"} & (set(deltas) | self._dirty))
        self._dirty = set(deltas) | ({"opacity_logit"} if params.hide else set())
        return g

    def layer(self, params: AdjustParams, name: str | None = None, info: dict[str, Any] | None = None) -> EditLayer:
        """The layer to commit for params (computed exactly as `adjust_layer` on the current look)."""
        return adjust_layer(self._source, self.selection, params, self.frames, name, info)
