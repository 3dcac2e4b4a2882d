"""Dark specks at the mouth corners of a smile: how much of each corner renders dark.

`mouth_corner_darkness` renders an avatar at a pose from an orbit camera framed like the synthetic
dataset's (engine/data/synth.py) and measures, in a small square window centred on each mouth
corner (a side of 30 % of the mouth's width), the share of dark pixels: pixels below half the
luminance of the skin around the corner (the median colour of the render where the head shows
skin, in a window three times as wide). The corners and the skin come from the head mesh's own
label map at that pose and view (engine/data/mesh_render.py): the outermost columns of its lips
and mouth opening, at the mean row of their pixels there. With the jaw open the window's inner
half reaches the tip of the opening, whose dark cavity is counted too (the figure is strict).
`worst_corner_darkness` is the largest share over both corners and the views of SMILE_YAWS;
SMILE_POSES are the two poses the demo avatar is held to (tests/test_demo_mouth.py, bench/demo_look.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.avatar.posing import Pose, apply_pose
from engine.data.mesh_render import MeshRenderer
from engine.head.components import LABEL
from engine.head.model import HeadModel
from engine.render.camera import Camera, framing, orbit_camera
from engine.render.rasterize import render

FOV_Y_DEG = 24.0  # as the synthetic dataset's cameras
WINDOW = 0.3  # window side, as a share of the mouth's width in pixels
DARK = 0.5  # a pixel is dark below this share of the skin's luminance
SKIN_REACH = 3  # the skin colour is taken within this many half windows of the corner
LUMA = torch.tensor([0.2126, 0.7152, 0.0722])
SMILE_YAWS = (-30.0, 0.0, 30.0)  # views the worst corner is taken over (degrees)
SMILE_POSES = {"smile": Pose(expressions={"smile": 1.0}), "smile_jaw": Pose(expressions={"smile": 1.0}, jaw=0.3)}


@dataclass(frozen=True)
class CornerDarkness:
    """Dark-pixel shares at the two mouth corners (image-left, image-right) of one render."""

    dark: tuple[float, float]  # dark pixels / window pixels
    corners: tuple[tuple[int, int], tuple[int, int]]  # (x, y) pixel of each corner
    half: int  # half the window side in pixels
    image: Tensor  # [H, W, 3] the avatar's render


def corner_camera(head: HeadModel, yaw_deg: float, size: int) -> Camera:
    """An orbit camera at yaw_deg (pitch 0) framing the head's neutral mesh like synth's rig."""
    with torch.no_grad():
        rest = head(head.neutral_params())[0]
    target, distance = framing(rest, FOV_Y_DEG, fill=0.8)
    return orbit_camera(yaw_deg, 0.0, distance, target, FOV_Y_DEG, size, size)


def mouth_corners(mesh_labels: Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
    """The image-left and image-right mouth corners (x, y) of a label map [H, W]: the outermost columns
    of the lips and mouth opening, at the mean row of their pixels in those columns."""
    mouth = torch.isin(mesh_labels, torch.tensor([LABEL["upper_lip"], LABEL["lower_lip"], LABEL["mouth_interior"]]))
    ys, xs = torch.nonzero(mouth, as_tuple=True)
    assert len(xs), "the mouth is not in view"
    corners = []
    for x in (int(xs.min()), int(xs.max())):
        rows = ys[(xs - x).abs() <= 1].float()
        corners.append((x, round(float(rows.mean()))))
    return corners[0], corners[1]


def _window(image: Tensor, centre: tuple[int, int], half: int) -> Tensor:
    """The pixels [M, C] of image [H, W, C] in the square of half side `half` around centre (x, y)."""
    x, y = centre
    h, w = image.shape[:2]
    return image[max(0, y - half): min(h, y + half + 1), max(0, x - half): min(w, x + half + 1)].reshape(-1, image.shape[2])


def corner_dark_share(image: Tensor, mesh_labels: Tensor, corner: tuple[int, int], half: int) -> float:
    """Share of dark pixels in the window at corner of image [H, W, 3]; mesh_labels [H, W] is the head's
    own label map (its skin pixels within SKIN_REACH half windows of the corner give the skin colour)."""
    around = _window(image, corner, SKIN_REACH * half)
    skin = around[_window(mesh_labels[..., None], corner, SKIN_REACH * half)[:, 0] == LABEL["skin"]]
    assert len(skin), f"no skin around the mouth corner at {corner}"
    dark = (_window(image, corner, half) @ LUMA) < DARK * float(skin.median(dim=0).values @ LUMA)
    return float(dark.float().mean())


@torch.no_grad()
def mouth_corner_darkness(avatar: Avatar, pose: Pose, renderer: MeshRenderer, yaw_deg: float = 0.0,
                          size: int = 512) -> CornerDarkness:
    """Render avatar at pose from yaw_deg and measure the dark share at each mouth corner."""
    head = avatar.head
    params = apply_pose(avatar, pose)
    camera = corner_camera(head, yaw_deg, size)
    image = render(avatar.splats(params), camera, (1.0, 1.0, 1.0)).rgb.clamp(0, 1)
    verts = avatar.posed_vertices(params)
    rest = head(head.neutral_params())[0]
    mesh_labels = renderer.render(verts, head.faces, head.face_labels, camera, rest_verts=rest).labels
    left, right = mouth_corners(mesh_labels)
    width = right[0] - left[0]
    half = max(1, round(WINDOW * width / 2))
    dark = (corner_dark_share(image, mesh_labels, left, half), corner_dark_share(image, mesh_labels, right, half))
    return CornerDarkness(dark, (left, right), half, image)


def worst_corner_darkness(avatar: Avatar, pose: Pose, renderer: MeshRenderer, yaws: tuple[float, ...] = SMILE_YAWS,
                          size: int = 512) -> float:
    """The largest dark share over both mouth corners of avatar at pose, seen from each of yaws."""
    return max(max(mouth_corner_darkness(avatar, pose, renderer, yaw, size).dark) for yaw in yaws)
