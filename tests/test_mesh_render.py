"""OpenGL mesh renderer for synthetic ground truth: geometry against the analytic sphere, labels, axes."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from engine.head.components import LABEL
from engine.render.camera import Camera, look_at

moderngl = pytest.importorskip("moderngl")
from engine.data.mesh_render import MeshRenderConfig, MeshRenderer

RADIUS = 0.5
CENTRE = (0.1, -0.05, 0.0)


# fmt: off
ICOSAHEDRON_FACES = np.array(
    [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6),
     (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7),
     (9, 8, 1)]
)
# fmt: on


def _midpoint(verts: list[np.ndarray], cache: dict[tuple[int, int], int], a: int, b: int) -> int:
    key = (min(a, b), max(a, b))
    if key not in cache:
        m = verts[a] + verts[b]
        verts.append(m / np.linalg.norm(m))
        cache[key] = len(verts) - 1
    return cache[key]


def icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere: vertices [V, 3], faces [F, 3]."""
    t = (1 + 5**0.5) / 2
    corners = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t)]
    corners += [(t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    verts = [np.array(p, float) / np.linalg.norm(p) for p in corners]
    faces = [tuple(f) for f in ICOSAHEDRON_FACES.tolist()]
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}
        new = []
        for a, b, c in faces:
            ab, bc, ca = (_midpoint(verts, cache, *e) for e in ((a, b), (b, c), (c, a)))
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new
    return np.array(verts), np.array(faces)


@pytest.fixture(scope="module")
def renderer() -> Iterator[MeshRenderer]:
    try:
        r = MeshRenderer(MeshRenderConfig(supersample=4))
    except Exception as exc:  # noqa: BLE001  (whatever EGL raises when there is no GL here)
        pytest.skip(f"no headless OpenGL context: {exc}")
    yield r
    r.close()


@pytest.fixture(scope="module")
def sphere() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    unit, faces = icosphere(4)
    verts = unit * RADIUS + np.array(CENTRE)
    centroids = verts[faces].mean(axis=1)
    labels = np.where(centroids[:, 0] > CENTRE[0], LABEL["hair"], LABEL["nose"])
    return verts, faces, labels


def _camera(
    eye: tuple[float, float, float], width: int = 96, height: int = 80, cx: float = 50.0, cy: float = 37.0
) -> Camera:
    w2c = look_at(
        torch.tensor(eye, dtype=torch.float64),
        torch.tensor(CENTRE, dtype=torch.float64),
        torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
    )
    return Camera(w2c.float(), fx=110.0, fy=104.0, cx=cx, cy=cy, width=width, height=height)


def analytic_sphere_mask(camera: Camera) -> np.ndarray:
    """[H, W] bool: pixel-centre rays that hit the true sphere."""
    w2c = camera.world_to_cam.double().numpy()
    c = w2c[:3, :3] @ np.array(CENTRE) + w2c[:3, 3]
    u, v = np.meshgrid(np.arange(camera.width) + 0.5, np.arange(camera.height) + 0.5)
    d = np.stack([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, np.ones_like(u)], axis=-1)
    dc = d @ c
    return (dc > 0) & (dc**2 >= (d**2).sum(-1) * (c @ c - RADIUS**2))


def test_silhouette_matches_analytic_sphere(renderer: MeshRenderer, sphere) -> None:
    verts, faces, labels = sphere
    cam = _camera((CENTRE[0] + 0.4, CENTRE[1] + 0.3, 2.6))
    out = renderer.render(verts, faces, labels, cam)
    assert out.rgb.shape == (80, 96, 3) and out.alpha.shape == (80, 96) and out.labels.shape == (80, 96)
    want = analytic_sphere_mask(cam)
    got = out.alpha.numpy() > 0.5
    iou = (got & want).sum() / (got | want).sum()
    assert iou > 0.97, f"IoU {iou:.4f}"
    edge = (out.alpha > 0.05) & (out.alpha < 0.95)
    assert edge.any(), "supersampling should give fractional alpha on the silhouette"
    assert ((out.labels >= 0).numpy() == got).mean() > 0.98


def test_label_halves_and_background(renderer: MeshRenderer, sphere) -> None:
    verts, faces, labels = sphere
    cam = _camera((CENTRE[0], CENTRE[1], 2.6), cx=48.0, cy=40.0)  # straight down -z: world +x is image right
    out = renderer.render(verts, faces, labels, cam)
    lab = out.labels.numpy()
    u_centre = int(cam.cx)
    left, right = lab[:, : u_centre - 2], lab[:, u_centre + 2 :]
    assert (left == LABEL["nose"]).sum() > 300 and (left == LABEL["hair"]).sum() == 0
    assert (right == LABEL["hair"]).sum() > 300 and (right == LABEL["nose"]).sum() == 0
    empty = out.alpha == 0
    assert empty.sum() > 1000
    assert torch.all(out.rgb[empty] == 1.0), "background must be white where alpha is 0"
    assert torch.all(out.labels[empty] == -1)
    covered = out.alpha == 1
    assert covered.any() and out.rgb[covered].mean() < 0.9  # the sphere is not drawn white
    hair_rgb = out.rgb[out.labels == LABEL["hair"]].mean(0)
    skin_rgb = out.rgb[out.labels == LABEL["nose"]].mean(0)
    assert hair_rgb.sum() < skin_rgb.sum(), "hair albedo should be darker than skin"


def test_camera_moved_left_moves_object_right(renderer: MeshRenderer, sphere) -> None:
    verts, faces, labels = sphere

    def centroid_u(dx: float) -> float:
        cam = _camera((CENTRE[0], CENTRE[1], 2.6), cx=48.0, cy=40.0)
        w2c = cam.world_to_cam.clone()
        w2c[0, 3] -= dx  # camera centre moves by dx along its own x (right) axis
        out = renderer.render(verts, faces, labels, Camera(w2c, cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height))
        a = out.alpha.numpy()
        u = np.arange(a.shape[1]) + 0.5
        return float((a.sum(0) * u).sum() / a.sum())

    still, moved_left = centroid_u(0.0), centroid_u(-0.2)
    assert still == pytest.approx(48.0, abs=0.3)  # the sphere centre projects to the principal point
    assert moved_left - still == pytest.approx(110.0 * 0.2 / 2.6, rel=0.05)


def test_vertical_axis_and_principal_point(renderer: MeshRenderer, sphere) -> None:
    verts, faces, labels = sphere
    cam = _camera((CENTRE[0], CENTRE[1], 2.6), cx=30.0, cy=25.0)
    out = renderer.render(verts, faces, labels, cam)
    a = out.alpha.numpy()
    v = np.arange(a.shape[0]) + 0.5
    u = np.arange(a.shape[1]) + 0.5
    assert float((a.sum(1) * v).sum() / a.sum()) == pytest.approx(25.0, abs=0.3)
    assert float((a.sum(0) * u).sum() / a.sum()) == pytest.approx(30.0, abs=0.3)
    top = np.zeros_like(labels)
    top[verts[faces].mean(1)[:, 1] > CENTRE[1]] = 1  # upper hemisphere -> label 1 (hair), lower -> 0 (skin)
    out2 = renderer.render(verts, faces, top, cam)
    lab = out2.labels.numpy()
    assert (lab[:24] == 1).sum() > 100 and (lab[:24] == 0).sum() == 0  # world up is the image top
    assert (lab[27:] == 0).sum() > 100 and (lab[27:] == 1).sum() == 0


def test_rest_positions_carry_the_texture(renderer: MeshRenderer, sphere) -> None:
    verts, faces, labels = sphere
    cam = _camera((CENTRE[0], CENTRE[1], 2.6), cx=48.0, cy=40.0)
    shift = np.array([0.0, 0.0, 0.3])
    moved = renderer.render(verts + shift, faces, labels, cam, rest_verts=verts)
    assert not torch.allclose(moved.alpha, renderer.render(verts, faces, labels, cam).alpha)  # it grew on screen
    # translating the rest pose changes nothing: the albedo is attached to the rest shape
    same = renderer.render(verts + shift, faces, labels, cam, rest_verts=verts + np.array([0.05, 0.0, 0.0]))
    torch.testing.assert_close(moved.rgb, same.rgb, atol=2e-3, rtol=0)
    # turning the rest pose turns the texture on the same geometry
    angle = math.radians(30)
    rot = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
    turned = renderer.render(verts + shift, faces, labels, cam, rest_verts=(verts - CENTRE) @ rot.T + CENTRE)
    assert (moved.rgb - turned.rgb).abs().max() > 0.05
    assert torch.equal(moved.alpha, turned.alpha) and torch.equal(moved.labels, turned.labels)
