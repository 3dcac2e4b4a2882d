"""Mask lifting: per-Gaussian alpha-weighted contributions to the pixels of a 2D mask.

Front-to-back compositing gives pixel p the colour Σ_i T_i(p)·α_i(p)·c_i. Rendering a per-Gaussian
feature of ones and differentiating Σ_p m(p)·F(p) with respect to that feature yields, per Gaussian,
w_i = Σ_p m(p)·T_i(p)·α_i(p): its contribution inside the (soft) mask m. Occlusion is exact: a
Gaussian hidden behind others has T_i ≈ 0 and gets no weight. C masks are lifted by one render with
C feature channels and one backward pass.

A lifted selection weight is inside / (inside + outside): the share of a Gaussian's visible
contribution that falls inside the mask. Gaussians the view barely sees (total below SEEN_SHARE of
its pixels) get weight 0 and are reported by `seen`; `fill_unseen` gives them the weight of the
nearest seen Gaussian in the rest pose, of the same component when labels are given (a mask painted
on one view then also covers the parts of the same region it hides).

Pixels within `edge_px` of the rendered silhouette do not vote: there the Gaussians' footprints
overhang the surface they sample (the splat silhouette is a pixel or two wider than the surface),
so a painted edge that stops at the surface's outline would otherwise vote the Gaussians along
the outline out of the mask, and a mask painted over the outline would vote them in, both for
reasons that have nothing to do with which part they belong to.

`fit_to_view` then refines the votes by least squares, so the selection rendered at the painted
view reproduces the painted mask along thin parts' outlines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.avatar.fill import FILL_REACH, fill_unseen  # noqa: F401 - re-exported: part of this module's interface
from engine.render.camera import Camera
from engine.render.rasterize import render
from engine.render.splats import Splats

SEEN_SHARE = 3e-6  # contribution, as a share of the view's pixels, from which a Gaussian counts as seen (below: a
# glimpse whose votes are noise): 0.05 px of full opacity at 128², 0.8 px at 512²
EDGE_PX = 2  # pixels next to the rendered silhouette that do not vote (see the module docstring)
SOLID_ALPHA = 0.5  # rendered alpha at which a pixel counts as inside the silhouette
FIT_STEPS = 40  # Adam steps of fit_to_view (about 7 s at 256², 10 s at 512² on 2 CPU cores)
FIT_LR = 0.1  # fit_to_view's learning rate on the weights' logits
FIT_CLAMP = 0.02  # voted weights start the fit clamped into [FIT_CLAMP, 1 - FIT_CLAMP] (finite logits)


def _detached(splats: Splats) -> Splats:
    return replace(
        splats,
        means=splats.means.detach(),
        quats=splats.quats.detach(),
        scales=splats.scales.detach(),
        opacities=splats.opacities.detach(),
        sh=splats.sh[:, :1].detach(),  # colour is irrelevant here: degree 0 keeps the render cheap
    )


def interior(alpha: Tensor, edge_px: int = EDGE_PX) -> Tensor:
    """[H, W] float 1 where the rendered alpha [H, W] is solid and at least edge_px pixels from its outline."""
    solid = (alpha >= SOLID_ALPHA).float()
    if edge_px <= 0:
        return solid
    k = 2 * edge_px + 1
    return 1.0 - F.max_pool2d((1.0 - solid)[None, None], k, stride=1, padding=edge_px)[0, 0]


def contributions(
    splats: Splats,
    camera: Camera,
    weight_maps: Tensor,  # [H, W, C] per-pixel weights (a soft mask, or one-hot labels)
    backend: str = "auto",
    edge_px: int | None = None,
) -> Tensor:
    """[N, C] Σ_p weight_maps[p, c]·T_i(p)·α_i(p) for every Gaussian i (occlusion-aware).

    edge_px: when given, pixels outside `interior(alpha, edge_px)` of this very render get weight 0.
    """
    h, w = camera.height, camera.width
    assert weight_maps.ndim == 3 and weight_maps.shape[:2] == (h, w), (
        f"weight_maps must be [H, W, C] = [{h}, {w}, C], got {tuple(weight_maps.shape)}"
    )
    device = splats.means.device
    feats = torch.ones(splats.count, weight_maps.shape[2], device=device, dtype=splats.means.dtype, requires_grad=True)
    with torch.enable_grad():
        result = render(_detached(splats), camera, (0.0, 0.0, 0.0), features=feats, backend=backend)
        assert result.features is not None
        maps = weight_maps.to(result.features)
        if edge_px is not None:
            maps = maps * interior(result.alpha.detach(), edge_px)[..., None]
        (result.features * maps).sum().backward()
    assert feats.grad is not None
    return feats.grad.detach()


@dataclass(frozen=True)
class LiftedMask:
    """A 2D mask lifted onto Gaussians."""

    inside: Tensor  # [N] (or [N, S] for S masks) Σ over voting pixels in the mask of T·α (soft masks weight each pixel)
    outside: Tensor  # [N] (or [N, S]) Σ over voting pixels outside the mask of T·α
    level: float  # total (in pixels) from which a Gaussian counts as seen: SEEN_SHARE of the view's pixels

    @property
    def total(self) -> Tensor:
        """[N] (or [N, S]) total voting contribution of each Gaussian in this view."""
        return self.inside + self.outside

    @property
    def seen(self) -> Tensor:
        """[N] (or [N, S]) bool: the view's voting pixels see enough of this Gaussian to trust its weight."""
        return self.total > self.level

    @property
    def weights(self) -> Tensor:
        """[N] (or [N, S]) inside / (inside + outside) in [0, 1]; 0 for unseen Gaussians."""
        total = self.total
        return torch.where(self.seen, self.inside / total.clamp(min=self.level), torch.zeros_like(total))


