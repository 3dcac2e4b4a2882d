"""Compositing of the torch reference and the numba fast path against a brute-force per-pixel oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.render.camera import Camera, orbit_camera
from engine.render.projection import project, sh_to_rgb
from engine.render.rasterize import RenderResult, render, resolve_backend
from engine.render.splats import Splats


def _splats(
    seed: int, n: int, dtype: torch.dtype, spread: float = 0.12, degree: int = 1, log_scale: float = -4.0
) -> Splats:
    """Random Gaussians around the origin: mixed sizes and opacities, some culled or below 1/255."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=dtype) * spread
    means[:2] = torch.tensor([[0.0, 0.0, 5.0], [0.0, 0.0, -3.0]], dtype=dtype)  # behind / far beyond the camera
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.exp(torch.randn(n, 3, generator=g, dtype=dtype) * 0.6 + log_scale)
    means[3:6] = torch.tensor([[0.01, 0.0, 0.0], [0.0, 0.01, 0.02], [-0.01, 0.0, -0.02]], dtype=dtype)
    scales[3:6] = 0.04  # three big opaque ones stacked on the view axis
    opacities = torch.rand(n, generator=g, dtype=dtype) * 0.97 + 0.02
    opacities[2] = 0.003  # never reaches alpha 1/255
    opacities[3:6] = 0.999  # nearly opaque: exercises the 0.99 clamp and early termination
    sh = torch.randn(n, (degree + 1) ** 2, 3, generator=g, dtype=dtype) * 0.4
    return Splats(means, quats, scales, opacities, sh)


def _oracle(splats: Splats, cam: Camera, bg: tuple[float, float, float], feats: torch.Tensor) -> dict[str, np.ndarray]:
    """Every pixel, every visible Gaussian in depth order, no tiles: the 3DGS rule written plainly."""
    p = project(splats.means, splats.quats, splats.scales, cam)
    rgb = sh_to_rgb(splats.sh, splats.means, cam.cam_to_world[:3, 3])
    cols = torch.cat([rgb, p.depths[:, None], feats], dim=-1).detach().double().numpy()
    m2, con = p.means2d.detach().double().numpy(), p.conics.detach().double().numpy()
    op, z = splats.opacities.detach().double().numpy(), p.depths.detach().double().numpy()
    ids = [i for i in np.argsort(z, kind="stable") if p.valid[i]]
    h, w, d = cam.height, cam.width, cols.shape[1]
    img, alpha, stops = np.zeros((h, w, d)), np.zeros((h, w)), 0
    for v in range(h):
        for u in range(w):
            t, acc = 1.0, np.zeros(d)
            for i in ids:
                dx, dy = m2[i, 0] - (u + 0.5), m2[i, 1] - (v + 0.5)
                sigma = 0.5 * (con[i, 0] * dx * dx + con[i, 2] * dy * dy) + con[i, 1] * dx * dy
                a = min(0.99, op[i] * math.exp(-sigma))
                if sigma < 0 or a < 1 / 255:
                    continue
                if t * (1 - a) <= 1e-4:
                    stops += 1
                    break
                acc += a * t * cols[i]
                t *= 1 - a
            img[v, u], alpha[v, u] = acc, 1 - t
    depth = np.where(alpha > 0, img[..., 3] / np.where(alpha > 0, alpha, 1), 0)
    rgb_img = img[..., :3] + (1 - alpha)[..., None] * np.array(bg)
    return {"rgb": rgb_img, "alpha": alpha, "depth": depth, "features": img[..., 4:], "stops": stops}


def _check(res: RenderResult, ref: dict[str, np.ndarray], **tol: float) -> None:
    for key in ("rgb", "alpha", "depth", "features"):
        got = getattr(res, key).detach().double()
        torch.testing.assert_close(got, torch.from_numpy(ref[key]), msg=lambda m, k=key: f"{k}: {m}", **tol)


