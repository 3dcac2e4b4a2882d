"""Training data for the mask-mapping network, rendered from the modeling stage.

For one reference view (t0, p0) and S masks painted there: lift the masks onto the Gaussians
(exact lifting, engine.semantics.lift), then at each of K sample views (frames of the training
sequence × training cameras) render the lifted selections, the alpha, and the backward
displacement to the reference view: every Gaussian carries its projected reference-view position
as a feature, so the composited feature at a target pixel says where that surface was at (t0, p0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from engine.render.camera import Camera
from engine.render.rasterize import render
from engine.render.splats import Splats
from engine.semantics.lift import fill_unseen, lift_many
from engine.semantics.mapping_net import MappingData, identity_grid


@dataclass(frozen=True)
class SampleView:
    """One (time, camera) sample of the modeling stage."""

    splats: Splats  # the avatar's Gaussians posed at that time
    camera: Camera  # the view (rendered at the data size, see build_mapping_data)
    t: float  # normalised time in [0, 1]
    p: float  # normalised camera azimuth in [0, 1]


def reference_uv(splats: Splats, camera: Camera, backend: str = "auto") -> Tensor:
    """[N, 2] each Gaussian's projected centre in the reference view, normalised to [-1, 1] (align_corners=False)."""
    with torch.no_grad():
        r = render(splats, camera, (0.0, 0.0, 0.0), backend=backend)
    m = r.means2d.detach()
    return torch.stack([m[:, 0] / camera.width * 2 - 1, m[:, 1] / camera.height * 2 - 1], dim=1)


def render_sample(
    splats: Splats, camera: Camera, weights: Tensor, uv: Tensor, backend: str = "auto"  # weights [N, S]; uv [N, 2]
) -> tuple[Tensor, Tensor, Tensor]:
    """(masks [S, H, W] coverage, alpha [H, W], flow [H, W, 2]) of one sample view.

    flow is the backward displacement (reference position − pixel position, normalised units);
    0 where nothing is rendered.
    """
    assert weights.ndim == 2 and weights.shape[0] == splats.count, f"weights must be [N={splats.count}, S], got {tuple(weights.shape)}"
    assert uv.shape == (splats.count, 2), f"uv must be [N={splats.count}, 2], got {tuple(uv.shape)}"
    light = Splats(splats.means, splats.quats, splats.scales, splats.opacities, splats.sh[:, :1])
    with torch.no_grad():
        r = render(light, camera, (0.0, 0.0, 0.0), features=torch.cat([weights, uv], 1).to(splats.means), backend=backend)
    assert r.features is not None
    s = weights.shape[1]
    alpha = r.alpha
    has = alpha > 1e-3
    pos = r.features[..., s:] / torch.where(has, alpha, torch.ones_like(alpha))[..., None]
    flow = torch.where(has[..., None], pos - identity_grid(camera.height, camera.width, pos)[0], torch.zeros_like(pos))
    return r.features[..., :s].permute(2, 0, 1).clamp(0, 1), alpha, flow


def build_mapping_data(
    ref_splats: Splats,
    ref_camera: Camera,
    masks: Tensor,  # [S, H, W] masks painted at the reference view (H, W = ref_camera's size)
    samples: Sequence[SampleView],
    rest_points: Tensor | None = None,  # [N, 3]: when given, unseen Gaussians are filled (lift.fill_unseen)
    labels: Tensor | None = None,  # [N] component labels: fill from the same component (lift.fill_unseen)
    threshold: float = 0.5,  # lifted weight at which a Gaussian is selected
    backend: str = "auto",
    progress: Callable[[float, str], None] | None = None,
) -> tuple[MappingData, Tensor]:
    """(MappingData with targets at the samples' camera size, selected [N, S] float)."""
    assert samples, "build_mapping_data needs at least one sample view"
    lifted = lift_many(ref_splats, ref_camera, masks, backend)
    weights = lifted.weights
    if rest_points is not None:
        weights = fill_unseen(weights, lifted.seen, rest_points, labels=labels)
    selected = (weights >= threshold).float()
    uv = reference_uv(ref_splats, ref_camera, backend)
    targets, alphas, flows = [], [], []
    for i, view in enumerate(samples):
        m, a, f = render_sample(view.splats, view.camera, selected, uv, backend)
        targets.append(m)
        alphas.append(a)
        flows.append(f)
        if progress is not None:
            progress((i + 1) / len(samples), f"rendered mapping sample {i + 1}/{len(samples)}")
    data = MappingData(
        m0=masks.float(), targets=torch.stack(targets), foreground=torch.stack(alphas), flow=torch.stack(flows),
        t=torch.tensor([v.t for v in samples], dtype=torch.float32), p=torch.tensor([v.p for v in samples], dtype=torch.float32),
    )
    return data, selected
