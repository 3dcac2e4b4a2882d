"""World-space Gaussians, the input of every rasterizer backend."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


SH_C0 = 0.28209479177387814
"""Y_0^0: a DC coefficient c renders as colour 0.5 + SH_C0·c (3DGS convention)."""


def rgb_to_dc(rgb: Tensor) -> Tensor:
    """SH DC coefficients [..., 3] that render as colour rgb [..., 3]."""
    return (rgb - 0.5) / SH_C0


def dc_to_rgb(dc: Tensor) -> Tensor:
    """Colour [..., 3] of SH DC coefficients [..., 3] (not clamped)."""
    return 0.5 + SH_C0 * dc


@dataclass(frozen=True)
class Splats:
    """N Gaussians in world space, already activated.

    Colour is view-dependent through real spherical harmonics in the 3DGS convention
    (rgb = 0.5 + Σ_k c_k·Y_k(view dir), clamped at 0), view dir = normalize(mean − camera centre).
    """

    means: Tensor  # [N, 3] world positions
    quats: Tensor  # [N, 4] rotations, (w, x, y, z); need not be normalised
    scales: Tensor  # [N, 3] standard deviations along the local axes, > 0
    opacities: Tensor  # [N] in (0, 1)
    sh: Tensor  # [N, K, 3] SH coefficients, K = (degree + 1)^2, K in {1, 4, 9, 16}

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        assert self.means.shape == (n, 3), f"means must be [N, 3], got {tuple(self.means.shape)}"
        assert self.quats.shape == (n, 4), f"quats must be [N, 4], got {tuple(self.quats.shape)}"
        assert self.scales.shape == (n, 3), f"scales must be [N, 3], got {tuple(self.scales.shape)}"
        assert self.opacities.shape == (n,), f"opacities must be [N], got {tuple(self.opacities.shape)}"
        assert self.sh.ndim == 3 and self.sh.shape[0] == n and self.sh.shape[2] == 3, (
            f"sh must be [N, K, 3], got {tuple(self.sh.shape)}"
        )
        assert self.sh.shape[1] in (1, 4, 9, 16), f"sh must have 1, 4, 9 or 16 coefficients, got {self.sh.shape[1]}"

    @property
    def count(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        return {1: 0, 4: 1, 9: 2, 16: 3}[int(self.sh.shape[1])]

    def subset(self, index: Tensor) -> "Splats":
        """The Gaussians picked by a boolean mask [N] or an index tensor [M]."""
        return Splats(self.means[index], self.quats[index], self.scales[index], self.opacities[index], self.sh[index])

    @staticmethod
    def concat(parts: list["Splats"]) -> "Splats":
        """All Gaussians of several sets, in order (SH padded with zeros to the highest degree)."""
        k = max(p.sh.shape[1] for p in parts)
        shs = [torch.nn.functional.pad(p.sh, (0, 0, 0, k - p.sh.shape[1])) for p in parts]
        return Splats(
            torch.cat([p.means for p in parts]),
            torch.cat([p.quats for p in parts]),
            torch.cat([p.scales for p in parts]),
            torch.cat([p.opacities for p in parts]),
            torch.cat(shs),
        )
