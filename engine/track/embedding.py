"""A head's landmark embedding: for each landmarker point, the triangle and barycentric spot it marks.

No licensed landmark file is needed. The head is drawn as the application shows it (the demo head
as the demo avatar, any other head by the mesh renderer's procedural skin, eyes, lips and brows):
1. neutral, its jaw a little open (EMBED_JAW: with the lips closed, a landmarker puts the inner
   upper- and lower-lip points on one line, and they would be lifted onto the same lip), from a few
   views; the same landmarker runs on the renders and each point is lifted onto the surface by
   casting its pixel's ray; a point's lifts are combined robustly (the lift nearest the per-point
   median, among lifts within a few millimetres of it; grazing views count less);
2. at CALIBRATION_RENDERS known random poses and expressions; each point moves to the nearby surface
   spot that best matches the landmarker over all of them (engine/track/embedding_fit.py).
This works for the demo head and a user's FLAME file alike.

Embeddings are cached per head (a fingerprint of its template and triangles) and landmarker name:
first in resources/landmark_embeddings/ (shipped for the demo head), then in the user's cache folder
(DYNAMICAVATARS_CACHE, else ~/.cache/dynamicavatars). Never inside the user's FLAME folder.
The demo head's is rebuilt by `python -m engine.track.embedding`.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.head.triangles import face_normals
from engine.io.atomic import FileFormatError, atomic_write
from engine.render.camera import Camera, framing, orbit_camera
from engine.track.landmarks import Landmarker
from engine.track.raycast import cast_rays, pixel_rays, surface_points

FORMAT_VERSION = 1
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "resources" / "landmark_embeddings"
CACHE_ENV = "DYNAMICAVATARS_CACHE"
VIEWS: tuple[tuple[float, float], ...] = ((0.0, 0.0), (-18.0, 0.0), (18.0, 0.0), (0.0, -12.0), (0.0, 12.0),
                                          (-30.0, 5.0), (30.0, 5.0))
"""(yaw, pitch) in degrees of the renders the landmarker runs on."""
RENDER_SIZE = 512  # pixels
AGREE_M = 0.004  # lifts farther than this from a point's median lift are outliers (4 mm)
EMBED_JAW = 0.12  # jaw opening (radians) of the pose the embedding is found in
CALIBRATION = 2  # version of the calibration settings (renders, view-offset degree and ridge); in file names
CALIBRATION_RENDERS = 400  # renders at known poses and expressions the embedding is refined on (96: the
# view offsets' weaker ridge overfits; synthetic clip head 2.15° against 2.03° at 400, no better at 800)


@dataclass(frozen=True)
class LandmarkEmbedding:
    """Where each of a landmarker's P points sits on a head's surface."""

    landmarker: str  # Landmarker.name it was made with
    fingerprint: str  # head_fingerprint of the head it belongs to
    face: Tensor  # [P] long triangle index
    bary: Tensor  # [P, 3] float barycentric weights
    valid: Tensor  # [P] bool: False where no view lifted the point (fitting ignores it)
    spread: Tensor  # [P] float: mean distance (m) of agreeing lifts from the chosen one (how sure it is)
    view_offset: Tensor | None = None  # [P, K, 3] view-dependent offsets (engine/track/view_offsets.py), or none

    def __post_init__(self) -> None:
        p = self.face.shape[0]
        assert self.face.shape == (p,) and self.bary.shape == (p, 3), "face must be [P], bary [P, 3]"
        assert self.valid.shape == (p,) and self.spread.shape == (p,), "valid and spread must be [P]"
        assert self.view_offset is None or (self.view_offset.ndim == 3 and self.view_offset.shape[0] == p
                                            and self.view_offset.shape[2] == 3), "view_offset must be [P, K, 3]"

    @property
    def count(self) -> int:
        return int(self.face.shape[0])

    def vertex_ids(self, faces: Tensor) -> tuple[Tensor, Tensor]:
        """(unique vertex ids [K] the embedding touches, corner index into them [P, 3])."""
        corners = faces[self.face]  # [P, 3]
        ids, inverse = torch.unique(corners.reshape(-1), return_inverse=True)
        return ids, inverse.reshape(-1, 3)

    def points(self, verts: Tensor, faces: Tensor) -> Tensor:
        """[..., P, 3] landmark positions on posed verts [..., V, 3]."""
        return surface_points(verts, faces, self.face, self.bary)


def head_fingerprint(head: HeadModel) -> str:
    """A short hash of the head's template and triangles (what an embedding depends on)."""
    h = hashlib.sha1()
    h.update(head.v_template.detach().cpu().float().numpy().tobytes())
    h.update(head.faces.detach().cpu().to(torch.int64).numpy().tobytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """The user's cache folder for embeddings."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "dynamicavatars") / "landmark_embeddings"


def embedding_file_name(landmarker: str, fingerprint: str) -> str:
    """The file an embedding is shipped or cached as; named for its calibration too, so an embedding
    cached under older calibration settings is computed again rather than used."""
    return f"{landmarker}-{fingerprint}-c{CALIBRATION}.npz"


def save_embedding(embedding: LandmarkEmbedding, path: str | Path) -> Path:
    """Write an embedding npz atomically."""
    buf = io.BytesIO()
    extra = {} if embedding.view_offset is None else {"view_offset": embedding.view_offset.numpy().astype(np.float32)}
    np.savez(buf, version=np.int64(FORMAT_VERSION), landmarker=np.str_(embedding.landmarker),
             fingerprint=np.str_(embedding.fingerprint), face=embedding.face.numpy().astype(np.int64),
             bary=embedding.bary.numpy().astype(np.float32), valid=embedding.valid.numpy(),
             spread=embedding.spread.numpy().astype(np.float32), **extra)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())
    return Path(path)


def load_embedding(path: str | Path, n_faces: int | None = None) -> LandmarkEmbedding:
    """Read an embedding npz; FileFormatError naming the file when it is malformed."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise FileFormatError(path, f"not a readable landmark embedding ({exc})") from None
    missing = {"version", "landmarker", "fingerprint", "face", "bary", "valid", "spread"} - set(data)
    if missing:
        raise FileFormatError(path, f"landmark embedding lacks {sorted(missing)}")
    if int(data["version"]) != FORMAT_VERSION:
        raise FileFormatError(path, f"landmark embedding version {int(data['version'])}, expected {FORMAT_VERSION}")
    face = torch.from_numpy(data["face"].astype(np.int64))
    p = face.shape[0]
    if data["bary"].shape != (p, 3) or data["valid"].shape != (p,) or data["spread"].shape != (p,):
        raise FileFormatError(path, "landmark embedding arrays disagree in length")
    if n_faces is not None and p and int(face.max()) >= n_faces:
        raise FileFormatError(path, f"landmark embedding names triangle {int(face.max())}, the head has {n_faces}")
    offset = data.get("view_offset")  # optional: embeddings made before view offsets lack it
    if offset is not None and (offset.ndim != 3 or offset.shape[0] != p or offset.shape[2] != 3):
        raise FileFormatError(path, f"landmark embedding's view_offset is {offset.shape}, expected ({p}, K, 3)")
    return LandmarkEmbedding(str(data["landmarker"]), str(data["fingerprint"]), face,
                             torch.from_numpy(data["bary"].astype(np.float32)),
                             torch.from_numpy(data["valid"].astype(bool)), torch.from_numpy(data["spread"]),
                             None if offset is None else torch.from_numpy(offset.astype(np.float32)))


def embedding_pose(head: HeadModel) -> FlameParams:
    """The pose the head is rendered in to find its landmarks: neutral, jaw EMBED_JAW open."""
    p = head.neutral_params()
    jaw = p.jaw_pose.clone()
    jaw[0, 0] = EMBED_JAW
    return p.with_values(jaw_pose=jaw)


def embedding_views(rest: Tensor, size: int = RENDER_SIZE) -> list[Camera]:
    """Cameras around the neutral mesh rest [V, 3] that show the face large."""
    target, distance = framing(rest, 20.0, fill=1.25)
    return [orbit_camera(yaw, pitch, distance, target, 20.0, size, size) for yaw, pitch in VIEWS]


HeadLook = Callable[[FlameParams, Camera], np.ndarray]
"""Draws the head at one frame of parameters through a camera: [H, W, 3] uint8 RGB."""


def mesh_look(head: HeadModel) -> tuple[HeadLook, Callable[[], None]]:
    """(render, close) drawing the head with the mesh renderer's procedural skin, eyes, lips and brows."""
    from engine.data.mesh_render import MeshRenderer

    renderer = MeshRenderer()
    with torch.no_grad():
        rest = head(head.neutral_params())[0]

    def render(params: FlameParams, camera: Camera) -> np.ndarray:
        with torch.no_grad():
            posed = head(params)[0]
        rgb = renderer.render(posed, head.faces, head.face_labels, camera, rest_verts=rest).rgb
        return (rgb.numpy() * 255 + 0.5).astype(np.uint8)

    return render, renderer.close


def head_look(head: HeadModel) -> tuple[HeadLook, Callable[[], None]]:
    """(render, close) drawing the head as the application shows it: the demo head as the demo avatar,
    any other head with the mesh renderer."""
    if head.source != "demo":
        return mesh_look(head)
    from engine.avatar.demo import load_demo_avatar
    from engine.render.rasterize import render as render_splats

    avatar = load_demo_avatar()

    def render(params: FlameParams, camera: Camera) -> np.ndarray:
        with torch.no_grad():
            rgb = render_splats(avatar.splats(params), camera).rgb.clamp(0.0, 1.0)
        return (rgb.numpy() * 255 + 0.5).astype(np.uint8)

    return render, lambda: None


def compute_embedding(head: HeadModel, landmarker: Landmarker, look: HeadLook | None = None,
                      calibration: int = CALIBRATION_RENDERS,
                      progress: Callable[[float, str], None] | None = None) -> LandmarkEmbedding:
    """The head's embedding: lifted from renders in `embedding_pose` from VIEWS, then refined by least squares
    over `calibration` renders at known poses and expressions (engine/track/embedding_fit.py).

    look: how the head is drawn (default: `head_look`)."""
    from engine.track.embedding_fit import refine_embedding

    report = progress or (lambda f, m: None)
    close = None
    if look is None:
        look, close = head_look(head)
    try:
        initial = lift_views(head, landmarker, look, lambda f, m: report(0.2 * f, m))
        if not calibration:
            return initial
        return refine_embedding(head, landmarker, look, initial, calibration, lambda f, m: report(0.2 + 0.8 * f, m))
    finally:
        if close is not None:
            close()


def lift_views(head: HeadModel, landmarker: Landmarker, look: HeadLook,
               progress: Callable[[float, str], None]) -> LandmarkEmbedding:
    """Render the head in `embedding_pose` from VIEWS, find the landmarks, lift them onto the surface, combine."""
    pose = embedding_pose(head)
    with torch.no_grad():
        rest = head(pose)[0].double()
    faces = head.faces
    lifts: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []  # (face, bary, point, weight) per view
    cameras = embedding_views(rest.float())
    for i, cam in enumerate(cameras):
        found = landmarker.detect(look(pose, cam))
        progress((i + 1) / len(cameras), f"landmarks on view {i + 1}/{len(cameras)}")
        if found is None:
            continue
        origins, dirs = pixel_rays(cam, torch.from_numpy(found.points).double())
        hits = cast_rays(origins, dirs, rest, faces)
        ok = hits.face >= 0
        point = surface_points(rest, faces, hits.face.clamp(min=0), hits.bary)
        normal = torch.nn.functional.normalize(face_normals(rest[faces[hits.face.clamp(min=0)]]), dim=-1)
        facing = (normal * -dirs).sum(-1).abs()
        lifts.append((hits.face, hits.bary, point, torch.where(ok, facing, torch.zeros_like(facing))))
    if not lifts:
        raise RuntimeError(f"the landmarker {landmarker.name} found no face on any render of head {head.name!r}")
    return combine_lifts(lifts, landmarker.name, head_fingerprint(head))


def combine_lifts(lifts: list[tuple[Tensor, Tensor, Tensor, Tensor]], landmarker: str,
                  fingerprint: str) -> LandmarkEmbedding:
    """One (triangle, barycentric) per point from per-view lifts (face [P], bary [P, 3], point [P, 3], weight [P])."""
    faces = torch.stack([f for f, _, _, _ in lifts])  # [N, P]
    barys = torch.stack([b for _, b, _, _ in lifts])  # [N, P, 3]
    points = torch.stack([p for _, _, p, _ in lifts])  # [N, P, 3]
    weight = torch.stack([w for _, _, _, w in lifts])  # [N, P]
    seen = weight > 0.05
    masked = torch.where(seen[..., None], points, torch.full_like(points, float("nan")))
    median = masked.nanmedian(dim=0).values  # [P, 3]
    dist = (points - median).norm(dim=-1)
    agree = seen & (dist < AGREE_M)
    score = torch.where(agree, weight - 0.5 * dist / AGREE_M, torch.full_like(weight, -1.0))
    best = score.argmax(dim=0)  # [P]
    cols = torch.arange(points.shape[1])
    valid = agree.any(dim=0)
    spread = torch.where(agree, dist, torch.zeros_like(dist)).sum(0) / agree.sum(0).clamp(min=1)
    return LandmarkEmbedding(landmarker, fingerprint, torch.where(valid, faces[best, cols], torch.zeros_like(best)),
                             barys[best, cols].float(), valid, spread.float())


def landmark_embedding(head: HeadModel, landmarker: Landmarker, compute: bool = True,
                       progress: Callable[[float, str], None] | None = None) -> LandmarkEmbedding:
    """The head's embedding for the landmarker: shipped, else cached, else computed (and cached)."""
    fingerprint = head_fingerprint(head)
    name = embedding_file_name(landmarker.name, fingerprint)
    for folder in (SHIPPED_DIR, cache_dir()):
        path = folder / name
        if path.is_file():
            return load_embedding(path, head.n_faces)
    if not compute:
        raise FileNotFoundError(f"no landmark embedding {name} in {SHIPPED_DIR} or {cache_dir()}")
    embedding = compute_embedding(head, landmarker, progress=progress)
    save_embedding(embedding, cache_dir() / name)
    return embedding


def main() -> None:
    """Rebuild the shipped embedding of the demo head for the default landmarker (needs MediaPipe)."""
    from engine.head.model import load_head
    from engine.track.landmarks import default_landmarker

    head = load_head("demo")
    landmarker = default_landmarker()
    try:
        embedding = compute_embedding(head, landmarker, progress=lambda f, m: print(f"{100 * f:3.0f}% {m}", flush=True))
    finally:
        landmarker.close()
    path = save_embedding(embedding, SHIPPED_DIR / embedding_file_name(landmarker.name, embedding.fingerprint))
    print(f"wrote {path} ({int(embedding.valid.sum())}/{embedding.count} points lifted)")


if __name__ == "__main__":
    main()
