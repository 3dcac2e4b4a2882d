"""Mask lifting: per-Gaussian alpha-weighted contributions to the pixels of a 2D mask.

Front-to-back compositing gives pixel p the colour Σ_i T_i(p)·α_i(p)·c_i. Rendering a per-Gaussian
feature of ones and differentiating Σ_p m(p)·F(p) with respect to that feature yields, per Gaussian,
w_i = Σ_p m(p)·T_i(p)·α_i(p): its contribution inside the (soft) mask m. Occlusion is exact: a
Gaussian hidden behind others has T_i ≈ 0 and gets no weight. C masks are lifted by one render with
C feature channels and one backward pass.

A lifted selection weight is inside / (inside + outside): the share of a Gaussian's visible
contribution that falls inside the mask. Gaussians the view does not see (total ≈ 0) get weight 0
and are reported by `seen`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from engine.render.camera import Camera
from engine.render.rasterize import render
from engine.render.splats import Splats

SEEN_EPS = 1e-3  # total contribution (in pixels of full opacity) below which a Gaussian counts as unseen


def _detached(splats: Splats) -> Splats:
    return replace(
        splats,
        means=splats.means.detach(),
        quats=splats.quats.detach(),
        scales=splats.scales.detach(),
        opacities=splats.opacities.detach(),
        sh=splats.sh[:, :1].detach(),  # colour is irrelevant here: degree 0 keeps the render cheap
    )


def contributions(
    splats: Splats,
    camera: Camera,
    weight_maps: Tensor,  # [H, W, C] per-pixel weights (a soft mask, or one-hot labels)
    backend: str = "auto",
) -> Tensor:
    """[N, C] Σ_p weight_maps[p, c]·T_i(p)·α_i(p) for every Gaussian i (occlusion-aware)."""
    h, w = camera.height, camera.width
    assert weight_maps.ndim == 3 and weight_maps.shape[:2] == (h, w), (
        f"weight_maps must be [H, W, C] = [{h}, {w}, C], got {tuple(weight_maps.shape)}"
    )
    device = splats.means.device
    feats = torch.ones(splats.count, weight_maps.shape[2], device=device, dtype=splats.means.dtype, requires_grad=True)
    with torch.enable_grad():
        result = render(_detached(splats), camera, (0.0, 0.0, 0.0), features=feats, backend=backend)
        assert result.features is not None
        (result.features * weight_maps.to(result.features)).sum().backward()
    assert feats.grad is not None
    return feats.grad.detach()


@dataclass(frozen=True)
class LiftedMask:
    """A 2D mask lifted onto Gaussians."""

    inside: Tensor  # [N] Σ over pixels in the mask of T·α (soft masks weight each pixel)
    outside: Tensor  # [N] Σ over pixels outside the mask of T·α

    @property
    def total(self) -> Tensor:
        """[N] total visible contribution of each Gaussian in this view."""
        return self.inside + self.outside

    @property
    def seen(self) -> Tensor:
        """[N] bool: the view sees this Gaussian."""
        return self.total > SEEN_EPS

    @property
    def weights(self) -> Tensor:
        """[N] inside / (inside + outside) in [0, 1]; 0 for unseen Gaussians."""
        total = self.total
        return torch.where(self.seen, self.inside / total.clamp(min=SEEN_EPS), torch.zeros_like(total))


def lift_mask(
    splats: Splats,
    camera: Camera,
    mask: Tensor,  # [H, W] float in [0, 1] (or bool) painted on the view seen by camera
    backend: str = "auto",
) -> LiftedMask:
    """Lift a 2D mask onto the Gaussians by their contribution inside versus outside it."""
    assert mask.shape == (camera.height, camera.width), (
        f"mask must be [H, W] = [{camera.height}, {camera.width}], got {tuple(mask.shape)}"
    )
    m = mask.to(torch.float32).clamp(0.0, 1.0)
    both = contributions(splats, camera, torch.stack([m, 1.0 - m], dim=-1), backend)
    return LiftedMask(inside=both[:, 0], outside=both[:, 1])


def lift_masks(
    views: list[tuple[Splats, Camera, Tensor]],  # (splats at that frame, camera, mask [H, W])
    backend: str = "auto",
) -> LiftedMask:
    """Lift masks painted on several views at once: contributions add up over the views."""
    assert views, "lift_masks needs at least one view"
    parts = [lift_mask(s, c, m, backend) for s, c, m in views]
    return LiftedMask(inside=sum(p.inside for p in parts), outside=sum(p.outside for p in parts))  # type: ignore[arg-type]
