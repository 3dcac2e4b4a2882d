"""The final photometric pass: the face drawn by our differentiable Gaussian rasterizer against the frames.

The face region of the head (triangles inside the box of its embedded landmarks, in front) carries
one flat Gaussian disc per triangle, at its centroid in its plane, with a colour per triangle: the clip's texture,
taken from the frames where each triangle faces the camera most directly (`build_texture`). The
pass then refines every frame's parameters with, on top of the landmark fit's losses,
- an L1 colour term: the render composited over the frame itself (so only the face region is
  compared and its outline blends as the rasterizer draws it) against the frame, inside the
  foreground mask (the mesh's outline against the background is the silhouette term's);
- a silhouette term: face drawn outside the foreground mask (engine/track/losses.py).
Rendering happens at `photometric_size` pixels (longer side) to keep a step cheap on a CPU.

Off by default (TrackConfig.photometric_iters = 0; `ingest --photometric N` turns it on): measured on
the synthetic talking head, it did not improve on the landmark fit. Even with the texture taken from
the true parameters the head pose drifted away from the truth (about 4° -> 8° mean error, 50 frames,
30 steps per chunk), although the loss is lowest at the truth for single-axis turns: Adam's steps and
the blurred, gappy one-disc-per-triangle texture let the pose slide along valleys of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.avatar.binding import quat_from_matrix, triangle_areas, triangle_frames
from engine.data.frames import fit_size
from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.head.triangles import face_normals
from engine.render.rasterize import render
from engine.render.splats import Splats, rgb_to_dc
from engine.track import losses
from engine.track.config import TrackConfig
from engine.track.embedding import LandmarkEmbedding
from engine.track.head_points import HeadPoints
from engine.track.state import TrackState, tracking_camera

OPACITY = 0.98  # of each face Gaussian
SCALE_FACTOR = 0.6  # Gaussian standard deviation in its triangle's plane, × the square root of the triangle's rest area
FLAT = 0.05  # ... and across it, × that


def face_region(head: HeadModel, embedding: LandmarkEmbedding, margin: float = 0.08) -> Tensor:
    """[G] triangles of the face: centroid (neutral pose) inside the x/y box of the embedded landmarks
    grown by `margin` of its size, and in front of the landmarks' deepest point."""
    with torch.no_grad():
        rest = head(head.neutral_params())[0]
    marks = embedding.points(rest, head.faces)[embedding.valid]
    lo, hi = marks.min(0).values, marks.max(0).values
    grow = margin * (hi - lo)
    centre = rest[head.faces].mean(1)
    inside = ((centre[:, :2] >= lo[:2] - grow[:2]) & (centre[:, :2] <= hi[:2] + grow[:2])).all(1)
    return torch.nonzero(inside & (centre[:, 2] >= lo[2] - grow[2])).flatten()


@dataclass(frozen=True)
class Frames:
    """The clip's pixels for the photometric pass."""

    images: np.ndarray  # [T, H, W, 3] uint8
    masks: np.ndarray | None  # [T, H, W] float32 foreground in [0, 1], or None