@pytest.mark.parametrize("backend", ["torch", "cpu"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_bruteforce_oracle(backend: str, seed: int) -> None:
    splats = _splats(seed, 60, torch.float64)
    cam = orbit_camera(15.0 * seed, 5.0, 0.5, fov_y_deg=30.0, width=37, height=29, dtype=torch.float64)
    feats = torch.randn(60, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    bg = (0.2, 0.5, 0.9)
    ref = _oracle(splats, cam, bg, feats)
    assert ref["stops"] > 0, "scene must exercise early termination"
    assert 0.05 < ref["alpha"].mean() < 0.999
    res = render(splats, cam, background=bg, features=feats, backend=backend)
    assert res.rgb.shape == (29, 37, 3) and res.features is not None and res.features.shape == (29, 37, 2)
    _check(res, ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_float32_matches_oracle(backend: str) -> None:
    splats = _splats(7, 80, torch.float32)
    cam = orbit_camera(-20.0, 0.0, 0.5, fov_y_deg=30.0, width=40, height=32)
    feats = torch.rand(80, 1, generator=torch.Generator().manual_seed(7))
    res = render(splats, cam, background=(1.0, 1.0, 1.0), features=feats, backend=backend)
    assert res.rgb.dtype == torch.float32
    _check(res, _oracle(splats, cam, (1.0, 1.0, 1.0), feats), rtol=1e-4, atol=1e-4)


def test_fast_path_matches_reference_on_bigger_scene() -> None:
    """3000 Gaussians, 160x128, degree-3 SH, partial edge tiles: cpu == torch (both exact)."""
    splats = _splats(11, 3000, torch.float64, spread=0.1, degree=3, log_scale=-5.0)
    cam = orbit_camera(30.0, 10.0, 0.55, fov_y_deg=25.0, width=160, height=120, dtype=torch.float64)
    feats = torch.randn(3000, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a = render(splats, cam, background=(0.0, 0.0, 0.0), features=feats, backend="torch")
    b = render(splats, cam, background=(0.0, 0.0, 0.0), features=feats, backend="cpu")
    assert a.alpha.max() > 0.999 and a.alpha.min() < 0.9
    for key in ("rgb", "alpha", "depth", "features", "radii", "means2d"):
        torch.testing.assert_close(getattr(b, key), getattr(a, key), rtol=1e-9, atol=1e-9, msg=key)


def test_single_gaussian_values() -> None:
    """One Gaussian on a pixel centre: alpha there is its opacity, depth its z, rgb over the background."""
    cam = Camera(torch.eye(4, dtype=torch.float64), fx=50.0, fy=50.0, cx=8.5, cy=6.5, width=17, height=13)
    sh = torch.zeros(1, 1, 3, dtype=torch.float64)
    sh[0, 0, 0] = 0.5 / 0.28209479177387814  # red channel 1.0, green/blue 0.5
    splats = Splats(
        torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64), torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64),
        torch.full((1, 3), 0.04, dtype=torch.float64), torch.tensor([0.6], dtype=torch.float64), sh,
    )
    for backend in ("torch", "cpu"):
        res = render(splats, cam, background=(0.0, 0.0, 1.0), backend=backend)
        assert res.alpha[6, 8].item() == pytest.approx(0.6)
        assert res.depth[6, 8].item() == pytest.approx(2.0)
        assert res.rgb[6, 8].tolist() == pytest.approx([0.6, 0.3, 0.3 + 0.4])
        assert res.alpha[0, 0].item() == 0.0 and res.depth[0, 0].item() == 0.0
        assert res.features is None and res.radii.tolist() == [4]  # ceil(3.33·sqrt(1² + 0.3))


def test_backend_choice() -> None:
    assert resolve_backend("auto", torch.device("cpu")) == "cpu"
    with pytest.raises(ValueError, match="unknown render backend"):
        resolve_backend("vulkan", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            resolve_backend("gsplat", torch.device("cpu"))
