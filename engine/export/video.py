"""Video and frame-sequence export: render a FLAME sequence (a file, a recorded take, or the current
expression held) along a camera path, optionally side by side (original | edited) and with a mask
overlay, and encode it to H.264 mp4 through PyAV (or to numbered PNGs).

Frames are rendered by the OpenGL splat renderer when an EGL context can be had (much faster) and by
engine.render.rasterize.render otherwise. Output goes to a hidden temporary file beside the target and
is renamed into place only when complete: a cancelled or failed export leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.avatar.flame_npz import load_flame_params
from engine.export.camera_paths import CameraPath, path_cameras
from engine.head.params import FlameParams
from engine.io.atomic import FileFormatError, atomic_write
from engine.io.images import to_uint8
from engine.render.camera import Camera
from engine.render.rasterize import render
from engine.render.splats import Splats
from engine.view.camera import frame_points
from engine.edit.layers import PoseOffset
from engine.view.posing import with_layer_offset

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]
RENDERERS: tuple[str, ...] = ("auto", "gl", "fast", "raster")


class ExportCancelled(Exception):
    """The export was cancelled; no output file was left behind."""


@dataclass(frozen=True)
class VideoSettings:
    """How a clip is rendered and encoded."""

    width: int = 512  # width of one panel in pixels (side by side doubles the video width); even for H.264
    height: int = 512  # frame height in pixels; even for H.264
    fps: float = 25.0  # frames per second
    crf: int = 18  # H.264 constant rate factor: 0 lossless … 51 worst; 18 looks lossless, 23 is x264's default
    preset: str = "medium"  # x264 speed/size trade-off: ultrafast, veryfast, fast, medium, slow, veryslow
    duration_s: float = 4.0  # clip length when a single expression is held (camera path only)
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)  # rgb in [0, 1] behind the avatar
    side_by_side: bool = False  # original avatar on the left, edited on the right
    mask_overlay: bool = False  # tint the job's per-Gaussian mask over the edited panel
    mask_color: tuple[float, float, float] = (1.0, 0.25, 0.2)  # overlay tint
    mask_opacity: float = 0.5  # overlay strength where the mask is 1
    renderer: str = "auto"  # "gl" (OpenGL via EGL), "fast" (numba CPU), "raster" (rasterize.render),
    # "auto": gl on a hardware OpenGL driver, else fast (on Mesa's software OpenGL the CPU path is faster)
    raster_backend: str = "auto"  # rasterize.render backend when renderer is "raster"

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise ValueError(f"video size must be positive and even, got {self.width}x{self.height}")
        if not 0 < self.fps <= 240:
            raise ValueError(f"frame rate must lie in (0, 240], got {self.fps}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf (quality) must lie in 0..51, got {self.crf}")
        if self.renderer not in RENDERERS:
            raise ValueError(f"unknown renderer {self.renderer!r}; choose one of {', '.join(RENDERERS)}")
        if self.duration_s <= 0:
            raise ValueError(f"duration must be positive, got {self.duration_s}")


@dataclass(frozen=True)
class VideoJob:
    """What to render."""

    avatar: Avatar  # the avatar shown (the edited one, with its layers composed)
    sequence: FlameParams | None = None  # T frames to play (a file or a recorded take); None = avatar.params
    camera_path: CameraPath = field(default_factory=CameraPath)  # how the camera moves
    original: Avatar | None = None  # left panel when side by side (same head; no expression offset applied)
    mask: Tensor | None = None  # [N] per-Gaussian weights in [0, 1] of `avatar`, for the overlay
    offset: PoseOffset | None = None  # the edit layers' expression and jaw offsets, added to every frame of `avatar`


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and what it cost."""

    path: Path  # the mp4 file, or the folder of PNG frames
    frames: int  # frames written
    width: int  # frame width in pixels (both panels when side by side)
    height: int  # frame height in pixels
    renderer: str  # "gl", "fast" or "raster"
    render_s: float  # seconds spent posing and rendering
    encode_s: float  # seconds spent encoding and writing
    pose_s: float = 0.0  # of render_s, seconds spent posing the avatar


