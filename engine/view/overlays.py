"""What a view draws besides the splats' own colours: component tints, a per-Gaussian overlay, the
selection highlight, the mesh wireframe, and the before/after comparison's divider (the two sides are
rendered as column windows of one camera, so the joined picture costs one picture's pixels).

The selection highlight is one accent colour (cyan, magenta or yellow) laid over the selected Gaussians,
chosen as the accent farthest in Oklab from what they show without it, so a selection of brown hair,
pink lips or blue eyes always reads against what is under it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from engine.edit.colour_space import srgb_to_oklab
from engine.head.components import label_colours
from engine.head.triangles import face_normals
from engine.render.camera import Camera

COMPONENT_TINT = 0.7  # weight of the component colour over the splat colour in the component overlay
WIRE_RGB = np.array([120, 230, 255], dtype=np.float32)  # wireframe colour, 0-255
WIRE_ALPHA = 0.55
SELECTION_ACCENTS = np.array([[0.0, 0.85, 1.0], [1.0, 0.2, 0.85], [1.0, 0.9, 0.0]], dtype=np.float32)
"""[3, 3] sRGB accents the selection highlight chooses from: cyan, magenta, yellow."""
SELECTION_ALPHA = 0.6  # weight of the accent over a selected Gaussian's colour


def overlay_colours(base: np.ndarray, labels: np.ndarray, components: bool, overlay: np.ndarray | None,
                    opacity: float) -> np.ndarray | None:
    """[N, 3] float32 colours replacing the splats' own, or None when nothing is overlaid.

    base: [N, 3] the splats' colours; labels: [N] component labels (tinted when `components`);
    overlay: [N, 3] rgb blended with `opacity`, or [N, 4] rgba whose alpha also weighs each Gaussian.
    """
    out = None
    if components:
        out = (1 - COMPONENT_TINT) * base + COMPONENT_TINT * label_colours(labels)
    if overlay is not None and overlay.shape[0] == base.shape[0]:
        a = float(opacity)
        if overlay.shape[1] == 4:  # per-Gaussian alpha
            a = a * overlay[:, 3:4]
        out = (1 - a) * (base if out is None else out) + a * overlay[:, :3]
    return None if out is None else np.ascontiguousarray(out, dtype=np.float32)


def selection_accent(under: np.ndarray) -> np.ndarray:
    """[3] the accent of SELECTION_ACCENTS farthest in Oklab from the mean of the colours under [K, 3] (sRGB)."""
    mean = srgb_to_oklab(torch.from_numpy(np.ascontiguousarray(under, dtype=np.float32))).mean(0)  # [3]
    accents = srgb_to_oklab(torch.from_numpy(SELECTION_ACCENTS))  # [3, 3]
    return SELECTION_ACCENTS[int(torch.linalg.norm(accents - mean, dim=1).argmax())]


def highlight_selection(colours: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """[N, 3] float32 colours with the selected ones (selected: [N] bool) blended toward one contrasting accent."""
    assert colours.ndim == 2 and colours.shape[1] == 3, f"colours must be [N, 3], got {colours.shape}"
    assert selected.shape == (colours.shape[0],), f"selected must be [{colours.shape[0]}], got {selected.shape}"
    out = np.array(colours, dtype=np.float32)
    if selected.any():
        out[selected] = (1 - SELECTION_ALPHA) * out[selected] + SELECTION_ALPHA * selection_accent(out[selected])
    return out


def draw_wireframe(image: np.ndarray, verts: torch.Tensor, faces: torch.Tensor, camera: Camera) -> np.ndarray:
    """A copy of image [H, W, 3] uint8 with the edges of the triangles facing the camera drawn over it.

    verts: [V, 3] posed vertices; faces: [F, 3] long. Each edge is sampled once per pixel of its length.
    """
    v = verts.to(torch.float32)
    uv, depth = camera.project_points(v)  # [V, 2], [V]
    tri = v[faces]
    normal = face_normals(tri)
    facing = ((camera.position.to(torch.float32) - tri.mean(1)) * normal).sum(-1) > 0
    front = faces[facing & (depth[faces] > camera.near).all(1)]
    edges = torch.cat([front[:, [0, 1]], front[:, [1, 2]], front[:, [2, 0]]]).sort(dim=1).values
    edges = torch.unique(edges, dim=0).numpy()
    p = uv.numpy()
    a, b = p[edges[:, 0]], p[edges[:, 1]]
    steps = np.clip(np.ceil(np.abs(b - a).max(1)), 1, 4096).astype(np.int64)
    owner = np.repeat(np.arange(len(edges)), steps)
    frac = (np.arange(owner.size) - np.repeat(np.cumsum(steps) - steps, steps)) / steps[owner]
    pts = a[owner] + (b - a)[owner] * frac[:, None]
    x, y = np.floor(pts[:, 0]).astype(np.int64), np.floor(pts[:, 1]).astype(np.int64)
    h, w = image.shape[:2]
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    out = image.copy()
    sel = out[y[inside], x[inside]].astype(np.float32)
    out[y[inside], x[inside]] = ((1 - WIRE_ALPHA) * sel + WIRE_ALPHA * WIRE_RGB).astype(np.uint8)
    return out


SPLIT_RGB = np.array([245, 245, 245], dtype=np.uint8)  # the before/after divider
SPLIT_SHADE = np.array([20, 20, 24], dtype=np.uint8)  # its outline, so it shows on light backgrounds too
HANDLE_RADIUS = 9  # pixels: the round grip in the middle of the divider


def split_column(width: int, split: float) -> int:
    """The first column of the after side of a width-pixel picture split at a share `split` of its width."""
    return int(round(min(1.0, max(0.0, float(split))) * width))


def column_window(camera: Camera, x0: int, x1: int) -> Camera:
    """The camera that renders exactly columns x0..x1-1 of camera's picture (same pixels, same projection)."""
    assert 0 <= x0 < x1 <= camera.width, f"columns {x0}..{x1} outside a {camera.width}-pixel picture"
    return replace(camera, cx=camera.cx - x0, width=x1 - x0)


