"""Projection and SH of engine/render/projection.py against gsplat's own pure-PyTorch reference."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

GSPLAT_CHECKED = "1.5.3"  # the gsplat whose private reference (gsplat.cuda._torch_impl) these tests were checked against
try:
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics
except ImportError as exc:  # a private module: it may move or change in another release
    pytest.fail(f"gsplat {version('gsplat')}: its pure-PyTorch reference moved ({exc}); these tests were checked "
                f"against gsplat {GSPLAT_CHECKED}: install that version or port the imports", pytrace=False)

from engine.render.camera import Camera, orbit_camera
from engine.render.projection import covariance_3d, project, sh_basis, sh_to_rgb


def _scene(seed: int, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """means [N, 3] around the origin (some behind / beside an orbit camera), quats [N, 4], scales [N, 3]."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=dtype) * 0.25
    means[: n // 10] *= 8.0  # far outside the view and behind the camera
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.exp(torch.randn(n, 3, generator=g, dtype=dtype) * 0.8 - 4.5)
    return means, quats, scales


def _camera(dtype: torch.dtype) -> Camera:
    return orbit_camera(25.0, -10.0, 0.8, fov_y_deg=35.0, width=160, height=120, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_covariance_matches_gsplat(dtype: torch.dtype) -> None:
    _, quats, scales = _scene(1, 500, dtype)
    ref, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    torch.testing.assert_close(covariance_3d(quats, scales), ref)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_projection_matches_gsplat(seed: int, dtype: torch.dtype) -> None:
    means, quats, scales = _scene(seed, 2000, dtype)
    cam = _camera(dtype)
    out = project(means, quats, scales, cam)
    covars, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        means, covars, cam.world_to_cam[None], cam.K[None], cam.width, cam.height,
        eps2d=0.3, near_plane=cam.near, far_plane=cam.far,
    )
    radii, means2d, depths, conics = radii[0], means2d[0], depths[0], conics[0]
    valid = (radii > 0).all(dim=-1)
    assert 0.2 * len(valid) < valid.sum() < len(valid), "scene should mix visible and culled Gaussians"
    torch.testing.assert_close(out.radii, radii.to(torch.int32), atol=1, rtol=0)  # ceil() may flip on rounding
    assert (out.radii != radii).sum() <= 2
    torch.testing.assert_close(out.valid, valid)
    torch.testing.assert_close(out.depths, depths)
    torch.testing.assert_close(out.means2d[valid], means2d[valid])
    # float32: the 2x2 inverse cancels digits differently in the two op orders
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {}
    torch.testing.assert_close(out.conics[valid], conics[valid], **tol)


def test_projection_of_a_known_gaussian() -> None:
    """An isotropic Gaussian straight ahead: centre at the principal point, 2D variance (f·s/z)² + 0.3."""
    w2c = torch.eye(4, dtype=torch.float64)
    cam = Camera(w2c, fx=100.0, fy=100.0, cx=32.0, cy=24.0, width=64, height=48)
    out = project(
        torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64),
        torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64),
        torch.full((1, 3), 0.05, dtype=torch.float64),
        cam,
    )
    var = (100.0 * 0.05 / 2.0) ** 2 + 0.3
    torch.testing.assert_close(out.means2d, torch.tensor([[32.0, 24.0]], dtype=torch.float64))
    torch.testing.assert_close(out.conics, torch.tensor([[1 / var, 0.0, 1 / var]], dtype=torch.float64))
    assert out.radii.tolist() == [[int(torch.ceil(torch.tensor(3.33 * var**0.5))), 9]]
    assert out.depths.item() == 2.0


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_sh_matches_gsplat(degree: int) -> None:
    g = torch.Generator().manual_seed(degree)
    n, k = 300, (degree + 1) ** 2
    means = torch.randn(n, 3, generator=g, dtype=torch.float64)
    sh = torch.randn(n, k, 3, generator=g, dtype=torch.float64)
    cam_pos = torch.tensor([0.3, -0.2, 2.0], dtype=torch.float64)
    ref = torch.clamp_min(_spherical_harmonics(degree, means - cam_pos, sh) + 0.5, 0.0)
    torch.testing.assert_close(sh_to_rgb(sh, means, cam_pos), ref)
    dirs = torch.nn.functional.normalize(means - cam_pos, dim=-1)
    assert sh_basis(dirs, degree).shape == (n, k)


def test_gsplat_is_the_version_the_reference_was_checked_against() -> None:
    """requirements.lock pins the gsplat these tests were checked against; a bump must re-check them here."""
    lock = (Path(__file__).resolve().parents[1] / "requirements.lock").read_text()
    pinned = re.search(r"^gsplat==(\S+)$", lock, re.MULTILINE)
    assert pinned and pinned.group(1) == GSPLAT_CHECKED, "requirements.lock's gsplat differs from GSPLAT_CHECKED"
    assert version("gsplat") == GSPLAT_CHECKED, (f"gsplat {version('gsplat')} is installed; the private reference "
                                                 f"was checked against {GSPLAT_CHECKED}")