class PhotometricTerm:
    """extra(rows, params, focal) for LandmarkFitter.fit: colour and silhouette losses of those frames."""

    def __init__(self, head: HeadModel, region: Tensor, frames: Frames, distance: float, config: TrackConfig) -> None:
        h, w = frames.images.shape[1:3]
        self.head, self.config, self.frames, self.distance = head, config, frames, distance
        self.full = (w, h)
        self.size = fit_size(w, h, config.photometric_size)
        self.region = region
        ids, inverse = torch.unique(head.faces[region].reshape(-1), return_inverse=True)
        self.points = HeadPoints(head, ids)
        self.corners = inverse.reshape(-1, 3)  # [G, 3] into the posed subset
        with torch.no_grad():
            rest = head(head.neutral_params())[0]
            area = triangle_areas(rest, head.faces[region])
        self.scale = SCALE_FACTOR * area.sqrt()  # [G]
        self.colour = torch.full((len(region), 3), 0.5)
        self._pixels: dict[int, tuple[Tensor, Tensor | None]] = {}

    def pixels(self, row: int) -> tuple[Tensor, Tensor | None]:
        """(image [h, w, 3] float, mask [h, w] or None) of a frame at the pass's size (cached)."""
        if row not in self._pixels:
            image = torch.from_numpy(self.frames.images[row]).float() / 255.0
            w, h = self.size
            image = F.interpolate(image.permute(2, 0, 1)[None], size=(h, w), mode="area")[0].permute(1, 2, 0)
            mask = None
            if self.frames.masks is not None:
                m = torch.from_numpy(self.frames.masks[row]).float()
                mask = F.interpolate(m[None, None], size=(h, w), mode="area")[0, 0]
            self._pixels[row] = (image.contiguous(), mask)
        return self._pixels[row]

    def centroids(self, params: FlameParams) -> Tensor:
        """[T, G, 3] face-region triangle centroids."""
        verts = self.points(params)  # [T, K, 3]
        return verts[:, self.corners].mean(dim=2)

    def normals(self, params: FlameParams) -> Tensor:
        """[T, G, 3] unit normals of the face-region triangles."""
        tri = self.points(params)[:, self.corners]  # [T, G, 3, 3]
        return F.normalize(face_normals(tri), dim=-1)

    def splats(self, params: FlameParams, row: int) -> Splats:
        """The face drawn as flat discs, one per triangle (in its plane, radius ∝ √area), at one frame."""
        tri = self.points(params.frame(row))[0][self.corners]  # [G, 3 corners, 3]
        rot, centroid, _ = triangle_frames(tri.reshape(-1, 3), torch.arange(3 * len(tri)).reshape(-1, 3))
        g = centroid.shape[0]
        scale = torch.stack([self.scale, self.scale * FLAT, self.scale], dim=1).to(tri.dtype)  # local y = normal
        opacity = torch.full((g,), OPACITY, dtype=tri.dtype)
        return Splats(centroid, quat_from_matrix(rot), scale, opacity, rgb_to_dc(self.colour)[:, None].to(tri.dtype))

    @torch.no_grad()
    def build_texture(self, state: TrackState, rows: Tensor) -> None:
        """Each triangle's colour: facing-weighted mean of its pixel over the frames rows (which see its front)."""
        w, h = self.size
        camera = tracking_camera(w, h, state.focal * w / self.full[0], state.distance)
        total = torch.zeros(len(self.region), 3)
        weight = torch.zeros(len(self.region))
        for start in range(0, len(rows), 32):
            chunk = rows[start : start + 32]
            params = state.params(self.head, chunk)
            cents, norms = self.centroids(params), self.normals(params)
            for i, row in enumerate(chunk.tolist()):
                image, _ = self.pixels(row)
                uv, depth = camera.project_points(cents[i])
                to_cam = F.normalize(camera.position - cents[i], dim=-1)
                facing = (norms[i] * to_cam).sum(-1).abs()  # triangle winding may face either way
                grid = torch.stack([uv[:, 0] / w * 2 - 1, uv[:, 1] / h * 2 - 1], dim=-1)[None, None]
                sample = F.grid_sample(image.permute(2, 0, 1)[None], grid, align_corners=False)[0, :, 0].T
                wgt = facing.clamp(min=0).pow(4) * (depth > 0)
                total += wgt[:, None] * sample
                weight += wgt
        seen = weight > 1e-3
        self.colour = torch.where(seen[:, None], total / weight.clamp(min=1e-9)[:, None], torch.full_like(total, 0.5))

    def __call__(self, rows: Tensor, params: FlameParams, focal: Tensor) -> Tensor:
        w, h = self.size
        camera = tracking_camera(w, h, float(focal) * w / self.full[0], self.distance)
        loss = focal.new_zeros(())
        for i, row in enumerate(rows.tolist()):
            image, mask = self.pixels(row)
            result = render(self.splats(params, i), camera, (0.0, 0.0, 0.0))
            composite = result.rgb + (1.0 - result.alpha)[..., None] * image
            error = (composite - image).abs().sum(-1)
            if mask is not None:  # colour is compared inside the person only; the silhouette term sees the outline
                error = error * mask
            loss = loss + self.config.photometric_weight * error.mean() * 100.0
            if mask is not None and self.config.w_silhouette:
                loss = loss + self.config.w_silhouette * losses.silhouette_loss(result.alpha, mask) * 100.0
        return loss / len(rows)