def retarget(avatar: Avatar, sequence: FlameParams) -> FlameParams:
    """A driving sequence on the avatar's identity: expression and poses from `sequence`, shape and
    static offset from the avatar; per-vertex dynamic offsets of another subject are dropped."""
    seq = avatar.head.fit_params(sequence, "driving sequence")
    own = avatar.params
    dyn = seq.dynamic_offset
    if dyn is not None and (dyn.shape[1] != avatar.head.n_verts or not torch.equal(seq.shape, own.shape)):
        dyn = None
    return seq.with_values(shape=own.shape, static_offset=own.static_offset, dynamic_offset=dyn)


def load_sequence(path: str | os.PathLike, avatar: Avatar) -> FlameParams:
    """A FLAME sequence file (flame_param.npz layout) retargeted onto the avatar; FileFormatError naming the
    file when it cannot be read or does not fit the avatar's head."""
    try:
        return retarget(avatar, load_flame_params(path))
    except FileFormatError:
        raise
    except ValueError as exc:
        raise FileFormatError(path, f"does not fit this avatar ({exc})") from None


def frame_count(job: VideoJob, settings: VideoSettings) -> int:
    """Frames in the clip: the sequence's frames, or duration × fps when one expression is held."""
    seq = job.sequence if job.sequence is not None else job.avatar.params
    return seq.frames if seq.frames > 1 else max(1, round(settings.duration_s * settings.fps))


class _FrameRenderer:
    """Renders one panel: float rgb [H, W, 3] and mask coverage [H, W] (None without a mask)."""

    def __init__(self, settings: VideoSettings, gl_context: object | None) -> None:
        self.name = "raster"
        self._gl = None
        self._fast = None
        self._backend = settings.raster_backend
        if settings.renderer in ("auto", "gl"):
            try:
                from engine.render.gl_splats import GLSplatRenderer, is_software_renderer

                self._gl = GLSplatRenderer(settings.width, settings.height, ctx=gl_context)  # type: ignore[arg-type]
                self.name = "gl"
                if settings.renderer == "auto" and gl_context is None and is_software_renderer(self._gl.ctx):
                    self.close()
            except Exception as exc:
                if settings.renderer == "gl":
                    raise RuntimeError(f"the OpenGL renderer is not available here ({exc})") from exc
        if self._gl is None and settings.renderer in ("auto", "fast"):
            from engine.render.fast_view import FastSplatRenderer

            self._fast, self.name = FastSplatRenderer(), "fast"

    def draw(self, splats: Splats, camera: Camera, background: tuple[float, float, float],
             mask: Tensor | None) -> tuple[np.ndarray, np.ndarray | None]:
        if self._gl is not None:
            rgb, _ = self._gl.render_float(splats, camera, background)
            cover = None
            if mask is not None:
                grey = mask.detach().float().cpu()[:, None].expand(-1, 3)
                cover = self._gl.render_float(splats, camera, (0.0, 0.0, 0.0), colors=grey)[0][..., 0]
            return rgb, cover
        if self._fast is not None:
            rgb = self._fast.render(splats, camera, background).rgb
            cover = None
            if mask is not None:
                grey = mask.detach().float().cpu()[:, None].expand(-1, 3)
                cover = self._fast.render(splats, camera, (0.0, 0.0, 0.0), colors=grey).rgb[..., 0]
            return rgb, cover
        feats = mask.detach().to(splats.means)[:, None] if mask is not None else None
        out = render(splats, camera, background, features=feats, backend=self._backend)
        cover = out.features[..., 0].cpu().numpy() if out.features is not None else None
        return out.rgb.cpu().numpy(), cover

    def close(self) -> None:
        if self._gl is not None:
            self._gl.release()
            self._gl = None


