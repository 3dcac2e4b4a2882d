"""Refining a landmark embedding by least squares over renders of the head at known poses and expressions.

A landmarker does not mark fixed skin spots: its inner-lip points follow the lips' inner edge as the
mouth opens, its nose and cheek points drift with the view. Lifting from a few neutral views gives
spots that agree with it there and nowhere else, and tracking then bends pose and expression to
make up the difference. So the head is also rendered at `count` known random poses and expressions
(head turns to ±40°, nods, jaw, the head's expressions), the landmarker runs on each render, and
every point moves to the surface spot (among spots on triangles within SEARCH_RADIUS of its first
lift) whose projections best match what the landmarker reported over all renders, by a robust sum;
the same renders then fit each point's view-dependent offset (engine/track/view_offsets.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.render.camera import framing, orbit_camera
from engine.track.embedding import HeadLook, LandmarkEmbedding, embedding_pose
from engine.track.landmarks import Landmarker
from engine.track.raycast import surface_points
from engine.track.rotations import head_rotations
from engine.track.view_offsets import fit_offsets

SEARCH_RADIUS = 0.012  # metres around a point's first lift searched for a better spot
SAMPLES = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [2 / 3, 1 / 6, 1 / 6], [1 / 6, 2 / 3, 1 / 6], [1 / 6, 1 / 6, 2 / 3],
                        [1 / 6, 5 / 12, 5 / 12], [5 / 12, 1 / 6, 5 / 12], [5 / 12, 5 / 12, 1 / 6]])
"""Barycentric spots tried on each triangle."""
ROBUST_PX = 10.0  # residuals (pixels at RENDER_SIZE) beyond this count as this much: a wrong detection weighs little
RENDER_SIZE = 384  # pixels
FOV_DEG = 20.0


def calibration_poses(head: HeadModel, count: int, seed: int = 0) -> FlameParams:
    """[count] random poses and expressions: yaw ±40°, pitch ±15°, roll ±6°, jaw 0..0.25 rad, each of the
    head's named expressions (or its first ten) on in about a third of the renders, gaze ±10°."""
    gen = torch.Generator().manual_seed(seed)
    u = lambda *s: torch.rand(*s, generator=gen)
    p = head.neutral_params(count)
    rotation = torch.stack([math.radians(15) * (2 * u(count) - 1), math.radians(40) * (2 * u(count) - 1),
                            math.radians(6) * (2 * u(count) - 1)], dim=1)
    jaw = torch.zeros(count, 3)
    jaw[:, 0] = 0.25 * u(count) ** 1.5
    expr = p.expr.clone()
    n = len(head.expression_names) or min(10, int(head.exprdirs.shape[2]))
    on = u(count, n) < 0.35
    expr[:, :n] = on * u(count, n) * (1.0 if head.expression_names else 2.0)
    eyes = torch.zeros(count, 6)
    gaze = math.radians(10) * (2 * u(count, 2) - 1)
    eyes[:, 0] = eyes[:, 3] = gaze[:, 0]
    eyes[:, 1] = eyes[:, 4] = gaze[:, 1]
    return p.with_values(rotation=rotation, jaw_pose=jaw, expr=expr, eyes_pose=eyes)


def refine_embedding(head: HeadModel, landmarker: Landmarker, look: HeadLook, initial: LandmarkEmbedding,
                     count: int, progress: Callable[[float, str], None]) -> LandmarkEmbedding:
    """The embedding whose points best match the landmarker on `count` renders at known parameters."""
    poses = calibration_poses(head, count)
    with torch.no_grad():
        rest = head(head.neutral_params())[0]
        target, distance = framing(rest, FOV_DEG, fill=1.2)
        camera = orbit_camera(0.0, 0.0, distance, target, FOV_DEG, RENDER_SIZE, RENDER_SIZE)
        posed, observed, kept = [], [], []
        for i in range(count):
            found = landmarker.detect(look(poses.frame(i), camera))
            progress(0.9 * (i + 1) / count, f"landmarks on calibration render {i + 1}/{count}")
            if found is not None:
                kept.append(i)
                posed.append(head(poses.frame(i))[0])
                observed.append(torch.from_numpy(found.points).float())
        if len(observed) < 4:
            return initial
        verts = torch.stack(posed)  # [N, V, 3]
        seen = torch.stack(observed)  # [N, P, 2]
        face, bary = _best_spots(head, initial, verts, seen, camera)
        rows = torch.tensor(kept)
        offset = fit_offsets(surface_points(verts, head.faces, face, bary), head_rotations(poses)[rows], seen, camera)
        progress(1.0, "landmark embedding refined")
    valid = initial.valid.clone()
    return LandmarkEmbedding(initial.landmarker, initial.fingerprint, face, bary, valid, initial.spread, offset)


def _best_spots(head: HeadModel, initial: LandmarkEmbedding, verts: Tensor, seen: Tensor, camera) -> tuple[Tensor, Tensor]:
    """(face [P], bary [P, 3]): per point the candidate spot with the least robust reprojection error."""
    faces = head.faces
    with torch.no_grad():
        anchor = head(embedding_pose(head))[0]
    centres = anchor[faces].mean(1)  # [F, 3]
    start = initial.points(anchor, faces)  # [P, 3]
    w2c = camera.world_to_cam
    face_out, bary_out = initial.face.clone(), initial.bary.clone()
    for i in range(initial.count):
        if not initial.valid[i]:
            continue
        near = torch.nonzero((centres - start[i]).norm(dim=1) < SEARCH_RADIUS).flatten()
        if len(near) == 0:
            continue
        cand_face = near.repeat_interleave(len(SAMPLES))  # [M]
        cand_bary = SAMPLES.repeat(len(near), 1)  # [M, 3]
        pts = surface_points(verts, faces, cand_face, cand_bary)  # [N, M, 3]
        cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
        uv = torch.stack([camera.fx * cam[..., 0] / cam[..., 2] + camera.cx,
                          camera.fy * cam[..., 1] / cam[..., 2] + camera.cy], dim=-1)  # [N, M, 2]
        err = (uv - seen[:, i, None, :]).norm(dim=-1).clamp(max=ROBUST_PX)  # [N, M]
        best = int(err.pow(2).sum(0).argmin())
        face_out[i], bary_out[i] = cand_face[best], cand_bary[best]
    return face_out, bary_out
