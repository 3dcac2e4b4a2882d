"""Edit layers: every change to an avatar (direct adjustment, diffusion edit, expression offset) is a
layer over the untouched base Gaussians, so layers can be toggled, deleted, reordered and saved.

A layer holds additive deltas on the raw parameters of some base Gaussians (by index), Gaussians it
hides, Gaussians it adds (bound to triangles like any other), and an optional pose offset: expression
coefficients and a jaw rotation ('jaw_open' is a jaw pose on every head, not a coefficient) added to
every frame. Composition applies enabled layers in order: deltas add, hides remove, adds append.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from engine.avatar.gaussians import BoundGaussians
from engine.avatar.posing import JAW_OPEN
from engine.head.model import POSE_EXPRESSIONS, HeadModel
from engine.head.params import FlameParams

DELTA_FIELDS: tuple[str, ...] = ("xyz", "rotation", "log_scale", "opacity_logit", "sh")
"""BoundGaussians fields a layer may change additively."""

LAYER_KINDS: tuple[str, ...] = ("adjust", "edit", "expression")


@dataclass(frozen=True)
class EditLayer:
    """One change to an avatar."""

    name: str  # shown in the layer list, e.g. "tint lips"
    kind: str  # one of LAYER_KINDS
    indices: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))  # [M] base Gaussians changed
    deltas: dict[str, Tensor] = field(default_factory=dict)  # field -> [M, ...] additive delta on the raw value
    hidden: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))  # [R] base Gaussians removed
    added: BoundGaussians | None = None  # new Gaussians appended after the base ones
    expr_offset: Tensor | None = None  # [E] expression offset added to every frame
    jaw_offset: Tensor | None = None  # [3] jaw axis-angle (radians) added to every frame ('jaw_open')
    enabled: bool = True
    info: dict[str, Any] = field(default_factory=dict)  # JSON-able description: operation, prompt, plan, ...
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"unknown layer kind {self.kind!r}")
        m = self.indices.shape[0]
        for key, value in self.deltas.items():
            if key not in DELTA_FIELDS:
                raise ValueError(f"layer {self.name!r}: cannot change field {key!r}")
            assert value.shape[0] == m, f"delta {key} has {value.shape[0]} rows, indices has {m}"
        if self.expr_offset is not None:
            assert self.expr_offset.ndim == 1, f"expr_offset must be [E], got {tuple(self.expr_offset.shape)}"
        if self.jaw_offset is not None:
            assert self.jaw_offset.shape == (3,), f"jaw_offset must be [3], got {tuple(self.jaw_offset.shape)}"

    def toggled(self, enabled: bool) -> "EditLayer":
        return replace(self, enabled=enabled)

    def without(self, region: Tensor) -> "EditLayer":
        """This layer with no effect on the base Gaussians in region (bool [N_base]): revert a region."""
        keep = ~region[self.indices]
        hidden_keep = ~region[self.hidden]
        return replace(
            self,
            indices=self.indices[keep],
            deltas={k: v[keep] for k, v in self.deltas.items()},
            hidden=self.hidden[hidden_keep],
        )

    @property
    def touched(self) -> Tensor:
        """[K] sorted unique base indices this layer changes or hides."""
        return torch.unique(torch.cat([self.indices, self.hidden]))


def _kept(count: int, active: list[EditLayer], device: torch.device) -> Tensor:
    """[count] bool: the base Gaussians no active layer hides."""
    keep = torch.ones(count, dtype=torch.bool, device=device)
    for layer in active:
        keep[layer.hidden.to(device)] = False
    return keep


def _added(active: list[EditLayer]) -> list[BoundGaussians]:
    return [layer.added for layer in active if layer.added is not None and layer.added.count]


def compose(base: BoundGaussians, layers: list[EditLayer]) -> BoundGaussians:
    """The Gaussians with every enabled layer applied, in order. Base is not modified."""
    active = [layer for layer in layers if layer.enabled]
    if not active:
        return base
    values = {name: getattr(base, name).clone() for name in DELTA_FIELDS}
    for layer in active:
        for name, delta in layer.deltas.items():
            values[name].index_add_(0, layer.indices, delta.to(values[name].dtype))
    result = base.replace(**values).subset(_kept(base.count, active, base.binding.device))
    extras = _added(active)
    return BoundGaussians.concat([result, *extras]) if extras else result


def composed_origin(base_count: int, layers: list[EditLayer]) -> Tensor:
    """[M] long: for each Gaussian of compose(base, layers), the base Gaussian it is (-1 for added ones)."""
    active = [layer for layer in layers if layer.enabled]
    kept = torch.nonzero(_kept(base_count, active, torch.device("cpu")))[:, 0]
    added = sum(g.count for g in _added(active))
    return torch.cat([kept, torch.full((added,), -1, dtype=torch.long)])


@dataclass(frozen=True)
class PoseOffset:
    """What the enabled layers add to every frame's FLAME parameters."""

    expr: Tensor | None = None  # [E] expression coefficients
    jaw: Tensor | None = None  # [3] jaw axis-angle, radians

    def apply(self, params: FlameParams) -> FlameParams:
        """params [T frames] with the offset added to every frame."""
        values: dict[str, Tensor] = {}
        if self.expr is not None:
            expr = params.expr.clone()
            width = min(expr.shape[1], self.expr.shape[0])
            expr[:, :width] += self.expr[:width].to(expr)
            values["expr"] = expr
        if self.jaw is not None:
            values["jaw_pose"] = params.jaw_pose + self.jaw.to(params.jaw_pose)[None]
        return params.with_values(**values) if values else params


def pose_offset(layers: list[EditLayer] | tuple[EditLayer, ...], n_expr: int) -> PoseOffset | None:
    """The summed expression and jaw offsets of the enabled layers, or None when no layer has one."""
    expr = expression_offset(list(layers), n_expr)
    jaws = [layer.jaw_offset for layer in layers if layer.enabled and layer.jaw_offset is not None]
    jaw = torch.stack([j.float().cpu() for j in jaws]).sum(0) if jaws else None
    return None if expr is None and jaw is None else PoseOffset(expr, jaw)


def expression_layer_of(head: HeadModel, weights: Mapping[str, float], name: str,
                        info: dict[str, Any] | None = None) -> EditLayer:
    """An expression layer from named weights ({"smile": 0.8, "jaw_open": 0.5}): named expressions and
    expr_<i> become expression coefficients, pose words ('jaw_open': JAW_OPEN radians per unit) a jaw
    rotation. Raises ValueError naming an unknown expression."""
    named = {k: float(v) for k, v in weights.items() if k not in POSE_EXPRESSIONS}
    jaw_open = float(weights.get("jaw_open", 0.0))
    expr = head.expr_vector(**named) if named else None
    jaw = torch.tensor([JAW_OPEN * jaw_open, 0.0, 0.0]) if jaw_open else None
    return EditLayer(name=name, kind="expression", expr_offset=expr, jaw_offset=jaw, info=dict(info or {}))


def expression_offset(layers: list[EditLayer], n_expr: int) -> Tensor | None:
    """[E] sum of the enabled layers' expression offsets, or None when there is none."""
    offsets = [layer.expr_offset for layer in layers if layer.enabled and layer.expr_offset is not None]
    if not offsets:
        return None
    total = torch.zeros(n_expr)
    for offset in offsets:
        total[: offset.shape[0]] += offset[:n_expr]
    return total