def lift_mask(
    splats: Splats,
    camera: Camera,
    mask: Tensor,  # [H, W] float in [0, 1] (or bool) painted on the view seen by camera
    backend: str = "auto",
    edge_px: int = EDGE_PX,
) -> LiftedMask:
    """Lift a 2D mask onto the Gaussians by their contribution inside versus outside it."""
    assert mask.shape == (camera.height, camera.width), (
        f"mask must be [H, W] = [{camera.height}, {camera.width}], got {tuple(mask.shape)}"
    )
    lifted = lift_many(splats, camera, mask[None], backend, edge_px)
    return LiftedMask(inside=lifted.inside[:, 0], outside=lifted.outside[:, 0], level=lifted.level)


def lift_many(
    splats: Splats,
    camera: Camera,
    masks: Tensor,  # [S, H, W] float in [0, 1] (or bool), all painted on the view seen by camera
    backend: str = "auto",
    edge_px: int = EDGE_PX,
) -> LiftedMask:
    """Lift S masks of one view with one render: inside / outside are [N, S]."""
    assert masks.ndim == 3 and masks.shape[1:] == (camera.height, camera.width), (
        f"masks must be [S, H, W] with H, W = {camera.height}, {camera.width}, got {tuple(masks.shape)}"
    )
    m = masks.to(torch.float32).clamp(0.0, 1.0).permute(1, 2, 0)  # [H, W, S]
    both = contributions(splats, camera, torch.cat([m, torch.ones_like(m[..., :1])], dim=-1), backend, edge_px)
    inside = both[:, :-1]
    return LiftedMask(inside=inside, outside=(both[:, -1:] - inside).clamp(min=0.0),
                      level=SEEN_SHARE * camera.height * camera.width)


@dataclass(frozen=True)
class MaskView:
    """Masks as they should look at one view: the avatar posed there, the camera, the masks."""

    splats: Splats
    camera: Camera
    masks: Tensor  # [S, H, W] float in [0, 1] (or bool), H, W = the camera's size