def _overlay(rgb: np.ndarray, cover: np.ndarray, settings: VideoSettings) -> np.ndarray:
    """rgb [H, W, 3] tinted by settings.mask_color where the mask coverage [H, W] is high."""
    k = np.clip(cover, 0.0, 1.0)[..., None] * settings.mask_opacity
    return rgb * (1.0 - k) + k * np.asarray(settings.mask_color, dtype=np.float32)


def _check_job(job: VideoJob, settings: VideoSettings) -> None:
    if settings.side_by_side and job.original is None:
        raise ValueError("side-by-side export needs the original avatar (job.original)")
    if settings.mask_overlay:
        if job.mask is None:
            raise ValueError("mask overlay needs a per-Gaussian mask (job.mask)")
        n = job.avatar.gaussians.count
        assert job.mask.shape == (n,), f"mask must be [N] = [{n}], got {tuple(job.mask.shape)}"


@dataclass
class Timings:
    """Seconds spent so far by an export, and the renderer it used."""

    render: float = 0.0  # posing and rendering
    pose: float = 0.0  # of which posing (FLAME + binding to world-space Gaussians)
    encode: float = 0.0  # encoding and writing
    renderer: str = ""  # "gl", "fast" or "raster"


def clip_cameras(path: CameraPath, frames: int, settings: VideoSettings, means: Tensor) -> list[Camera]:
    """The clip's cameras, framed on the first frame's Gaussian centres means [N, 3] as every view is."""
    target, fit = frame_points(means, path.fov_y_deg, settings.width / settings.height)
    return path_cameras(path, frames, settings.width, settings.height, target, fit)


def iter_frames(
    job: VideoJob,
    settings: VideoSettings,
    gl_context: object | None = None,
    timings: Timings | None = None,
) -> Generator[np.ndarray, None, None]:
    """Yield every frame of the clip as uint8 [H, W(·2), 3]; adds render seconds to timings.render."""
    _check_job(job, settings)
    seq = job.sequence if job.sequence is not None else job.avatar.params
    n = frame_count(job, settings)
    renderer = _FrameRenderer(settings, gl_context)
    if timings is not None:
        timings.renderer = renderer.name
    poser = _Poser(job, seq, settings.side_by_side, timings)
    mask = job.mask if settings.mask_overlay else None
    try:
        with torch.no_grad():
            start = time.perf_counter()
            cameras = clip_cameras(job.camera_path, n, settings, poser(0)[0].means)
            if timings is not None:
                timings.render += time.perf_counter() - start
            for i, camera in enumerate(cameras):
                start = time.perf_counter()
                image = _render_frame(poser, settings, renderer, mask, i, camera)
                if timings is not None:
                    timings.render += time.perf_counter() - start
                yield image
    finally:
        renderer.close()


def _frame_params(seq: FlameParams, i: int, offset: PoseOffset | None) -> FlameParams:
    return with_layer_offset(seq.frame(i if seq.frames > 1 else 0), offset)


class _Poser:
    """World-space Gaussians of the edited (and original) avatar per clip frame; a held frame is posed once."""

    def __init__(self, job: VideoJob, seq: FlameParams, with_original: bool, timings: Timings | None) -> None:
        self.job, self.seq, self.with_original, self.timings = job, seq, with_original, timings
        self._index = -1
        self._posed: tuple[Splats, Splats | None] | None = None

    def __call__(self, i: int) -> tuple[Splats, Splats | None]:
        index = i if self.seq.frames > 1 else 0
        if index != self._index or self._posed is None:
            start = time.perf_counter()
            # One thread: torch's OpenMP pool fighting the renderer's threads made posing 30-100x slower.
            with threadpool_limits(limits=1):
                edited = self.job.avatar.splats(_frame_params(self.seq, index, self.job.offset))
                original = None
                if self.with_original and self.job.original is not None:
                    original = self.job.original.splats(_frame_params(self.seq, index, None))
            self._index, self._posed = index, (edited, original)
            if self.timings is not None:
                self.timings.pose += time.perf_counter() - start
        return self._posed


