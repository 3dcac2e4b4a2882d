"""The inference-only CPU renderer (engine/render/fast_view.py) against the reference rasterizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("numba")

from engine.avatar.demo import load_demo_avatar
from engine.io.images import psnr
from engine.render.camera import framing, orbit_camera
from engine.render.fast_view import FastAvatarRenderer, FastSplatRenderer
from engine.render.rasterize import render
from engine.render.splats import Splats


def random_splats(n: int, seed: int, degree: int) -> Splats:
    """Random Gaussians of mixed sizes and opacities, some behind the camera, one below alpha 1/255."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) - 0.5) * 0.3
    means[0] = torch.tensor([0.0, 0.0, 2.0])  # behind the camera
    quats = torch.randn(n, 4, generator=g)
    scales = torch.exp(torch.randn(n, 3, generator=g) * 0.7 - 4.5)
    opacities = torch.rand(n, generator=g) * 0.97 + 0.02
    opacities[1] = 0.003
    sh = torch.randn(n, (degree + 1) ** 2, 3, generator=g) * 0.3
    return Splats(means, quats, scales, opacities, sh)


@pytest.fixture(scope="module")
def demo():
    avatar = load_demo_avatar()
    with torch.no_grad():
        verts = avatar.posed_vertices(avatar.params_with(smile=0.8))
    return avatar, verts


@pytest.mark.parametrize(("seed", "degree"), [(0, 3), (1, 1), (2, 0)])
def test_splats_match_reference(seed: int, degree: int) -> None:
    splats = random_splats(600, seed, degree)
    cam = orbit_camera(30.0 * seed - 20.0, 10.0, 0.7, fov_y_deg=35.0, width=96, height=72)
    bg = (0.2, 0.3, 0.4)
    ref = render(splats, cam, background=bg, backend="torch")
    out = FastSplatRenderer().render(splats, cam, background=bg)
    assert out.rgb.shape == (72, 96, 3) and out.alpha.shape == (72, 96) and out.image.dtype == np.uint8
    assert ref.alpha.max() > 0.5  # the scene is really visible
    assert psnr(out.rgb, ref.rgb.numpy()) > 40.0, f"PSNR {psnr(out.rgb, ref.rgb.numpy()):.1f} dB"
    torch.testing.assert_close(torch.from_numpy(out.alpha), ref.alpha, atol=2e-3, rtol=0)
    expected_u8 = (ref.rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy().astype(int)
    assert np.abs(out.image.astype(int) - expected_u8).max() <= 1
    visible = int((ref.radii > 0).sum())
    assert 0 < out.visible <= visible


def test_demo_avatar_matches_reference_at_512(demo) -> None:
    """The fused deform + projection path on the real demo avatar, posed, against the numba training backend."""
    avatar, verts = demo
    target, distance = framing(verts, 20.0)
    cam = orbit_camera(15.0, 5.0, distance, target=target, fov_y_deg=20.0, width=512, height=512)
    with torch.no_grad():
        ref = render(avatar.gaussians.deform(verts, avatar.head.faces), cam, backend="cpu")
    fast = FastAvatarRenderer(avatar.gaussians, avatar.head.faces)
    out = fast.render(verts, cam)
    assert ref.alpha.mean() > 0.2  # the head fills a good part of the picture
    assert psnr(out.rgb, ref.rgb.numpy()) > 40.0, f"PSNR {psnr(out.rgb, ref.rgb.numpy()):.1f} dB"
    assert np.abs(out.alpha - ref.alpha.numpy()).max() < 5e-3
    assert set(fast.last_timings) == {"project", "sort", "bin", "composite"}
    again = fast.render(verts, cam)  # reused buffers give the same picture
    assert np.array_equal(again.image, out.image)


def test_avatar_path_equals_splat_path_and_colour_override(demo) -> None:
    avatar, verts = demo
    cam = orbit_camera(-40.0, -10.0, 0.55, target=tuple(verts.mean(0).tolist()), fov_y_deg=25.0, width=160, height=128)
    with torch.no_grad():
        splats = avatar.gaussians.deform(verts, avatar.head.faces)
    by_avatar = FastAvatarRenderer(avatar.gaussians, avatar.head.faces).render(verts, cam, (0.0, 0.0, 0.0))
    by_splats = FastSplatRenderer().render(splats, cam, (0.0, 0.0, 0.0))
    assert psnr(by_avatar.rgb, by_splats.rgb) > 60.0
    colors = np.zeros((avatar.gaussians.count, 3), dtype=np.float32)
    colors[:, 1] = 1.0  # everything pure green
    green = FastAvatarRenderer(avatar.gaussians, avatar.head.faces).render(verts, cam, (0.0, 0.0, 0.0), colors=colors)
    np.testing.assert_allclose(green.rgb[..., 1], green.alpha, atol=1e-5)
    assert float(np.abs(green.rgb[..., [0, 2]]).max()) == 0.0
    with pytest.raises(ValueError, match="colors must be"):
        FastSplatRenderer().render(splats, cam, colors=colors[:10])


def test_banded_picture_equals_whole_and_abort_stops_between_bands(demo) -> None:
    """With an abort check the picture is composited in bands of tile rows: the same pixels; abort() -> None."""
    avatar, verts = demo
    cam = orbit_camera(0.0, 0.0, 0.6, target=tuple(verts.mean(0).tolist()), fov_y_deg=25.0, width=200, height=120)
    fast = FastAvatarRenderer(avatar.gaussians, avatar.head.faces)
    whole = fast.render(verts, cam)
    banded = fast.render(verts, cam, abort=lambda: False)
    assert np.array_equal(whole.image, banded.image) and np.array_equal(whole.alpha, banded.alpha)
    asked: list[int] = []

    def abort() -> bool:
        asked.append(1)
        return len(asked) > 2

    assert fast.render(verts, cam, abort=abort) is None
    assert len(asked) == 3, "checked before each band until it said stop"


def test_depth_order_is_a_stable_sort_of_positive_depths() -> None:
    from engine.render.fast_kernels import depth_order

    rng = np.random.default_rng(3)
    depth = np.round(rng.uniform(0.05, 40.0, 5000), 2).astype(np.float32)  # many ties
    subset = np.sort(rng.choice(5000, 3000, replace=False))
    got = depth_order(depth.view(np.uint32), subset)
    np.testing.assert_array_equal(got, subset[np.argsort(depth[subset], kind="stable")])
