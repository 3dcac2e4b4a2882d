"""Edit layers: every change to an avatar (direct adjustment, diffusion edit, expression offset) is a
layer over the untouched base Gaussians, so layers can be toggled, deleted, reordered and saved.

A layer holds additive deltas on the raw parameters of some base Gaussians (by index), Gaussians it
hides, Gaussians it adds (bound to triangles like any other), and an optional expression offset.
Composition applies enabled layers in order: deltas add, hides remove, adds append.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from engine.avatar.gaussians import BoundGaussians

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


def expression_offset(layers: list[EditLayer], n_expr: int) -> Tensor | None:
    """[E] sum of the enabled layers' expression offsets, or None when there is none."""
    offsets = [layer.expr_offset for layer in layers if layer.enabled and layer.expr_offset is not None]
    if not offsets:
        return None
    total = torch.zeros(n_expr)
    for offset in offsets:
        total[: offset.shape[0]] += offset[:n_expr]
    return total
