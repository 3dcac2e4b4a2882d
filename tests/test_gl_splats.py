"""The OpenGL splat renderer against the reference rasterizer (engine.render.rasterize), headless via EGL."""

from __future__ import annotations

import numpy as np
import pytest
import torch

moderngl = pytest.importorskip("moderngl")

from engine.io.images import psnr
from engine.render.camera import orbit_camera  # noqa: E402
from engine.render.gl_splats import GLSplatConfig, GLSplatRenderer  # noqa: E402
from engine.render.rasterize import render as reference_render  # noqa: E402
from engine.render.splats import Splats  # noqa: E402


def _egl_context() -> "moderngl.Context":
    try:
        return moderngl.create_standalone_context(backend="egl")
    except Exception as exc:  # noqa: BLE001 - any EGL failure means no headless GL here
        pytest.skip(f"no headless EGL OpenGL context on this machine: {exc}")


@pytest.fixture(scope="module")
def ctx() -> "moderngl.Context":
    context = _egl_context()
    yield context
    context.release()


def random_splats(n: int, seed: int, degree: int = 3, spread: float = 0.3) -> Splats:
    """n random Gaussians in a cube of side `spread` around the origin, SH of the given degree."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5) * spread
    quats = torch.randn(n, 4, generator=g)
    scales = torch.rand(n, 3, generator=g) * 0.02 + 0.002
    opacities = torch.rand(n, generator=g) * 0.9 + 0.05
    sh = torch.randn(n, (degree + 1) ** 2, 3, generator=g) * 0.3
    return Splats(means, quats, scales, opacities, sh)



@pytest.mark.parametrize("primitive", ["quads", "points"])
@pytest.mark.parametrize(("seed", "degree"), [(0, 3), (1, 1), (2, 0)])
def test_matches_reference_rasterizer(ctx, primitive: str, seed: int, degree: int) -> None:
    splats = random_splats(400, seed, degree)
    cam = orbit_camera(25.0 * seed - 20.0, 10.0, 0.8, fov_y_deg=30.0, width=96, height=80)
    bg = (0.2, 0.3, 0.4)
    renderer = GLSplatRenderer(96, 80, ctx=ctx, config=GLSplatConfig(primitive=primitive))
    rgb, alpha = renderer.render_float(splats, cam, background=bg)
    ref = reference_render(splats, cam, background=bg, backend="torch")
    ref_rgb, ref_alpha = ref.rgb.numpy(), ref.alpha.numpy()
    assert renderer.last_primitive == primitive
    assert rgb.shape == (80, 96, 3) and alpha.shape == (80, 96)
    assert psnr(rgb, ref_rgb) > 30.0, f"PSNR {psnr(rgb, ref_rgb):.1f} dB"
    assert np.abs(alpha - ref_alpha).mean() < 0.01
    assert ref_alpha.max() > 0.5  # the scene is really visible
    image = renderer.render(splats, cam, background=bg)
    assert image.dtype == np.uint8 and image.shape == (80, 96, 3)
    assert np.abs(image.astype(np.float32) - np.clip(rgb, 0, 1) * 255).max() <= 1.0


def test_top_row_first_and_pixel_centres(ctx) -> None:
    """A small round Gaussian projected onto pixel centre (u, v) = (10.5, 4.5) peaks at row 4, column 10."""
    cam = orbit_camera(0.0, 0.0, 1.0, fov_y_deg=30.0, width=32, height=24)
    f = cam.fx
    # a camera point (x, y, 1) lands at (f x + cx, f y + cy); cam looks along -z from +z, x right, y down
    x, y = (10.5 - cam.cx) / f, (4.5 - cam.cy) / f
    means = torch.tensor([[x, -y, 0.0]])  # world y is up, image v is down
    splats = Splats(means, torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.3 / f), torch.tensor([0.9]),
                    torch.zeros(1, 1, 3))
    renderer = GLSplatRenderer(32, 24, ctx=ctx)
    _, alpha = renderer.render_float(splats, cam)
    assert np.unravel_index(np.argmax(alpha), alpha.shape) == (4, 10)
    ref = reference_render(splats, cam, backend="torch").alpha.numpy()
    assert np.allclose(alpha, ref, atol=2e-3)


def test_colors_override(ctx) -> None:
    splats = random_splats(200, 3)
    cam = orbit_camera(0.0, 0.0, 0.8, fov_y_deg=30.0, width=64, height=64)
    renderer = GLSplatRenderer(64, 64, ctx=ctx)
    colors = np.tile(np.array([[1.0, 0.0, 0.0]], np.float32), (200, 1))
    rgb, alpha = renderer.render_float(splats, cam, background=(0.0, 0.0, 0.0), colors=colors)
    assert alpha.max() > 0.5
    assert np.allclose(rgb[..., 0], alpha, atol=1e-4)  # pure red premultiplied over black: r = alpha
    assert np.abs(rgb[..., 1:]).max() < 1e-5
    mask = torch.zeros(200, 3)
    mask[:100, 1] = 1.0  # the first half green, the rest black
    rgb_t, _ = renderer.render_float(splats, cam, background=(0.0, 0.0, 0.0), colors=mask)
    assert rgb_t[..., 1].max() > 0.3 and np.abs(rgb_t[..., [0, 2]]).max() < 1e-5
    with pytest.raises(ValueError, match="colors must be"):
        renderer.render(splats, cam, colors=np.zeros((3, 3), np.float32))


def test_empty_scene_gives_background(ctx) -> None:
    empty = Splats(torch.zeros(0, 3), torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, 1, 3))
    cam = orbit_camera(0.0, 0.0, 1.0, width=40, height=30)
    renderer = GLSplatRenderer(40, 30, ctx=ctx)
    image = renderer.render(empty, cam, background=(1.0, 0.5, 0.0))
    assert image.shape == (30, 40, 3)
    assert (image == np.array([255, 128, 0], np.uint8)).all() or (image == np.array([255, 127, 0])).all()
    rgb, alpha = renderer.render_float(empty, cam, background=(0.25, 0.5, 0.75))
    assert np.allclose(rgb, [0.25, 0.5, 0.75]) and (alpha == 0).all()


def test_gaussian_behind_camera_draws_nothing(ctx) -> None:
    cam = orbit_camera(0.0, 0.0, 1.0, width=40, height=30)  # at z = +1 looking toward -z
    behind = Splats(torch.tensor([[0.0, 0.0, 1.5]]), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.2),
                    torch.tensor([0.95]), torch.zeros(1, 1, 3))
    front = Splats(torch.zeros(1, 3), behind.quats, behind.scales, behind.opacities, behind.sh)
    renderer = GLSplatRenderer(40, 30, ctx=ctx)
    _, alpha = renderer.render_float(behind, cam)
    assert (alpha == 0).all()
    _, alpha_front = renderer.render_float(front, cam)
    assert alpha_front.max() > 0.5  # the same Gaussian in front of the camera is drawn


def test_resize(ctx) -> None:
    splats = random_splats(300, 4)
    renderer = GLSplatRenderer(48, 32, ctx=ctx)
    small = orbit_camera(10.0, 0.0, 0.8, fov_y_deg=30.0, width=48, height=32)
    assert renderer.render(splats, small).shape == (32, 48, 3)
    with pytest.raises(ValueError, match="resize"):
        renderer.render(splats, small.resized(64, 40))
    renderer.resize(64, 40)
    big = small.resized(64, 40)
    rgb, _ = renderer.render_float(splats, big)
    ref = reference_render(splats, big, backend="torch").rgb.numpy()
    assert rgb.shape == (40, 64, 3) and psnr(rgb, ref) > 30.0
    assert set(renderer.last_timings) >= {"prepare", "sort", "upload", "draw", "readback", "total"}
    renderer.release()
