"""Gaussians bound to mesh triangles, stored in their triangles' local frames."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from engine.avatar.binding import local_to_world, triangle_frames
from engine.render.splats import Splats


@dataclass(frozen=True)
class BoundGaussians:
    """N Gaussians, each bound to one triangle; raw (unactivated) parameters in triangle-local space."""

    binding: Tensor  # [N] long, index of the triangle each Gaussian is bound to
    xyz: Tensor  # [N, 3] position in the triangle's frame, in units of the triangle's scale
    rotation: Tensor  # [N, 4] local rotation quaternion (w, x, y, z), unnormalised
    log_scale: Tensor  # [N, 3] log of the local scale
    opacity_logit: Tensor  # [N] logit of the opacity
    sh: Tensor  # [N, K, 3] SH colour coefficients (K = 16 for degree 3)
    labels: Tensor  # [N] long facial-component label (engine.head.components)

    def __post_init__(self) -> None:
        n = self.binding.shape[0]
        for f in fields(self):
            value = getattr(self, f.name)
            assert value.shape[0] == n, f"{f.name} has {value.shape[0]} rows, binding has {n}"
        assert self.xyz.shape == (n, 3), f"xyz must be [N, 3], got {tuple(self.xyz.shape)}"
        assert self.rotation.shape == (n, 4), f"rotation must be [N, 4], got {tuple(self.rotation.shape)}"
        assert self.log_scale.shape == (n, 3), f"log_scale must be [N, 3], got {tuple(self.log_scale.shape)}"
        assert self.opacity_logit.shape == (n,), f"opacity_logit must be [N], got {tuple(self.opacity_logit.shape)}"
        assert self.sh.ndim == 3 and self.sh.shape[2] == 3, f"sh must be [N, K, 3], got {tuple(self.sh.shape)}"

    @property
    def count(self) -> int:
        return int(self.binding.shape[0])

    def subset(self, index: Tensor) -> "BoundGaussians":
        """The Gaussians picked by a boolean mask [N] or index tensor [M]."""
        return BoundGaussians(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def replace(self, **changes: Tensor) -> "BoundGaussians":
        return replace(self, **changes)

    def detach_clone(self) -> "BoundGaussians":
        return BoundGaussians(**{f.name: getattr(self, f.name).detach().clone() for f in fields(self)})

    def to(self, device: torch.device | str) -> "BoundGaussians":
        return BoundGaussians(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def equal(self, other: "BoundGaussians") -> bool:
        """True when every parameter is bit-identical."""
        return all(torch.equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))

    @staticmethod
    def concat(parts: list["BoundGaussians"]) -> "BoundGaussians":
        return BoundGaussians(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(BoundGaussians)})

    def deform(self, verts: Tensor, faces: Tensor) -> Splats:
        """World-space Gaussians on a posed mesh: verts [V, 3], faces [F, 3] -> Splats of N."""
        assert verts.ndim == 2 and verts.shape[1] == 3, f"verts must be [V, 3], got {tuple(verts.shape)}"
        rot, centroid, tri_scale = triangle_frames(verts, faces)
        means, quats, scales = local_to_world(
            self.binding, self.xyz, self.rotation, torch.exp(self.log_scale), rot, centroid, tri_scale
        )
        return Splats(means, quats, scales, torch.sigmoid(self.opacity_logit), self.sh)
