"""Reading an input into a clip: decoded, cropped around the face, resized, with landmarks and foreground.

Two passes over the input. The first finds the face on up to CROP_SAMPLES frames spread over the
selection and picks one square crop (the union of the face boxes, grown to take in hair and neck)
that every frame shares, so the clip keeps one fixed camera. The second decodes again, crops,
resizes to the requested size and runs the landmarker (afresh on every frame: see
engine/track/ingest.py) and the segmenter on every frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from engine.track.landmarks import Landmarker, Segmenter
from engine.track.sources import (
    FrameSelection,
    IngestCancelled,
    IngestError,
    SourceInfo,
    iter_frames,
    probe,
    read_frame,
)

CROP_SAMPLES = 16  # frames the first pass looks at to place the crop
CROP_GROW = 2.0  # crop side = this × the larger side of the union of face boxes
DETECT_SIDE = 640  # the first pass finds faces in frames shrunk to this longer side

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]


@dataclass(frozen=True)
class Clip:
    """A decoded clip at its working size, with what the detectors found."""

    source: SourceInfo  # what was read
    images: np.ndarray  # [T, H, W, 3] uint8 RGB, cropped and resized
    masks: np.ndarray | None  # [T, H, W] float32 foreground in [0, 1] (None without a segmenter)
    landmarks: np.ndarray  # [T, P, 2] float32 pixels in the clip's frames; NaN rows where no face was found
    times: np.ndarray  # [T] float64 seconds in the input (image number for folders)
    indices: np.ndarray  # [T] int64 frame number in the input
    crop: tuple[int, int, int, int]  # (x0, y0, x1, y1) of the crop in the input's upright frames

    @property
    def frames(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.images.shape[2]), int(self.images.shape[1])

    @property
    def found(self) -> np.ndarray:
        """[T] bool: the landmarker found the face."""
        return np.isfinite(self.landmarks[:, 0, 0])


def shrink(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """(image resized so its longer side is at most `side`, the scale applied)."""
    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS)), scale


def face_crop(boxes: list[tuple[float, float, float, float]], width: int, height: int,
              mode: Literal["auto", "none"]) -> tuple[int, int, int, int]:
    """The square crop (x0, y0, x1, y1) around face boxes (whole frame for mode 'none' or no boxes)."""
    if mode == "none" or not boxes:
        return 0, 0, width, height
    b = np.asarray(boxes)
    x0, y0, x1, y1 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    side = min(CROP_GROW * max(x1 - x0, y1 - y0), width, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.05 * side  # a little lower: the neck matters more than the sky
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    side_i = int(side)
    return left, top, left + side_i, top + side_i


def _sample_boxes(path: str, info: SourceInfo, selection: FrameSelection, landmarker: Landmarker,
                  cancel: Cancel | None) -> list[tuple[float, float, float, float]]:
    """Face boxes (input pixels) on up to CROP_SAMPLES frames spread over the selection."""
    end = info.duration if selection.end is None else min(selection.end, info.duration)
    span = max(1, int((end - selection.start) * info.fps / selection.stride))
    if selection.max_frames is not None:
        span = min(span, selection.max_frames)
    every = max(1, span // CROP_SAMPLES)
    sparse = FrameSelection(selection.start, selection.end, selection.stride * every,
                            None if selection.max_frames is None else -(-selection.max_frames // every))
    boxes = []
    for frame in iter_frames(path, sparse):
        if cancel is not None and cancel():
            raise IngestCancelled("ingest cancelled")
        small, scale = shrink(frame.image, DETECT_SIDE)
        found = landmarker.detect(np.ascontiguousarray(small))
        if found is not None:
            boxes.append(tuple(v / scale for v in found.box))
    return boxes


def read_clip(path: str, selection: FrameSelection, size: int, landmarker: Landmarker, segmenter: Segmenter | None,
              crop: Literal["auto", "none"] = "auto", progress: Progress | None = None,
              cancel: Cancel | None = None) -> Clip:
    """Decode the selected frames of an input, crop and resize them (longer side `size`), find landmarks
    and the foreground."""
    info = probe(path)
    expected = _expected_frames(info, selection)
    boxes = _sample_boxes(path, info, selection, landmarker, cancel) if crop == "auto" else []
    box = face_crop(boxes, info.width, info.height, crop)
    images, masks, marks, times, indices = [], [], [], [], []
    for frame in iter_frames(path, selection):
        if cancel is not None and cancel():
            raise IngestCancelled("ingest cancelled")
        image = _crop_resize(frame.image, box, size)
        if images and image.shape != images[0].shape:
            raise IngestError(path, f"frame {frame.index} is {frame.image.shape[1]}x{frame.image.shape[0]}, unlike the "
                                    "first; a folder's images must all have one size")
        found = landmarker.detect(image)
        marks.append(found.points if found is not None else np.full((landmarker.count, 2), np.nan, np.float32))
        if segmenter is not None:
            masks.append(segmenter.segment(image))
        images.append(image)
        times.append(frame.time)
        indices.append(frame.index)
        if progress is not None:
            progress(min(1.0, len(images) / expected), f"decoded {len(images)} frames")
    if not images:
        raise IngestError(path, "the selected time range holds no frames")
    clip = Clip(info, np.stack(images), np.stack(masks) if masks else None, np.stack(marks).astype(np.float32),
                np.asarray(times, dtype=np.float64), np.asarray(indices, dtype=np.int64), box)
    if not clip.found.any():
        raise IngestError(path, f"no face was found in any of the {clip.frames} frames")
    return clip


def _expected_frames(info: SourceInfo, selection: FrameSelection) -> int:
    end = info.duration if selection.end is None else min(selection.end, info.duration)
    n = max(1, int(np.ceil((end - selection.start) * info.fps / selection.stride)))
    return n if selection.max_frames is None else min(n, selection.max_frames)


def _crop_resize(image: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    h, w = image.shape[:2]
    if (x0, y0, x1, y1) != (0, 0, w, h):
        image = image[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    out, _ = shrink(np.ascontiguousarray(image), size)
    ch, cw = out.shape[:2]
    if ch % 2 or cw % 2:  # even sizes: the dataset's images go into videos and GL textures
        out = out[: ch - ch % 2, : cw - cw % 2]
    return np.ascontiguousarray(out)


def sample_landmarks(path: str, selection: FrameSelection, landmarker: Landmarker,
                     count: int = 4) -> list[tuple[float, np.ndarray, np.ndarray | None]]:
    """(time, frame shrunk to DETECT_SIDE, landmarks in its pixels or None) at `count` times spread over the
    selection: what a person checks before committing to a run."""
    info = probe(path)
    end = info.duration if selection.end is None else min(selection.end, info.duration)
    times = np.linspace(selection.start, end, count + 2)[1:-1] if count > 1 else [0.5 * (selection.start + end)]
    samples = []
    for time in times:
        frame = read_frame(path, float(time))
        image, _ = shrink(frame.image, DETECT_SIDE)
        image = np.ascontiguousarray(image)
        found = landmarker.detect(image)
        samples.append((frame.time, image, None if found is None else found.points))
    return samples
