"""Video and frame export: decoded mp4s match the renderer, cancel leaves nothing, side by side and mask."""

from __future__ import annotations

import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from engine.avatar.avatar import Avatar
from engine.avatar.gaussians import BoundGaussians
from engine.export.camera_paths import CameraPath, clip_times, path_cameras
from engine.export.video import ExportCancelled, VideoJob, VideoSettings, export_frames, export_video, frame_count
from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.io.images import psnr, to_uint8
from engine.render.camera import Camera
from engine.render.rasterize import render
from engine.view.camera import frame_points
from tests.helpers_head import tiny_flame_arrays


def tiny_avatar(n: int = 300, seed: int = 0, head: HeadModel | None = None) -> Avatar:
    """Smooth, fairly large Gaussians on the 4-triangle test head (compresses well, renders fast)."""
    head = head or HeadModel(tiny_flame_arrays(), "tiny", "tiny")
    gen = torch.Generator().manual_seed(seed)
    sh = torch.zeros(n, 16, 3)
    sh[:, 0] = (torch.rand(n, 3, generator=gen) * 0.6 + 0.2 - 0.5) / 0.28209479177387814
    sh[:, 1:4] = torch.randn(n, 3, 3, generator=gen) * 0.05
    g = BoundGaussians(
        binding=torch.randint(0, head.n_faces, (n,), generator=gen),
        xyz=torch.rand(n, 3, generator=gen) - 0.5,
        rotation=torch.randn(n, 4, generator=gen),
        log_scale=torch.full((n, 3), math.log(0.25)) + 0.2 * torch.randn(n, 3, generator=gen),
        opacity_logit=torch.full((n,), 1.5),
        sh=sh,
        labels=torch.randint(0, 13, (n,), generator=gen),
    )
    return Avatar(head, g, head.neutral_params(), "tiny avatar")


def talking(head: HeadModel, frames: int) -> FlameParams:
    p = head.neutral_params(frames)
    t = torch.linspace(0, 1, frames)
    expr = p.expr.clone()
    expr[:, 0] = 2.0 * torch.sin(6.0 * t)
    jaw = p.jaw_pose.clone()
    jaw[:, 0] = 0.2 * t
    return p.with_values(expr=expr, jaw_pose=jaw)


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]



def first_camera(avatar: Avatar, params: FlameParams, path: CameraPath, frames: int, w: int, h: int) -> Camera:
    """The first camera of a clip, framed as the exporter frames it (bounding box of frame 0)."""
    means = avatar.splats(params.frame(0)).means.detach()
    lo, hi = means.min(0).values, means.max(0).values
    target = tuple(float(v) for v in (lo + hi) / 2)
    assert frame_points(means, path.fov_y_deg, w / h)[0] == pytest.approx(target)
    fit = frame_points(means, path.fov_y_deg, w / h)[1]
    return path_cameras(path, frames, w, h, target, fit)[0]


def reference_frame(avatar: Avatar, params: FlameParams, path: CameraPath, frames: int, w: int, h: int) -> np.ndarray:
    with torch.no_grad():
        camera = first_camera(avatar, params, path, frames, w, h)
        return to_uint8(render(avatar.splats(params.frame(0)), camera).rgb)


