"""An animatable avatar: a head model, Gaussians bound to its triangles, and a FLAME sequence."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from engine.avatar.gaussians import BoundGaussians
from engine.head.match import binding_mismatch
from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.render.splats import Splats


@dataclass
class Avatar:
    """A head avatar. `params` is its own FLAME sequence (T ≥ 1 frames, shape and static offset shared)."""

    head: HeadModel
    gaussians: BoundGaussians
    params: FlameParams
    name: str = "avatar"
    iteration: int | None = None  # the GaussianAvatars training iteration it was read from (None: not from a run)
    dataset: str | None = None  # the dataset folder it was trained on (absolute path), when known

    def __post_init__(self) -> None:
        if self.gaussians.count and int(self.gaussians.binding.max()) >= self.head.n_faces:
            raise ValueError(f"avatar {self.name!r}: {binding_mismatch(self.head, int(self.gaussians.binding.max()))}")

    def frame_params(self, frame: int = 0) -> FlameParams:
        """The avatar's own parameters at one frame of its sequence."""
        return self.params.frame(frame % self.params.frames)

    def posed_vertices(self, params: FlameParams | None = None) -> Tensor:
        """Mesh vertices [V, 3] for one frame of params (default: the first frame of the avatar's sequence).

        The avatar's identity (shape, static offset) is used wherever params leaves them empty.
        """
        p = self.frame_params(0) if params is None else params
        if p.static_offset is None and self.params.static_offset is not None:
            p = p.with_values(static_offset=self.params.static_offset)
        return self.head(p)[0]

    def splats(self, params: FlameParams | None = None) -> Splats:
        """World-space Gaussians for one frame of params."""
        return self.gaussians.deform(self.posed_vertices(params), self.head.faces)

    def params_with(self, frame: int = 0, **named_expr: float) -> FlameParams:
        """The avatar's parameters at a frame with some named expressions added to its own."""
        p = self.frame_params(frame)
        return p.with_values(expr=p.expr + self.head.expr_vector(**named_expr).to(p.expr)[None])

    def to(self, device: torch.device | str) -> "Avatar":
        """A copy on another device (the head is copied: heads are shared between avatars and cached)."""
        head = self.head if self.head.v_template.device == torch.device(device) else copy.deepcopy(self.head).to(device)
        return replace(self, head=head, gaussians=self.gaussians.to(device), params=self.params.to(device))
