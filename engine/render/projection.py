"""Pure-PyTorch projection of 3D Gaussians to the image plane (differentiable through autograd).

The maths follows 3DGS / gsplat (pinhole, EWA splatting):
  Σ = R S Sᵀ Rᵀ (R from the normalised quaternion (w, x, y, z), S = diag(scales)),
  camera-space mean t = W μ + w, camera-space covariance W Σ Wᵀ,
  2D covariance J (W Σ Wᵀ) Jᵀ + 0.3·I (the low-pass dilation), J the perspective Jacobian at the
  mean with x/z and y/z clamped to 1.3× the field of view (as gsplat and 3DGS do),
  conic = inverse 2D covariance stored as (a, b, c) = (inv[0,0], inv[0,1], inv[1,1]),
  radius = ceil(3.33·sqrt(diag of the 2D covariance)) per axis, 0 when culled.
Pixel (u, v) has its centre at (u + 0.5, v + 0.5) (engine/render/camera.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from engine.render.camera import Camera
from engine.render.constants import LOWPASS_EPS, RADIUS_SIGMAS


@dataclass(frozen=True)
class Projected:
    """Per-Gaussian screen-space quantities for one camera (all rows of culled Gaussians are finite)."""

    means2d: Tensor  # [N, 2] projected centres in pixels
    conics: Tensor  # [N, 3] inverse 2D covariance (a, b, c): d^T [[a, b], [b, c]] d
    depths: Tensor  # [N] camera z of the means
    radii: Tensor  # [N, 2] int32 pixel radii per axis, 0 for culled Gaussians
    valid: Tensor  # [N] bool, True where radii > 0


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """[N, 3, 3] rotation matrices of quaternions quats [N, 4] (w, x, y, z), normalised here."""
    q = quats / quats.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(q.shape[:-1] + (3, 3))


def covariance_3d(quats: Tensor, scales: Tensor) -> Tensor:
    """[N, 3, 3] world covariances R S Sᵀ Rᵀ from quats [N, 4] and scales [N, 3]."""
    m = quat_to_rotmat(quats) * scales[..., None, :]  # R @ diag(s): scale the columns
    return m @ m.transpose(-1, -2)


def world_to_camera(means: Tensor, covars: Tensor, world_to_cam: Tensor) -> tuple[Tensor, Tensor]:
    """Camera-space means [N, 3] and covariances [N, 3, 3] of world means [N, 3], covars [N, 3, 3]."""
    rot, trans = world_to_cam[:3, :3], world_to_cam[:3, 3]
    means_c = means @ rot.T + trans
    covars_c = rot @ covars @ rot.T
    return means_c, covars_c


def _perspective(means_c: Tensor, covars_c: Tensor, camera: Camera, safe_z: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel means [N, 2] and 2D covariances [N, 2, 2] (before dilation); safe_z [N] replaces z of culled rows."""
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
    w, h = camera.width, camera.height
    x, y = means_c[:, 0], means_c[:, 1]
    # clamp the Jacobian's evaluation point to 1.3x the frustum (far off-screen Gaussians stay sane)
    tan_x, tan_y = 0.5 * w / fx, 0.5 * h / fy
    lim_xp, lim_xn = (w - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x
    lim_yp, lim_yn = (h - cy) / fy + 0.3 * tan_y, cy / fy + 0.3 * tan_y
    jx = safe_z * torch.clamp(x / safe_z, min=-lim_xn, max=lim_xp)
    jy = safe_z * torch.clamp(y / safe_z, min=-lim_yn, max=lim_yp)
    zero = torch.zeros_like(safe_z)
    jac = torch.stack(
        [fx / safe_z, zero, -fx * jx / safe_z**2, zero, fy / safe_z, -fy * jy / safe_z**2], dim=-1
    ).reshape(-1, 2, 3)
    cov2d = jac @ covars_c @ jac.transpose(-1, -2)
    means2d = torch.stack([fx * x / safe_z + cx, fy * y / safe_z + cy], dim=-1)
    return means2d, cov2d


def project(means: Tensor, quats: Tensor, scales: Tensor, camera: Camera) -> Projected:
    """Project N world Gaussians (means [N, 3], quats [N, 4], scales [N, 3]) through a pinhole camera."""
    n = means.shape[0]
    assert means.shape == (n, 3), f"means must be [N, 3], got {tuple(means.shape)}"
    assert quats.shape == (n, 4) and scales.shape == (n, 3), (
        f"quats/scales must be [N, 4]/[N, 3], got {tuple(quats.shape)}/{tuple(scales.shape)}"
    )
    w2c = camera.world_to_cam.to(device=means.device, dtype=means.dtype)
    means_c, covars_c = world_to_camera(means, covariance_3d(quats, scales), w2c)
    depths = means_c[:, 2]
    in_range = (depths > camera.near) & (depths < camera.far)
    safe_z = torch.where(in_range, depths, torch.ones_like(depths))
    means2d, cov2d = _perspective(means_c, covars_c, camera, safe_z)
    cov2d = cov2d + LOWPASS_EPS * torch.eye(2, dtype=means.dtype, device=means.device)
    det = cov2d[:, 0, 0] * cov2d[:, 1, 1] - cov2d[:, 0, 1] * cov2d[:, 1, 0]
    valid = in_range & (det > 0)
    det_safe = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack(
        [cov2d[:, 1, 1] / det_safe, -0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0]) / det_safe, cov2d[:, 0, 0] / det_safe],
        dim=-1,
    )
    with torch.no_grad():
        diag = torch.stack([cov2d[:, 0, 0], cov2d[:, 1, 1]], dim=-1).clamp(min=0)
        radius = torch.ceil(RADIUS_SIGMAS * diag.sqrt())
        m2 = means2d.detach()
        inside = (
            (m2[:, 0] + radius[:, 0] > 0) & (m2[:, 0] - radius[:, 0] < camera.width)
            & (m2[:, 1] + radius[:, 1] > 0) & (m2[:, 1] - radius[:, 1] < camera.height)
        )
        valid = valid & inside
        radii = torch.where(valid[:, None], radius, torch.zeros_like(radius)).to(torch.int32)
    return Projected(means2d=means2d, conics=conics, depths=depths, radii=radii, valid=valid)


