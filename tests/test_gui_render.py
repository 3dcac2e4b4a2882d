"""The viewport's render pipeline and thread: GL vs the CPU rasterizer, deform fast path, stale-frame dropping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.render_thread import FramePipeline, RenderRequest, RenderThread, draw_wireframe
from app.session import ViewOptions, framing_camera, posed_params
from engine.avatar.demo import load_demo_avatar
from engine.avatar.posing import Pose


@pytest.fixture(scope="module")
def avatar():
    return load_demo_avatar()


@pytest.fixture(scope="module")
def gl(avatar):
    pipe = FramePipeline("gl")
    if pipe.backend != "gl":
        pytest.skip(f"no OpenGL context here: {pipe.note}")
    yield pipe
    pipe.release()


def request(avatar, serial=1, pose=Pose(), size=512, camera=None, **kw) -> RenderRequest:
    cam = camera or framing_camera(avatar)
    return RenderRequest(serial, avatar, avatar.params, pose, 0, (), cam, size, size, **kw)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean(((a.astype(np.float64) - b.astype(np.float64)) / 255.0) ** 2)
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def test_gl_view_agrees_with_cpu_rasterizer_on_demo_avatar(avatar, gl):
    req = request(avatar, pose=Pose(expressions={"smile": 0.6}, jaw=0.15, yaw=12.0))
    gl_frame = gl.render(req)
    cpu_frame = FramePipeline("cpu").render(req)
    assert gl_frame.image.shape == cpu_frame.image.shape == (512, 512, 3)
    assert (gl_frame.backend, cpu_frame.backend) == ("gl", "cpu")
    bg = np.round(np.array(req.view.background) * 255)
    assert (np.abs(gl_frame.image.astype(float) - bg).max(axis=2) > 20).mean() > 0.1, "the head covers the view"
    assert psnr(gl_frame.image, cpu_frame.image) > 30.0


def test_fast_deform_matches_engine_deform(avatar, gl):
    req = request(avatar, pose=Pose(expressions={"frown": 0.8}, pitch=-10.0, gaze_x=12.0))
    splats, verts, posable = gl.geometry(req, {})
    with torch.no_grad():
        ref = avatar.gaussians.deform(avatar.posed_vertices(posed_params(avatar, avatar.params, req.pose, 0)),
                                      avatar.head.faces)
    for name in ("means", "quats", "scales", "opacities", "sh"):
        torch.testing.assert_close(getattr(splats, name), getattr(ref, name), rtol=1e-5, atol=1e-6)


def test_camera_change_reuses_geometry(avatar, gl):
    timings: dict[str, float] = {}
    req = request(avatar, pose=Pose(expressions={"pucker": 0.5}))
    first, _, _ = gl.geometry(req, timings)
    assert "flame" in timings
    orbit = framing_camera(avatar).orbited(30, 10)
    again: dict[str, float] = {}
    second, _, _ = gl.geometry(request(avatar, serial=2, pose=Pose(expressions={"pucker": 0.5}), camera=orbit), again)
    assert second is first and "flame" not in again
    moved: dict[str, float] = {}
    third, _, _ = gl.geometry(request(avatar, serial=3, pose=Pose(expressions={"pucker": 0.6})), moved)
    assert third is not first and "flame" in moved


def test_overlays_change_only_the_head(avatar, gl):
    plain = gl.render(request(avatar, size=256)).image
    comp = gl.render(request(avatar, size=256, view=ViewOptions(components=True))).image
    wire = gl.render(request(avatar, size=256, view=ViewOptions(wireframe=True))).image
    red = np.tile(np.array([[1.0, 0.0, 0.0]], np.float32), (avatar.gaussians.count, 1))
    tinted = gl.render(request(avatar, size=256, overlay_colors=red, overlay_opacity=1.0)).image
    head = np.abs(plain.astype(int) - np.round(np.array(ViewOptions().background) * 255)).max(axis=2) > 20
    for img in (comp, wire, tinted):
        diff = np.abs(img.astype(int) - plain.astype(int)).max(axis=2)
        assert (diff[head] > 10).mean() > 0.05
        assert diff[:10, :10].max() == 0
    assert tinted[head][:, 0].mean() > 2 * tinted[head][:, 1].mean(), "a red overlay makes the head red"


def test_draw_wireframe_draws_front_edges_only(avatar):
    cam = framing_camera(avatar).camera(128, 128)
    with torch.no_grad():
        verts = avatar.posed_vertices()
    blank = np.zeros((128, 128, 3), np.uint8)
    front = draw_wireframe(blank, verts, avatar.head.faces, cam)
    flipped = draw_wireframe(blank, verts, avatar.head.faces[:, [0, 2, 1]], cam)
    assert blank.max() == 0 and front.max() > 0
    assert (front.max(axis=2) > 0).sum() != (flipped.max(axis=2) > 0).sum(), "winding decides what is drawn"


def test_render_thread_drops_stale_requests(qtbot, avatar):
    thread = RenderThread("gl")
    frames = []
    thread.frameReady.connect(frames.append)
    cam = framing_camera(avatar)
    requests = [request(avatar, serial=s, size=128, camera=cam, pose=Pose(expressions={"smile": s / 20}))
                for s in range(1, 21)]
    thread.start()
    try:
        for req in requests:  # far faster than one render: most are replaced before they are drawn
            thread.submit(req)
        qtbot.waitUntil(lambda: bool(frames) and frames[-1].serial == 20, timeout=60_000)
    finally:
        thread.stop()
    serials = [f.serial for f in frames]
    assert serials == sorted(serials) and len(serials) < 20 and thread.dropped == 20 - len(serials)