def _render_frame(poser: _Poser, settings: VideoSettings, renderer: _FrameRenderer, mask: Tensor | None,
                  i: int, camera: Camera) -> np.ndarray:
    splats, original = poser(i)
    rgb, cover = renderer.draw(splats, camera, settings.background, mask)
    if cover is not None:
        rgb = _overlay(rgb, cover, settings)
    if original is not None:
        left, _ = renderer.draw(original, camera, settings.background, None)
        rgb = np.concatenate([left, rgb], axis=1)
    return to_uint8(rgb)


def _run(frames: Generator[np.ndarray, None, None], n: int, write: Callable[[np.ndarray], None],
         progress: ProgressFn | None, cancel: CancelFn | None, timings: Timings) -> int:
    """Feed frames to write, reporting progress and honouring cancel; returns the frames written."""
    done = 0
    try:
        if cancel is not None and cancel():
            raise ExportCancelled("export cancelled before the first frame")
        for image in frames:
            start = time.perf_counter()
            write(image)
            timings.encode += time.perf_counter() - start
            done += 1
            if progress is not None:
                progress(done / n, f"frame {done}/{n}")
            if cancel is not None and cancel():
                raise ExportCancelled(f"export cancelled after {done} of {n} frames")
    finally:
        frames.close()  # releases the renderer now, not at garbage collection
    return done


def export_video(
    job: VideoJob,
    path: str | os.PathLike,
    settings: VideoSettings = VideoSettings(),
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    gl_context: object | None = None,
) -> ExportResult:
    """Render the clip and encode it to an H.264 mp4 at path (replaced only when complete).

    Raises ExportCancelled when cancel() turns true; the target is then left as it was.
    gl_context: a moderngl context to share (the app's), else a headless EGL one is made when possible.
    """
    import av

    _check_job(job, settings)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    n = frame_count(job, settings)
    width = settings.width * (2 if settings.side_by_side else 1)
    timings = Timings()
    with atomic_write(target) as fh:
        container = av.open(fh, mode="w", format="mp4")
        try:
            stream = container.add_stream("libx264", rate=Fraction(settings.fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width, settings.height, "yuv420p"
            stream.options = {"crf": str(settings.crf), "preset": settings.preset}

            def write(image: np.ndarray) -> None:
                for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)

            done = _run(iter_frames(job, settings, gl_context, timings), n, write, progress, cancel, timings)
            start = time.perf_counter()
            for packet in stream.encode(None):
                container.mux(packet)
        except BaseException:
            with contextlib.suppress(Exception):
                container.close()
            raise
        container.close()
        timings.encode += time.perf_counter() - start
    return ExportResult(target, done, width, settings.height, timings.renderer, timings.render, timings.encode,
                        timings.pose)


def export_frames(
    job: VideoJob,
    folder: str | os.PathLike,
    settings: VideoSettings = VideoSettings(),
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    gl_context: object | None = None,
    prefix: str = "frame_",
) -> ExportResult:
    """Render the clip to folder/<prefix>00000.png, … . Frames are staged in a hidden folder and moved
    in only when all are done; on cancel or error nothing is added to folder."""
    from PIL import Image

    _check_job(job, settings)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    n = frame_count(job, settings)
    timings = Timings()
    stage = Path(tempfile.mkdtemp(prefix=".frames.", suffix=".part", dir=out))
    names: list[str] = []

    def write(image: np.ndarray) -> None:
        name = f"{prefix}{len(names):05d}.png"
        Image.fromarray(image).save(stage / name, format="PNG")
        names.append(name)

    try:
        done = _run(iter_frames(job, settings, gl_context, timings), n, write, progress, cancel, timings)
        for name in names:
            os.replace(stage / name, out / name)
    finally:
        for leftover in stage.glob("*"):
            leftover.unlink()
        stage.rmdir()
    width = settings.width * (2 if settings.side_by_side else 1)
    return ExportResult(out, done, width, settings.height, timings.renderer, timings.render, timings.encode,
                        timings.pose)