def sh_basis(dirs: Tensor, degree: int) -> Tensor:
    """[N, (degree+1)^2] real SH basis (3DGS sign convention) at unit directions dirs [N, 3]."""
    assert 0 <= degree <= 3, f"SH degree must be 0..3, got {degree}"
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, 0.28209479177387814)]
    if degree >= 1:
        c1 = 0.4886025119029199
        out += [-c1 * y, c1 * z, -c1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [
            1.0925484305920792 * x * y,
            -1.0925484305920792 * y * z,
            0.31539156525252005 * (2 * zz - xx - yy),
            -1.0925484305920792 * x * z,
            0.5462742152960396 * (xx - yy),
        ]
    if degree >= 3:
        out += [
            -0.5900435899266435 * y * (3 * xx - yy),
            2.890611442640554 * x * y * z,
            -0.4570457994644658 * y * (4 * zz - xx - yy),
            0.3731763325901154 * z * (2 * zz - 3 * xx - 3 * yy),
            -0.4570457994644658 * x * (4 * zz - xx - yy),
            1.445305721320277 * z * (xx - yy),
            -0.5900435899266435 * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def sh_to_rgb(sh: Tensor, means: Tensor, camera_position: Tensor) -> Tensor:
    """[N, 3] colours (SH + 0.5, clamped at 0) of sh [N, K, 3] seen from camera_position [3]; means [N, 3]."""
    k = sh.shape[1]
    degree = {1: 0, 4: 1, 9: 2, 16: 3}[k]
    if degree == 0:
        return torch.clamp_min(0.28209479177387814 * sh[:, 0, :] + 0.5, 0.0)
    dirs = means - camera_position.to(dtype=means.dtype, device=means.device)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    basis = sh_basis(dirs, degree)  # [N, K]
    return torch.clamp_min((basis[:, :, None] * sh).sum(dim=1) + 0.5, 0.0)