def test_mp4_decodes_to_expected_frames_and_matches_renderer(tmp_path):
    avatar = tiny_avatar()
    seq = talking(avatar.head, 7)
    path = CameraPath("orbit", sweep_deg=90.0)
    settings = VideoSettings(width=128, height=96, fps=12, renderer="raster")
    seen: list[float] = []
    result = export_video(VideoJob(avatar, seq, path), tmp_path / "talk.mp4", settings,
                          progress=lambda f, _msg: seen.append(f))
    frames = decode(tmp_path / "talk.mp4")
    assert len(frames) == 7 == result.frames
    assert frames[0].shape == (96, 128, 3)
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    expected = reference_frame(avatar, seq, path, 7, 128, 96)
    assert expected.std() > 10, "the reference frame should show the avatar"
    assert psnr(frames[0], expected) > 30.0
    assert psnr(frames[0], frames[-1]) < psnr(frames[0], expected), "the clip should move"
    with av.open(str(tmp_path / "talk.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert float(c.streams.video[0].average_rate) == pytest.approx(12.0)


def test_gl_renderer_frame_matches_rasterizer(tmp_path):
    try:
        import moderngl

        moderngl.create_standalone_context(backend="egl").release()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no EGL context here ({exc})")
    avatar = tiny_avatar()
    settings = VideoSettings(width=128, height=128, duration_s=0.25, fps=8, renderer="gl")
    result = export_video(VideoJob(avatar), tmp_path / "gl.mp4", settings)
    assert result.renderer == "gl" and result.frames == 2
    expected = reference_frame(avatar, avatar.params, CameraPath(), 2, 128, 128)
    assert psnr(decode(tmp_path / "gl.mp4")[0], expected) > 30.0


def test_cancel_leaves_no_partial_file_and_keeps_old_one(tmp_path):
    avatar = tiny_avatar()
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"previous export")
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    settings = VideoSettings(width=64, height=64, fps=10, duration_s=2.0, renderer="raster")
    with pytest.raises(ExportCancelled):
        export_video(VideoJob(avatar, camera_path=CameraPath("orbit")), target, settings, cancel=cancel)
    assert target.read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    with pytest.raises(ExportCancelled):
        export_video(VideoJob(avatar), tmp_path / "new.mp4", settings, cancel=lambda: True)
    assert not (tmp_path / "new.mp4").exists()


def test_error_midway_removes_temp_file(tmp_path, monkeypatch):
    avatar = tiny_avatar()
    from engine.export import video

    def boom(*_a, **_k):
        raise RuntimeError("renderer died")

    monkeypatch.setattr(video, "_overlay", boom)
    settings = VideoSettings(width=64, height=64, mask_overlay=True, duration_s=0.5, renderer="raster")
    with pytest.raises(RuntimeError, match="renderer died"):
        export_video(VideoJob(avatar, mask=torch.ones(avatar.gaussians.count)), tmp_path / "x.mp4", settings)
    assert list(tmp_path.iterdir()) == []


def test_frames_side_by_side_and_mask_overlay(tmp_path):
    original = tiny_avatar()
    sh = original.gaussians.sh.clone()
    sh[:, 0, 2] += 0.6  # bluer DC colour
    brighter = original.gaussians.replace(sh=sh)
    edited = Avatar(original.head, brighter, original.params, "edited")
    mask = torch.zeros(edited.gaussians.count)
    settings = VideoSettings(width=64, height=64, duration_s=0.25, fps=8, side_by_side=True, renderer="raster")
    (tmp_path / "keep.txt").write_text("mine")
    result = export_frames(VideoJob(edited, original=original), tmp_path, settings)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["frame_00000.png", "frame_00001.png", "keep.txt"] and result.frames == 2
    image = np.asarray(Image.open(tmp_path / "frame_00000.png"))
    assert image.shape == (64, 128, 3)
    left, right = image[:, :64].astype(float), image[:, 64:].astype(float)
    expected_left = reference_frame(original, original.params, CameraPath(), 2, 64, 64)
    assert np.abs(left - expected_left).max() <= 1
    assert right[..., 2].mean() > left[..., 2].mean() + 3, "the edited panel is bluer"
    # full mask at full opacity: covered pixels take the mask colour
    mask[:] = 1.0
    overlay = VideoSettings(width=64, height=64, duration_s=0.125, fps=8, mask_overlay=True, mask_opacity=1.0,
                            mask_color=(1.0, 0.0, 0.0), renderer="raster")
    export_frames(VideoJob(edited, mask=mask), tmp_path / "masked", overlay)
    tinted = np.asarray(Image.open(tmp_path / "masked" / "frame_00000.png")).astype(float)
    with torch.no_grad():
        camera = first_camera(edited, edited.params, CameraPath(), 1, 64, 64)
        covered = render(edited.splats(edited.frame_params(0)), camera).alpha > 0.99
    assert covered.sum() > 50
    pixels = tinted[covered.numpy()]
    assert pixels[:, 0].min() >= 250 and pixels[:, 1:].max() <= 5


def test_frame_counts_and_camera_paths(tmp_path):
    avatar = tiny_avatar(n=20)
    held = VideoSettings(fps=10, duration_s=1.5)
    assert frame_count(VideoJob(avatar), held) == 15
    assert frame_count(VideoJob(avatar, talking(avatar.head, 9)), held) == 9
    assert clip_times(CameraPath("orbit"), 4) == [0.0, 0.25, 0.5, 0.75]
    assert clip_times(CameraPath("dolly"), 3) == [0.0, 0.5, 1.0]
    cams = path_cameras(CameraPath("dolly", distance=0.6, end_distance=0.3), 3, 32, 32, (0.0, 0.0, 0.0))
    assert [round(float(c.position.norm()), 4) for c in cams] == [0.6, 0.45, 0.3]
    orbit = path_cameras(CameraPath("orbit", sweep_deg=180.0), 2, 32, 32, (0.0, 0.0, 0.0))
    torch.testing.assert_close(orbit[1].position, torch.tensor([0.0, 0.0, -0.6]), atol=1e-5, rtol=0)
    means = torch.tensor([[-0.1, -0.2, -0.05], [0.1, 0.2, 0.05]])
    _, fit = frame_points(means, 22.0)
    assert fit == pytest.approx(1.15 * 0.2 / math.tan(math.radians(11.0)) + 0.05)
    dolly = path_cameras(CameraPath("dolly"), 2, 32, 32, (0.0, 0.0, 0.0), fit)
    assert float(dolly[0].position.norm()) == pytest.approx(fit, rel=1e-5)
    assert float(dolly[1].position.norm()) == pytest.approx(0.6 * fit, rel=1e-5)
    with pytest.raises(ValueError, match="even"):
        VideoSettings(width=63)
    with pytest.raises(ValueError, match="side-by-side"):
        export_video(VideoJob(avatar), tmp_path / "x.mp4", VideoSettings(side_by_side=True))
    assert list(tmp_path.iterdir()) == []
