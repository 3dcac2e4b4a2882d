"""Gradients of render() w.r.t. every Splats field and features: finite differences and cross-backend."""

from __future__ import annotations

import pytest
import torch

from engine.render.camera import orbit_camera
from engine.render.rasterize import render
from engine.render.splats import Splats


def _leaves(seed: int, n: int, dtype: torch.dtype, degree: int = 2) -> list[torch.Tensor]:
    """means, quats, scales, opacities, sh, features of a tiny scene, as leaf tensors that require grad."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=dtype) * 0.05
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.exp(torch.randn(n, 3, generator=g, dtype=dtype) * 0.3 - 3.8)
    opacities = torch.rand(n, generator=g, dtype=dtype) * 0.6 + 0.2
    sh = torch.randn(n, (degree + 1) ** 2, 3, generator=g, dtype=dtype) * 0.3
    feats = torch.randn(n, 2, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (means, quats, scales, opacities, sh, feats)]


def _render_fn(backend: str, width: int, height: int, dtype: torch.dtype):
    cam = orbit_camera(10.0, -5.0, 0.4, fov_y_deg=25.0, width=width, height=height, dtype=dtype)

    def fn(means, quats, scales, opacities, sh, feats):
        res = render(Splats(means, quats, scales, opacities, sh), cam, (0.3, 0.6, 0.1), feats, backend)
        return res.rgb, res.alpha, res.depth, res.features

    return fn


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_gradcheck_every_field(backend: str) -> None:
    leaves = _leaves(0, 7, torch.float64)
    fn = _render_fn(backend, 12, 10, torch.float64)
    alpha = fn(*leaves)[1]
    assert alpha.max() > 0.5 and (alpha < 0.05).any(), "scene must overlap and leave gaps"
    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-5, rtol=1e-4)


def _grads(backend: str, leaves: list[torch.Tensor], width: int, height: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    cam = orbit_camera(-15.0, 8.0, 0.45, fov_y_deg=25.0, width=width, height=height, dtype=leaves[0].dtype)
    w = torch.linspace(-1.0, 1.0, width * height * 3, dtype=leaves[0].dtype).reshape(height, width, 3)
    res = render(Splats(*leaves[:5]), cam, (1.0, 1.0, 1.0), leaves[5], backend)
    loss = (res.rgb * w).sum() + (res.rgb - 0.5).square().sum() + res.depth.sum() + res.features.square().sum()
    loss = loss + res.alpha.sum()
    grads = torch.autograd.grad(loss, leaves, retain_graph=True)
    res.means2d.retain_grad()  # already retained by render(); calling again is harmless
    loss.backward()
    assert res.means2d.grad is not None, "render() must keep the means2d gradient for densification"
    m2d = res.means2d.grad.clone()
    for t in leaves:
        t.grad = None
    return list(grads), m2d


def test_float32_cpu_gradients_match_torch_reference() -> None:
    """float32, 300 Gaussians, 64x48 (several tiles): cpu kernel gradients == torch autograd gradients."""
    leaves = _leaves(3, 300, torch.float32, degree=3)
    g_torch, m_torch = _grads("torch", leaves, 64, 48)
    g_cpu, m_cpu = _grads("cpu", leaves, 64, 48)
    names = ["means", "quats", "scales", "opacities", "sh", "features"]
    for name, a, b in zip(names, g_cpu, g_torch):
        assert b.abs().max() > 0, name
        torch.testing.assert_close(a, b, rtol=2e-3, atol=2e-3 * float(b.abs().max()), msg=name)
    torch.testing.assert_close(m_cpu, m_torch, rtol=2e-3, atol=2e-3 * float(m_torch.abs().max()))
    assert (m_cpu.abs().sum(dim=-1) > 0).sum() > 100


def test_means2d_gradient_is_the_screen_space_gradient() -> None:
    """means2d.grad equals d loss / d means2d: moving a lone Gaussian right by 1 px shifts the image."""
    dt = torch.float64
    leaves = _leaves(5, 1, dt)
    cam = orbit_camera(0.0, 0.0, 0.4, fov_y_deg=25.0, width=20, height=20, dtype=dt)
    with torch.no_grad():
        leaves[0].zero_()
    res = render(Splats(*leaves[:5]), cam, (0.0, 0.0, 0.0), None, "cpu")
    target = torch.roll(res.alpha.detach(), shifts=1, dims=1)
    loss = (res.alpha - target).square().sum()
    loss.backward()
    gx, gy = res.means2d.grad[0].tolist()
    assert gx < 0 and abs(gy) < 0.2 * abs(gx), "moving right (+x) must lower the loss"
