"""The view pipeline (engine/view): backends agree, caches, overlays, the selection highlight (visible inside the
selection by ΔE in Oklab × 100, nothing outside it, off with the view option, following base Gaussians through
layers), wireframe, progressive render loop."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.avatar.demo import load_demo_avatar
from engine.avatar.posing import Pose
from engine.edit.colour_space import image_delta_e as delta_e
from engine.edit.colour_space import srgb_to_oklab
from engine.edit.layers import EditLayer, compose, composed_origin
from engine.head.components import COLOURS, LABEL
from engine.io.images import psnr
from engine.render.camera import Camera
from engine.semantics.mask_render import render_weights
from engine.view import FrameBudget, FramePipeline, RenderLoop, ViewOptions, ViewRequest, framing_camera, posed_params
from engine.view.overlays import (
    SELECTION_ACCENTS,
    WIRE_ALPHA,
    WIRE_RGB,
    draw_wireframe,
    highlight_selection,
    selection_accent,
)


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


SEL_SIZE = 256


def tilted(avatar, **kw) -> ViewRequest:
    """A request from a little above (more hair in view)."""
    return request(avatar, size=SEL_SIZE, camera=framing_camera(avatar).orbited(0, 15), **kw)


def coverage(avatar, req: ViewRequest, weights: torch.Tensor) -> np.ndarray:
    """[H, W] share of each pixel covered by the selected Gaussians."""
    with torch.no_grad():
        splats = avatar.splats(avatar.frame_params(0))
    return render_weights(splats, req.camera.camera(SEL_SIZE, SEL_SIZE), weights, backend="cpu")[..., 0].numpy()


def test_hair_selection_is_visible_inside_the_hair_and_nowhere_else(avatar, cpu):
    hair = (avatar.gaussians.labels == LABEL["hair"]).float()
    plain = tilted(avatar)
    before = cpu.render(plain).image
    shown = cpu.render(replace(plain, selection=hair)).image
    cover = coverage(avatar, plain, hair)
    inside = cover >= 0.9
    assert inside.sum() > 500, "the hair covers part of the view"
    de = delta_e(before, shown)
    assert np.median(de[inside]) > 25 and (de[inside] > 10).mean() > 0.95, "a visible change inside the hair"
    assert de[cover < 1e-4].max() < 1.0, "pixels the hair does not touch are unchanged"
    hidden = cpu.render(replace(plain, selection=hair, view=ViewOptions(selection=False))).image
    np.testing.assert_array_equal(hidden, before)


def test_the_accent_is_the_one_farthest_from_what_is_under_it():
    lab = lambda c: srgb_to_oklab(torch.tensor(np.asarray(c, np.float32)))
    for name, rgb in COLOURS.items():
        under = np.array([rgb], np.float32) / 255
        accent = selection_accent(under)
        distances = [float(torch.linalg.norm(lab(a) - lab(under[0]))) for a in SELECTION_ACCENTS]
        assert float(torch.linalg.norm(lab(accent) - lab(under[0]))) == pytest.approx(max(distances)), name
        assert max(distances) > 0.25, f"{name}: the accent stands out"
    cyan = np.tile(SELECTION_ACCENTS[0], (10, 1))
    assert not np.array_equal(selection_accent(cyan), SELECTION_ACCENTS[0]), "never the colour already there"
    out = highlight_selection(cyan, np.arange(10) < 4)
    np.testing.assert_array_equal(out[4:], cyan[4:])
    assert float(torch.linalg.norm(lab(out[0]) - lab(cyan[0]))) > 0.15


def test_the_highlight_follows_base_gaussians_through_hiding_and_adding_layers(avatar, cpu):
    labels = avatar.gaussians.labels
    hair_idx = torch.nonzero(labels == LABEL["hair"])[:, 0]
    hide = EditLayer("hide some hair", "adjust", hidden=hair_idx[::2])
    add = EditLayer("add", "edit", added=avatar.gaussians.subset(torch.arange(50)))
    layers = [hide, add]
    origin = composed_origin(avatar.gaussians.count, layers)
    composed = compose(avatar.gaussians, layers)
    assert origin.shape == (composed.count,) and int((origin < 0).sum()) == 50
    kept = origin[origin >= 0]
    torch.testing.assert_close(composed.sh[: kept.numel()], avatar.gaussians.sh[kept])
    hair = (labels == LABEL["hair"]).float()
    req = replace(tilted(avatar), layers=tuple(layers))
    plain, shown = cpu.render(req).image, cpu.render(replace(req, selection=hair)).image
    assert (delta_e(plain, shown) > 10).sum() > 300, "the rest of the hair is still highlighted"


def test_scaled_request_renders_smaller_and_abort_drops_the_picture(avatar, cpu):
    req = request(avatar, size=320)
    half = cpu.render(replace(req, scale=0.5))
    assert half.image.shape == (160, 160, 3) and not half.full and half.camera.width == 160
    full = cpu.render(req).camera
    assert half.view_camera.width == 320 and half.view_camera.fx == pytest.approx(full.fx), "the same view, full size"
    assert cpu.render(req, abort=lambda: True) is None


def test_draw_wireframe_draws_front_edges_only():
    """Two squares side by side in front of a camera at the origin: the left one wound to face the camera, the
    right one away from it. Only the left square's edges are drawn; with every winding flipped, only the right's."""
    cam = Camera(torch.eye(4), fx=64.0, fy=64.0, cx=32.0, cy=32.0, width=64, height=64)
    corners = lambda x0: [[x0, -0.25, 2.0], [x0 + 0.5, -0.25, 2.0], [x0 + 0.5, 0.25, 2.0], [x0, 0.25, 2.0]]
    verts = torch.tensor(corners(-0.6) + corners(0.1))
    # (v1 - v0) x (v2 - v0) of [0, 2, 1] points along -z, toward the camera; of [4, 5, 6] along +z, away from it
    faces = torch.tensor([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7]])
    blank = np.zeros((64, 64, 3), np.uint8)
    drawn = lambda f: draw_wireframe(blank, verts, f, cam).max(axis=2) > 0
    front, flipped = drawn(faces), drawn(faces[:, [0, 2, 1]])
    assert blank.max() == 0, "the input image is not drawn on"
    # the left square spans columns 12.8-28.8, the right one 35.2-51.2 (u = 32 + 32 x), rows 24-40 (v = 32 + 32 y)
    assert front[:, :32].sum() > 60 and not front[:, 32:].any(), "only the square facing the camera"
    assert flipped[:, 32:].sum() > 60 and not flipped[:, :32].any(), "winding decides what is drawn"
    # its outline and diagonal, in the wireframe colour at WIRE_ALPHA over black
    assert front[24, 12:29].all() and front[40, 13:29].all() and front[24:40, 12].all() and front[24:40, 28].all()
    assert front[32, 20] and not front[32, 14], "the diagonal, and nothing inside the triangles"
    np.testing.assert_array_equal(draw_wireframe(blank, verts, faces, cam)[24, 20],
                                  (WIRE_ALPHA * WIRE_RGB).astype(np.uint8))


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
