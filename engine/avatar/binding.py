"""Triangle frames and the GaussianAvatars binding: local Gaussian parameters -> world.

For a triangle (v0, v1, v2): a0 = normalize(v1 − v0), a1 = normalize(a0 × (v2 − v0)) (the normal),
a2 = −normalize(a1 × a0), R = [a0 a1 a2] (columns), T = (v0 + v1 + v2) / 3,
k = (|v1 − v0| + |a2 · (v2 − v0)|) / 2. A Gaussian bound to the triangle has world mean k·R·μ' + T,
world scale k·s' and world rotation q(R) ⊗ q'.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.head.triangles import face_normals


def triangle_frames(verts: Tensor, faces: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-triangle rotation [..., F, 3, 3], centroid [..., F, 3] and scale [..., F].

    verts: [..., V, 3]; faces: [F, 3] long.
    """
    assert verts.shape[-1] == 3, f"verts must be [..., V, 3], got {tuple(verts.shape)}"
    assert faces.ndim == 2 and faces.shape[1] == 3, f"faces must be [F, 3], got {tuple(faces.shape)}"
    tri = verts[..., faces, :]  # [..., F, 3, 3]: corner, xyz
    v0, v1, v2 = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    e1, e2 = v1 - v0, v2 - v0
    a0 = F.normalize(e1, dim=-1)
    a1 = F.normalize(torch.linalg.cross(a0, e2, dim=-1), dim=-1)
    a2 = -F.normalize(torch.linalg.cross(a1, a0, dim=-1), dim=-1)
    rot = torch.stack([a0, a1, a2], dim=-1)
    centroid = tri.mean(dim=-2)
    scale = 0.5 * (e1.norm(dim=-1) + (a2 * e2).sum(-1).abs())
    return rot, centroid, scale


def quat_from_matrix(rot: Tensor) -> Tensor:
    """[..., 4] unit quaternions (w, x, y, z) of rotation matrices [..., 3, 3] (differentiable)."""
    m = rot
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack([1 + trace, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], m[..., 1, 2] + m[..., 2, 1]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1),
        ],
        dim=-2,
    )  # [..., 4, 4]: row i is 4·q·q_i, best conditioned where its own component is largest
    diag = torch.stack([1 + trace, 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                        1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1)
    best = diag.argmax(dim=-1, keepdim=True)
    q = torch.gather(candidates, -2, best[..., None].expand(*best.shape[:-1], 1, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return q * torch.where(q[..., :1] < 0, -1.0, 1.0)


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a ⊗ b of quaternions (w, x, y, z), [..., 4] each."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def quat_to_matrix(q: Tensor) -> Tensor:
    """[..., 3, 3] rotation matrices of quaternions (w, x, y, z) [..., 4] (normalised first)."""
    w, x, y, z = F.normalize(q, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def local_to_world(
    binding: Tensor,  # [N] long triangle index
    xyz: Tensor,  # [N, 3] local position
    quats: Tensor,  # [N, 4] local rotation (w, x, y, z)
    scales: Tensor,  # [N, 3] local scale (linear)
    rot: Tensor,  # [F, 3, 3] triangle rotations
    centroid: Tensor,  # [F, 3]
    tri_scale: Tensor,  # [F]
) -> tuple[Tensor, Tensor, Tensor]:
    """World means [N, 3], rotations [N, 4] and scales [N, 3] of bound Gaussians."""
    r, t, k = rot[binding], centroid[binding], tri_scale[binding]
    means = k[:, None] * torch.einsum("nij,nj->ni", r, xyz) + t
    face_q = quat_from_matrix(rot)  # [F, 4]: converted per triangle (F << N), then gathered
    world_q = quat_multiply(face_q[binding], F.normalize(quats, dim=-1))
    return means, world_q, k[:, None] * scales


def world_to_local(
    binding: Tensor,  # [N] long
    means: Tensor,  # [N, 3] world positions
    rot: Tensor,  # [F, 3, 3]
    centroid: Tensor,  # [F, 3]
    tri_scale: Tensor,  # [F]
) -> Tensor:
    """Local positions [N, 3] that place bound Gaussians at the given world means."""
    r, t, k = rot[binding], centroid[binding], tri_scale[binding]
    return (r.transpose(-1, -2) @ (means - t)[:, :, None]).squeeze(-1) / k[:, None]


def triangle_areas(verts: Tensor, faces: Tensor) -> Tensor:
    """[F] areas of the triangles faces [F, 3] of verts [V, 3]."""
    return 0.5 * face_normals(verts[faces]).norm(dim=-1)


def sample_on_triangles(
    verts: Tensor, faces: Tensor, binding: Tensor, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Uniform random points on the bound triangles: (points [N, 3], u [N], v [N]).

    binding: [N] triangle index per point; a point is v0 + u·(v1 − v0) + v·(v2 − v0).
    """
    n = binding.shape[0]
    u, v = torch.rand(n, generator=generator), torch.rand(n, generator=generator)
    flip = (u + v) > 1
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    tri = verts[faces[binding]]
    points = tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0])
    return points, u, v
