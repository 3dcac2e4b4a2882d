"""View-dependent landmark offsets: where a landmarker puts a point, relative to its embedded surface spot,
as a function of the direction the point is seen from.

A landmarker does not mark a fixed skin spot: as the head turns, its outline points slide to the
silhouette, its nose and cheek points drift, and points on the far side are guessed. One surface spot
per point cannot follow that, and tracking then tilts the head to make up the difference (the pitch
error grew to 10° at 37° yaw on the synthetic clip). So each point gets a small 3D offset in the head's
frame, a low-order polynomial of the head-frame direction it is seen from, fitted by least squares to
the calibration renders (known poses; engine/track/embedding_fit.py) and added to the point wherever
tracking poses it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from engine.render.camera import Camera

DEGREE = 3  # polynomial degree in the view direction's x and y (head frame)
RIDGE = 1e-4  # ridge weight on the coefficients, relative to the data's own scale (synthetic clip, 150 frames, 400
# calibration renders, degree 2: 1e-2 head 2.85°, 1e-3 2.35°, 1e-4 2.10°, 1e-5 2.04°; degree 3 at 1e-4: 2.03°)
OUTLIER_PX = 30.0  # calibration residuals beyond this many pixels (a wrong detection) are left out of the fit


def basis(view: Tensor, degree: int = DEGREE) -> Tensor:
    """[..., K] monomials up to `degree` of the x and y of unit view directions view [..., 3] (head frame)."""
    assert view.shape[-1] == 3, f"view must be [..., 3], got {tuple(view.shape)}"
    x, y = view[..., 0], view[..., 1]
    terms = [torch.ones_like(x)]
    for d in range(1, degree + 1):
        terms += [x ** (d - i) * y**i for i in range(d + 1)]
    return torch.stack(terms, dim=-1)


def terms(degree: int) -> int:
    """K, the number of monomials of `basis` at degree."""
    return (degree + 1) * (degree + 2) // 2


def degree_of(count: int) -> int:
    """The degree whose basis has `count` monomials."""
    for d in range(8):
        if terms(d) == count:
            return d
    raise ValueError(f"{count} is not the monomial count of any degree")


def head_view(points: Tensor, head_rotation: Tensor, eye: Tensor) -> Tensor:
    """[T, P, 3] unit direction from each point towards the camera, in the head's frame.

    points: [T, P, 3] world; head_rotation: [T, 3, 3] the head's world rotation; eye: [3] camera centre."""
    to_eye = torch.nn.functional.normalize(eye - points, dim=-1)
    return torch.einsum("tij,tpi->tpj", head_rotation, to_eye)  # Rᵀ · d


def world_offsets(coef: Tensor, points: Tensor, head_rotation: Tensor, eye: Tensor) -> Tensor:
    """[T, P, 3] world offsets to add to landmark points [T, P, 3] (coef [P, K, 3], head_rotation [T, 3, 3])."""
    assert coef.ndim == 3 and coef.shape[2] == 3 and points.shape[-2] == coef.shape[0], (
        f"coef must be [P, K, 3] and points [T, P, 3], got {tuple(coef.shape)} and {tuple(points.shape)}"
    )
    b = basis(head_view(points, head_rotation, eye), degree_of(coef.shape[1]))  # [T, P, K]
    local = torch.einsum("tpk,pkc->tpc", b, coef.to(points.dtype))
    return torch.einsum("tij,tpj->tpi", head_rotation.to(points.dtype), local)


def _projection_jacobian(points: Tensor, camera: Camera) -> tuple[Tensor, Tensor]:
    """(pixels [N, P, 2], d pixels / d world [N, P, 2, 3]) of world points [N, P, 3] in camera."""
    w2c = camera.world_to_cam.to(points.dtype)
    rot = w2c[:3, :3]
    c = points @ rot.T + w2c[:3, 3]
    x, y, z = c[..., 0], c[..., 1], c[..., 2]
    uv = torch.stack([camera.fx * x / z + camera.cx, camera.fy * y / z + camera.cy], dim=-1)
    jac = torch.zeros(*points.shape[:-1], 2, 3, dtype=points.dtype)
    jac[..., 0, 0] = camera.fx / z
    jac[..., 0, 2] = -camera.fx * x / z**2
    jac[..., 1, 1] = camera.fy / z
    jac[..., 1, 2] = -camera.fy * y / z**2
    return uv, jac @ rot


def fit_offsets(points: Tensor, head_rotation: Tensor, observed: Tensor, camera: Camera,
                degree: int = DEGREE) -> Tensor:
    """coef [P, K, 3]: per point, the polynomial offset that best moves the projections of points [N, P, 3]
    (seen at head rotations [N, 3, 3] by camera) onto observed [N, P, 2] pixels (NaN: not found),
    linearised at the points (the offsets are millimetres); ridge-regularised, wrong detections left out."""
    n, p, _ = points.shape
    assert observed.shape == (n, p, 2) and head_rotation.shape == (n, 3, 3), (
        f"observed must be [{n}, {p}, 2] and head_rotation [{n}, 3, 3], got {tuple(observed.shape)}, "
        f"{tuple(head_rotation.shape)}"
    )
    pts, rots, obs = points.double(), head_rotation.double(), observed.double()
    uv, jac = _projection_jacobian(pts, camera)
    a = jac @ rots[:, None]  # [N, P, 2, 3]: head-frame offset -> pixels
    b = basis(head_view(pts, rots, camera.cam_to_world[:3, 3].double()), degree)  # [N, P, K]
    r = obs - uv  # [N, P, 2]
    k = b.shape[-1]
    coef = torch.zeros(p, k, 3, dtype=torch.float64)
    for i in range(p):
        ok = torch.isfinite(r[:, i]).all(-1) & (torch.nan_to_num(r[:, i]).norm(dim=-1) < OUTLIER_PX)
        if int(ok.sum()) < k:
            continue
        m = torch.einsum("nk,nij->nikj", b[ok, i], a[ok, i]).reshape(-1, 3 * k)  # rows (frame, u/v)
        y = r[ok, i].reshape(-1)
        scale = a[ok, i].pow(2).sum((1, 2)).mean()
        h = m.T @ m + RIDGE * scale * len(y) * torch.eye(3 * k, dtype=torch.float64)
        coef[i] = torch.linalg.solve(h, m.T @ y).reshape(k, 3)
    return coef.float()
