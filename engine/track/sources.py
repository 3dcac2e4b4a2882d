"""What ingest reads: a video (decoded with PyAV), a folder of images, or one photo.

Times are in seconds for a video; for a folder of images each image counts as one second (image
number = time), so one time range and stride option serves every kind of input. Frames come out
as [H, W, 3] uint8 RGB, upright (a phone video's display rotation and a photo's EXIF orientation
are applied).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from engine.io.atomic import FileFormatError

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


class IngestError(FileFormatError):
    """An input cannot be used; the message names the file and the problem."""


class IngestCancelled(Exception):
    """Raised inside ingest and tracking when their cancel callback says so; nothing is left behind."""


@dataclass(frozen=True)
class SourceInfo:
    """What an input holds."""

    path: Path  # the video file, image folder or photo
    kind: Literal["video", "images", "photo"]
    frames: int  # number of frames (a video's count is estimated from its duration when the file lacks it)
    fps: float  # frames per second (1 for images: times are image numbers)
    width: int  # upright frame width in pixels
    height: int  # upright frame height in pixels

    @property
    def duration(self) -> float:
        """Length in seconds (image count for images)."""
        return self.frames / self.fps


@dataclass(frozen=True)
class FrameSelection:
    """Which frames to take."""

    start: float = 0.0  # first time in seconds (image number for folders)
    end: float | None = None  # time to stop before (None: the end)
    stride: int = 1  # keep every stride-th frame of the range
    max_frames: int | None = None  # stop after this many frames (None: no limit)

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ValueError(f"stride must be 1 or more, got {self.stride}")
        if self.start < 0 or (self.end is not None and self.end <= self.start):
            raise ValueError(f"time range must satisfy 0 <= start < end, got {self.start}..{self.end}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be 1 or more, got {self.max_frames}")


@dataclass(frozen=True)
class SourceFrame:
    """One decoded frame."""

    index: int  # frame number in the input (0-based)
    time: float  # seconds from the start (image number for folders)
    image: np.ndarray  # [H, W, 3] uint8 RGB, upright


def source_kind(path: str | Path) -> Literal["video", "images", "photo"]:
    """What kind of input path is, or IngestError naming it."""
    p = Path(path)
    if not p.exists():
        raise IngestError(p, "no such file or folder")
    if p.is_dir():
        return "images"
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "photo"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise IngestError(p, f"not a video ({', '.join(sorted(VIDEO_SUFFIXES))}), an image or a folder of images")


def image_files(folder: Path) -> list[Path]:
    """Image files of a folder, sorted by name; IngestError when there are none."""
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise IngestError(folder, "the folder holds no images (png, jpg, …)")
    return files


def read_image(path: Path) -> np.ndarray:
    """[H, W, 3] uint8 RGB of an image file (EXIF orientation applied), or IngestError."""
    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB")).copy()
    except (OSError, ValueError) as exc:
        raise IngestError(path, f"not a readable image ({exc})") from None


def probe(path: str | Path) -> SourceInfo:
    """Size, frame count and rate of an input (decodes at most one frame)."""
    p = Path(path)
    kind = source_kind(p)
    if kind == "photo":
        h, w = read_image(p).shape[:2]
        return SourceInfo(p, kind, 1, 1.0, w, h)
    if kind == "images":
        files = image_files(p)
        h, w = read_image(files[0]).shape[:2]
        return SourceInfo(p, kind, len(files), 1.0, w, h)
    with _open_video(p) as (container, stream):
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        frames = int(stream.frames or 0)
        if not frames:
            seconds = float(stream.duration * stream.time_base) if stream.duration else float(container.duration or 0) / 1e6
            frames = max(1, round(seconds * fps))
        first = next(_decode(p, container, stream), None)
        if first is None:
            raise IngestError(p, "the video holds no decodable frames")
        h, w = first[0].shape[:2]
    return SourceInfo(p, kind, frames, fps, w, h)


def iter_frames(path: str | Path, selection: FrameSelection = FrameSelection()) -> Iterator[SourceFrame]:
    """The selected frames of an input, in order."""
    p = Path(path)
    kind = source_kind(p)
    seen = taken = 0
    for frame in _all_frames(p, kind, selection.start):
        if selection.end is not None and frame.time >= selection.end - 1e-9:
            break
        if frame.time < selection.start - 1e-9:
            continue
        seen += 1
        if (seen - 1) % selection.stride:
            continue
        yield frame
        taken += 1
        if selection.max_frames is not None and taken >= selection.max_frames:
            break


def read_frame(path: str | Path, time: float) -> SourceFrame:
    """The frame shown at `time` seconds (image number for folders): for the GUI's scrubbing."""
    p = Path(path)
    kind = source_kind(p)
    last = None
    for frame in _all_frames(p, kind, max(0.0, time)):
        if frame.time > time + 1e-6 and last is not None:
            break
        last = frame
        if frame.time >= time - 1e-6:
            break
    if last is None:
        raise IngestError(p, f"no frame at {time:.2f} s")
    return last


def _all_frames(p: Path, kind: str, start: float) -> Iterator[SourceFrame]:
    if kind == "photo":
        yield SourceFrame(0, 0.0, read_image(p))
        return
    if kind == "images":
        for i, f in enumerate(image_files(p)):
            if i >= start - 1e-9:
                yield SourceFrame(i, float(i), read_image(f))
        return
    with _open_video(p) as (container, stream):
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        if start > 0:
            container.seek(int(max(0.0, start - 1.0) / stream.time_base), stream=stream, backward=True)
        for image, t in _decode(p, container, stream):
            yield SourceFrame(round(t * fps), t, image)


class _open_video:
    """Context manager: (container, video stream) of a video file, or IngestError naming it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.container = None

    def __enter__(self):
        import av

        try:
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise IngestError(self.path, f"cannot be opened as a video ({exc})") from None
        if not self.container.streams.video:
            self.container.close()
            raise IngestError(self.path, "has no video stream")
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        return self.container, stream

    def __exit__(self, *exc: object) -> None:
        if self.container is not None:
            self.container.close()


def _decode(p: Path, container, stream) -> Iterator[tuple[np.ndarray, float]]:
    """(upright RGB frame, time in seconds) of every decodable frame from the current position."""
    import av

    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    try:
        for frame in container.decode(stream):
            image = frame.to_ndarray(format="rgb24")
            turns = round((getattr(frame, "rotation", 0) or 0) / 90.0) % 4
            if turns:
                image = np.ascontiguousarray(np.rot90(image, k=turns))
            t = (float(frame.time) if frame.time is not None else 0.0) - start
            yield image, max(0.0, t)
    except av.error.FFmpegError as exc:
        raise IngestError(p, f"the video stream cannot be decoded ({exc})") from None