def join_split(left: np.ndarray | None, right: np.ndarray | None, height: int) -> np.ndarray:
    """[H, W, 3] uint8: left [H, c, 3] (before) beside right [H, W - c, 3] (after), with the divider and its grip
    drawn at column c (either side may be None when the divider sits at an edge)."""
    parts = [p for p in (left, right) if p is not None]
    assert parts and all(p.ndim == 3 and p.shape[0] == height and p.shape[2] == 3 for p in parts), (
        f"split sides must be [{height}, w, 3], got {[p.shape for p in parts]}")
    image = np.concatenate(parts, axis=1) if len(parts) == 2 else parts[0].copy()
    cut = 0 if left is None else left.shape[1]
    return draw_divider(image, cut)


def draw_divider(image: np.ndarray, cut: int) -> np.ndarray:
    """image [H, W, 3] uint8 with a vertical divider at column cut (a light 2-pixel line outlined dark) and a
    round grip at mid height; modified in place and returned."""
    h, w = image.shape[:2]
    lo, hi = max(0, cut - 1), min(w, cut + 1)
    image[:, max(0, lo - 1):min(w, hi + 1)] = SPLIT_SHADE
    image[:, lo:hi] = SPLIT_RGB
    yy, xx = np.ogrid[:h, :w]
    d = np.sqrt((yy - h / 2) ** 2 + (xx - cut) ** 2)
    image[(d <= HANDLE_RADIUS + 1.5) & (d > HANDLE_RADIUS)] = SPLIT_SHADE
    grip = d <= HANDLE_RADIUS
    image[grip] = SPLIT_RGB
    arrows = grip & (np.abs(yy - h / 2) <= 1) & (np.abs(xx - cut) >= 3) & (np.abs(xx - cut) <= 6)
    image[arrows] = SPLIT_SHADE  # a small ↔ in the grip: it drags sideways
    return image
