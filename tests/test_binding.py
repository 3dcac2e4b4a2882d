"""Gaussians bound to triangles follow the mesh the GaussianAvatars way."""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.avatar.binding import (
    local_to_world,
    quat_from_matrix,
    quat_multiply,
    quat_to_matrix,
    triangle_areas,
    triangle_frames,
    world_to_local,
)
from engine.avatar.gaussians import BoundGaussians
from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.head.triangles import face_normals
from tests.helpers_head import tiny_flame_arrays


def _random_rotations(n: int, gen: torch.Generator) -> torch.Tensor:
    q = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    return quat_to_matrix(q)


def test_frame_is_orthonormal_with_normal_as_second_axis():
    gen = torch.Generator().manual_seed(0)
    verts = torch.randn(30, 3, generator=gen, dtype=torch.float64)
    faces = torch.randint(0, 30, (50, 3), generator=gen)
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    rot, centroid, k = triangle_frames(verts, faces)
    eye = torch.eye(3, dtype=torch.float64).expand(len(faces), 3, 3)
    torch.testing.assert_close(rot.transpose(1, 2) @ rot, eye)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(len(faces), dtype=torch.float64))
    tri = verts[faces]
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    torch.testing.assert_close(rot[:, :, 1], normal / normal.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(centroid, tri.mean(1))
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    torch.testing.assert_close(k, 0.5 * (e1.norm(dim=-1) + (rot[:, :, 2] * e2).sum(-1).abs()))


def test_quaternion_matrix_round_trip_and_product():
    gen = torch.Generator().manual_seed(1)
    r = _random_rotations(200, gen)
    torch.testing.assert_close(quat_to_matrix(quat_from_matrix(r)), r)
    a, b = torch.randn(200, 4, generator=gen, dtype=torch.float64), torch.randn(200, 4, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b))


def test_local_coordinates_survive_any_motion_and_rigid_motion_is_rigid():
    gen = torch.Generator().manual_seed(2)
    head = HeadModel(tiny_flame_arrays(), "tiny", "tiny").double()
    n = 64
    g = BoundGaussians(
        binding=torch.randint(0, head.n_faces, (n,), generator=gen),
        xyz=torch.randn(n, 3, generator=gen, dtype=torch.float64) * 0.3,
        rotation=torch.randn(n, 4, generator=gen, dtype=torch.float64),
        log_scale=torch.randn(n, 3, generator=gen, dtype=torch.float64) - 2,
        opacity_logit=torch.zeros(n, dtype=torch.float64),
        sh=torch.zeros(n, 1, 3, dtype=torch.float64),
        labels=torch.zeros(n, dtype=torch.long),
    )
    neutral = FlameParams.neutral(1, dtype=torch.float64)
    moved = neutral.with_values(
        expr=torch.randn(1, 100, generator=gen, dtype=torch.float64),
        jaw_pose=torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64),
    )
    verts = head(moved)[0]
    splats = g.deform(verts, head.faces)
    rot, cen, k = triangle_frames(verts, head.faces)
    torch.testing.assert_close(world_to_local(g.binding, splats.means, rot, cen, k), g.xyz)

    # A rigid motion of the head (rotation + translation) moves every Gaussian rigidly.
    turned = moved.with_values(rotation=torch.tensor([[0.1, math.pi / 5, -0.2]], dtype=torch.float64),
                               translation=torch.tensor([[0.05, -0.02, 0.3]], dtype=torch.float64))
    s2 = g.deform(head(turned)[0], head.faces)
    r = quat_to_matrix(quat_from_matrix(_axis_angle(turned.rotation[0])))
    # global rotation is about the root joint: compare pairwise distances and covariances instead of positions
    torch.testing.assert_close(torch.cdist(s2.means, s2.means), torch.cdist(splats.means, splats.means))
    torch.testing.assert_close(s2.scales, splats.scales)
    cov = lambda s: quat_to_matrix(s.quats) @ torch.diag_embed(s.scales**2) @ quat_to_matrix(s.quats).transpose(1, 2)  # noqa: E731
    torch.testing.assert_close(cov(s2), r @ cov(splats) @ r.T)


def _axis_angle(v: torch.Tensor) -> torch.Tensor:
    angle = v.norm()
    k = v / angle
    kx = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], dtype=v.dtype)
    return torch.eye(3, dtype=v.dtype) + torch.sin(angle) * kx + (1 - torch.cos(angle)) * kx @ kx


def test_local_to_world_matches_formula():
    gen = torch.Generator().manual_seed(3)
    rot = _random_rotations(5, gen)
    cen = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    k = torch.rand(5, generator=gen, dtype=torch.float64) + 0.5
    binding = torch.tensor([0, 4, 2])
    xyz = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    q = torch.tensor([[1.0, 0, 0, 0]] * 3, dtype=torch.float64)
    s = torch.rand(3, 3, generator=gen, dtype=torch.float64)
    means, wq, ws = local_to_world(binding, xyz, q, s, rot, cen, k)
    for i, b in enumerate(binding):
        torch.testing.assert_close(means[i], k[b] * rot[b] @ xyz[i] + cen[b])
        torch.testing.assert_close(quat_to_matrix(wq[i]), rot[b])
        torch.testing.assert_close(ws[i], k[b] * s[i])


def test_face_normals_of_tensors_and_arrays_are_the_cross_product_of_the_edges() -> None:
    tri = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0]],  # anticlockwise seen from +z, area 3
                        [[1.0, 1.0, 1.0], [1.0, 1.0, 2.0], [1.0, 2.0, 1.0]]])  # in the plane x = 1, area 0.5
    expected = torch.tensor([[0.0, 0.0, 6.0], [-1.0, 0.0, 0.0]])
    assert torch.equal(face_normals(tri), expected)
    assert torch.equal(face_normals(tri[None].expand(4, -1, -1, -1)), expected.expand(4, -1, -1))  # [T, F, 3, 3]
    assert np.array_equal(face_normals(tri.double().numpy()), expected.double().numpy())
    assert torch.equal(triangle_areas(tri.reshape(-1, 3), torch.arange(6).reshape(2, 3)), torch.tensor([3.0, 0.5]))