def fit_to_view(
    splats: Splats,
    camera: Camera,
    masks: Tensor,  # [S, H, W] float in [0, 1] (or bool): the masks the weights were lifted from
    weights: Tensor,  # [N, S] lifted (and filled) weights in [0, 1]
    free: Tensor,  # [N] or [N, S] bool: weights the fit may change (the Gaussians this view sees)
    steps: int = FIT_STEPS,
    backend: str = "auto",
    edge_px: int = EDGE_PX,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Tensor:
    """[N, S] weights whose rendered coverage at this view reproduces the masks (least squares).

    Votes decide each Gaussian alone; where footprints overlap along a thin part's outline they
    render a mask a pixel wider or narrower than the painted one. The fit moves the free weights
    (Adam on their logits, from the voted values) to minimise Σ_p (Σ_i T_i·α_i·w_i − m_p)² over the
    voting pixels (the silhouette's edge excluded, as for the votes), so the selection drawn at the
    painted view is the painted mask, and other views inherit the corrected boundary.
    progress(fraction, text) is told after each step; when cancel() turns true the fit stops and
    returns the weights it has reached.
    """
    return fit_to_views([MaskView(splats, camera, masks)], weights, free, steps, backend, edge_px, progress, cancel)


def fit_to_views(
    views: Sequence[MaskView],
    weights: Tensor,  # [N, S] starting weights in [0, 1]
    free: Tensor,  # [N] or [N, S] bool: weights the fit may change (Gaussians the views see)
    steps: int = FIT_STEPS,
    backend: str = "auto",
    edge_px: int = EDGE_PX,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Tensor:
    """[N, S] weights whose rendered coverage reproduces the masks at every view (fit_to_view's least
    squares summed over the views, one Adam step per pass over all of them)."""
    assert views, "fit_to_views needs at least one view"
    for v in views:
        assert v.masks.ndim == 3 and v.masks.shape == (weights.shape[1], v.camera.height, v.camera.width), (
            f"masks must be [S, H, W] = [{weights.shape[1]}, {v.camera.height}, {v.camera.width}], got {tuple(v.masks.shape)}"
        )
        assert weights.shape[0] == v.splats.count, f"weights must be [N={v.splats.count}, S], got {tuple(weights.shape)}"
    free = (free[:, None] if free.ndim == 1 else free).expand_as(weights)
    if steps <= 0 or not bool(free.any()):
        return weights
    still = [_detached(v.splats) for v in views]
    targets = [v.masks.to(weights).clamp(0.0, 1.0).permute(1, 2, 0) for v in views]  # [H, W, S] each
    voting: list[Tensor] = []  # [H, W, 1] per view, from its first render
    logit = torch.logit(weights.detach().clamp(FIT_CLAMP, 1.0 - FIT_CLAMP)).requires_grad_(True)
    opt = torch.optim.Adam([logit], lr=FIT_LR)
    with torch.enable_grad():
        for step in range(steps):
            if cancel is not None and cancel():
                break
            opt.zero_grad()
            for i, (splats, view, target) in enumerate(zip(still, views, targets)):
                w = torch.where(free, torch.sigmoid(logit), weights)
                result = render(splats, view.camera, (0.0, 0.0, 0.0), features=w, backend=backend)
                assert result.features is not None
                if len(voting) == i:
                    voting.append(interior(result.alpha.detach(), edge_px)[..., None])
                (((result.features - target) * voting[i]) ** 2).sum().div(len(views)).backward()
            opt.step()
            if progress is not None:
                progress((step + 1) / steps, f"fitting to the view{'s' if len(views) > 1 else ''}: step {step + 1}/{steps}")
    return torch.where(free, torch.sigmoid(logit), weights).detach()


def rest_points(avatar: Avatar) -> Tensor:
    """[N, 3] the avatar's Gaussian centres in the neutral pose, where its components stay apart: the points
    fill_unseen looks for neighbours among (and the selection's grow / shrink neighbourhoods)."""
    with torch.no_grad():
        return avatar.splats(avatar.head.neutral_params()).means


def lift_filled(
    splats: Splats,  # the avatar posed as the view shows it
    camera: Camera,
    masks: Tensor,  # [H, W] one mask, or [S, H, W] several, painted on the view seen by camera
    rest: Tensor,  # [N, 3] rest_points(avatar)
    labels: Tensor,  # [N] component labels
    backend: str = "auto",
) -> tuple[LiftedMask, Tensor]:
    """(lifted, weights [N] or [N, S]): the masks lifted onto the Gaussians, and their weights with every
    Gaussian the view does not see filled from its own component (fill_unseen). The one recipe the CLI's
    masks lift, the Masks panel's strokes, the mapping network's data and the masks benchmark share."""
    one = masks.ndim == 2
    lifted = lift_many(splats, camera, masks[None] if one else masks, backend)
    if one:
        lifted = LiftedMask(inside=lifted.inside[:, 0], outside=lifted.outside[:, 0], level=lifted.level)
    return lifted, fill_unseen(lifted.weights, lifted.seen, rest, labels=labels)
