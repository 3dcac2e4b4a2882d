"""The view pipeline (engine/view): backends agree, caches, overlays, wireframe, progressive render loop."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.avatar.demo import load_demo_avatar
from engine.avatar.posing import Pose
from engine.io.images import psnr
from engine.view import FrameBudget, FramePipeline, RenderLoop, ViewOptions, ViewRequest, framing_camera, posed_params
from engine.view.overlays import draw_wireframe


@pytest.fixture(scope="module")
def avatar():
    return load_demo_avatar()


@pytest.fixture(scope="module")
def cpu():
    pipe = FramePipeline("cpu")
    yield pipe
    pipe.release()


def request(avatar, serial=1, pose=Pose(), size=512, camera=None, **kw) -> ViewRequest:
    cam = camera or framing_camera(avatar)
    return ViewRequest(serial, avatar, avatar.params, pose, 0, (), cam, size, size, **kw)


def test_gl_view_agrees_with_cpu_rasterizer_on_demo_avatar(avatar, cpu):
    gl = FramePipeline("gl")
    try:
        if gl.backend != "gl":
            pytest.skip(f"no OpenGL context here: {gl.note}")
        req = request(avatar, pose=Pose(expressions={"smile": 0.6}, jaw=0.15, yaw=12.0))
        gl_frame, cpu_frame = gl.render(req), cpu.render(req)
    finally:
        gl.release()
    assert gl_frame.image.shape == cpu_frame.image.shape == (512, 512, 3)
    assert (gl_frame.backend, cpu_frame.backend) == ("gl", "cpu")
    bg = np.round(np.array(req.view.background) * 255)
    assert (np.abs(gl_frame.image.astype(float) - bg).max(axis=2) > 20).mean() > 0.1, "the head covers the view"
    assert psnr(gl_frame.image, cpu_frame.image) > 30.0


def test_posed_geometry_is_the_engine_deform_of_posed_params(avatar, cpu):
    req = request(avatar, pose=Pose(expressions={"frown": 0.8}, pitch=-10.0, gaze_x=12.0))
    splats = cpu.geometry(req, {}).splats
    with torch.no_grad():
        ref = avatar.splats(posed_params(avatar, avatar.params, req.pose, 0))
    for name in ("means", "quats", "scales", "opacities", "sh"):
        torch.testing.assert_close(getattr(splats, name), getattr(ref, name), rtol=1e-5, atol=1e-6)


def test_camera_change_reuses_geometry(avatar, cpu):
    timings: dict[str, float] = {}
    first = cpu.geometry(request(avatar, pose=Pose(expressions={"pucker": 0.5})), timings)
    assert "flame" in timings
    orbit = framing_camera(avatar).orbited(30, 10)
    again: dict[str, float] = {}
    second = cpu.geometry(request(avatar, serial=2, pose=Pose(expressions={"pucker": 0.5}), camera=orbit), again)
    assert second is first and "flame" not in again
    moved: dict[str, float] = {}
    third = cpu.geometry(request(avatar, serial=3, pose=Pose(expressions={"pucker": 0.6})), moved)
    assert third is not first and "flame" in moved


def test_overlays_change_only_the_head(avatar, cpu):
    plain = cpu.render(request(avatar, size=256)).image
    comp = cpu.render(request(avatar, size=256, view=ViewOptions(components=True))).image
    wire = cpu.render(request(avatar, size=256, view=ViewOptions(wireframe=True))).image
    red = np.tile(np.array([[1.0, 0.0, 0.0]], np.float32), (avatar.gaussians.count, 1))
    tinted = cpu.render(request(avatar, size=256, overlay_colors=red, overlay_opacity=1.0)).image
    head = np.abs(plain.astype(int) - np.round(np.array(ViewOptions().background) * 255)).max(axis=2) > 20
    for img in (comp, wire, tinted):
        diff = np.abs(img.astype(int) - plain.astype(int)).max(axis=2)
        assert (diff[head] > 10).mean() > 0.05
        assert diff[:10, :10].max() == 0
    assert tinted[head][:, 0].mean() > 2 * tinted[head][:, 1].mean(), "a red overlay makes the head red"


def test_scaled_request_renders_smaller_and_abort_drops_the_picture(avatar, cpu):
    req = request(avatar, size=320)
    half = cpu.render(replace(req, scale=0.5))
    assert half.image.shape == (160, 160, 3) and not half.full and half.camera.width == 160
    full = cpu.render(req).camera
    assert half.view_camera.width == 320 and half.view_camera.fx == pytest.approx(full.fx), "the same view, full size"
    assert cpu.render(req, abort=lambda: True) is None


def test_draw_wireframe_draws_front_edges_only(avatar):
    cam = framing_camera(avatar).camera(128, 128)
    with torch.no_grad():
        verts = avatar.posed_vertices()
    blank = np.zeros((128, 128, 3), np.uint8)
    front = draw_wireframe(blank, verts, avatar.head.faces, cam)
    flipped = draw_wireframe(blank, verts, avatar.head.faces[:, [0, 2, 1]], cam)
    assert blank.max() == 0 and front.max() > 0
    assert (front.max(axis=2) > 0).sum() != (flipped.max(axis=2) > 0).sum(), "winding decides what is drawn"


def test_frame_budget_picks_the_largest_scale_that_fits():
    budget = FrameBudget(budget_ms=16.0, fixed_ms=6.0, ms_per_mpx=40.0)
    # room 10 ms / (40 ms per Mpx × 0.9216 Mpx) -> scale 0.52, down to a multiple of 1/16
    assert budget.scale(1280, 720) == 0.5
    assert budget.scale(64, 64) == 1.0
    assert FrameBudget(budget_ms=16.0, fixed_ms=20.0).scale(1280, 720) == 0.25, "no room: the smallest scale"


def test_frame_budget_learns_fixed_and_per_pixel_costs(avatar):
    budget = FrameBudget(fixed_ms=100.0, ms_per_mpx=1000.0, smoothing=1.0)
    pipe = FramePipeline("cpu")
    try:
        first = pipe.render(request(avatar, size=200))
        assert "compose" in first.timings
        budget.observe(first)
        assert (budget.fixed_ms, budget.ms_per_mpx) == (100.0, 1000.0), "a first frame after composing is a one-off"
        frame = pipe.render(request(avatar, serial=2, size=200, pose=Pose(expressions={"smile": 0.2})))
    finally:
        pipe.release()
    budget.observe(frame)
    pixel = sum(v for k, v in frame.timings.items() if k in ("bin", "composite"))
    assert budget.ms_per_mpx == pytest.approx(pixel / 0.04)
    assert budget.fixed_ms == pytest.approx(frame.timings["total"] - pixel)


def collect(loop_kwargs: dict, requests: list[ViewRequest], gap_s: float, done) -> tuple[list, RenderLoop]:
    frames: list = []
    finished = threading.Event()

    def on_frame(frame) -> None:
        frames.append(frame)
        if done(frame):
            finished.set()

    loop = RenderLoop("cpu", on_frame=on_frame, **loop_kwargs).start()
    try:
        for req in requests:
            loop.submit(replace(req, issued=time.perf_counter()))
            time.sleep(gap_s)
        assert finished.wait(120), f"no final frame; got {[(f.serial, f.scale) for f in frames]}"
    finally:
        loop.stop()
    return frames, loop


def test_render_loop_drops_stale_requests(avatar):
    cam = framing_camera(avatar)
    requests = [request(avatar, serial=s, size=128, camera=cam, pose=Pose(expressions={"smile": s / 20}))
                for s in range(1, 21)]
    frames, loop = collect({"budget": FrameBudget(budget_ms=float("inf"))}, requests, 0.0,
                           lambda f: f.serial == 20)
    serials = [f.serial for f in frames]
    assert serials == sorted(serials) and len(serials) < 20 and loop.dropped == 20 - len(serials)
    assert all(f.full for f in frames), "an unlimited budget renders every frame at full size"


def test_render_loop_is_reduced_while_input_moves_then_refines_the_newest(avatar):
    """A drag of 12 steps: pictures at the budget's reduced size, in order; once it rests, the last at full size."""
    cam = framing_camera(avatar)
    requests = [request(avatar, serial=s, size=256, camera=cam, pose=Pose(expressions={"smile": s / 12}))
                for s in range(1, 13)]
    frames, _ = collect({"budget": FrameBudget(budget_ms=0.5), "pause_ms": 30.0}, requests, 0.01,
                        lambda f: f.serial == 12 and f.full)
    serials = [f.serial for f in frames]
    assert serials == sorted(serials), "never an older pose after a newer one"
    assert frames[0].scale == 0.25 and frames[0].image.shape == (64, 64, 3), "the first picture of a drag is reduced"
    assert frames[-1].full and frames[-1].image.shape == (256, 256, 3) and frames[-1].serial == 12


def test_render_loop_reports_a_renderer_it_cannot_make():
    failures: list[Exception] = []
    loop = RenderLoop("vulkan", on_failed=failures.append).start()
    loop.stop()
    assert len(failures) == 1 and "unknown viewport backend 'vulkan'" in str(failures[0])
