"""The Facial Component Identifier (FCI): a component label and a confidence for every Gaussian.

Sources, combined:
(a) the label of the triangle each Gaussian is bound to: the head's face_labels (exact for the demo
    head), or for a real FLAME model the face labels made from FLAME's published vertex masks
    (FLAME_masks.pkl: region name -> vertex indices) by `face_labels_from_flame_masks`;
(b) 2D face-parsing label maps of training frames (from the dataset, or from a face parser), voted
    onto Gaussians by their alpha-weighted contribution T·α to each pixel, summed over many frames
    (engine.semantics.lift.contributions with one-hot label maps).

`identify` combines them: p(label) ∝ prior_weight·onehot(triangle label) + votes / Σ votes, so a
Gaussian the cameras saw (votes of at least SEEN_SHARE of a view's pixels) takes the images' verdict and any
other keeps its triangle's label.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.data.frames import one_hot_labels
from engine.head.components import COMPONENTS, LABEL
from engine.head.flame_file import FlameFileError, read_restricted_pickle
from engine.head.params import FlameParams
from engine.render.camera import Camera
from engine.semantics.lift import SEEN_SHARE, contributions

if TYPE_CHECKING:
    from engine.data.vhap_format import AvatarDataset

N_LABELS = len(COMPONENTS)

FLAME_REGION_MAP: dict[str, str] = {
    "left_eyeball": "left_eye",
    "right_eyeball": "right_eye",
    "nose": "nose",
    "lips": "lips",  # split into upper_lip / lower_lip by height (see face_labels_from_flame_masks)
    "left_ear": "ears",
    "right_ear": "ears",
    "ears": "ears",
    "neck": "neck",
    "scalp": "hair",
    "hair": "hair",
    "teeth": "mouth_interior",
    "face": "skin",
    "forehead": "skin",
    "eye_region": "skin",
    "left_eye_region": "skin",
    "right_eye_region": "skin",
    "boundary": "skin",
    "eyeballs": "eyes",  # split left / right by the sign of x (FLAME's +x is the subject's left)
    "irises": "eyes",
}
"""FLAME_masks.pkl region names (official keys plus VHAP's extras) -> component or 'lips'/'eyes'."""

REGION_PRIORITY: tuple[str, ...] = (
    "face", "forehead", "boundary", "eye_region", "left_eye_region", "right_eye_region", "neck", "scalp", "hair",
    "left_ear", "right_ear", "ears", "nose", "lips", "teeth", "eyeballs", "irises", "left_eyeball", "right_eyeball",
)
"""Later regions win where FLAME's regions overlap (the specific over the general)."""


def read_flame_masks(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """FLAME_masks.pkl: region name -> vertex indices [K] (restricted unpickler, no chumpy needed)."""
    p = Path(path)
    if not p.is_file():
        raise FlameFileError(f"{p}: FLAME masks file not found")
    raw = read_restricted_pickle(p, "FLAME masks")
    if not isinstance(raw, dict) or not raw:
        raise FlameFileError(f"{p}: expected a dictionary region -> vertex indices")
    out = {}
    for key, value in raw.items():
        arr = np.asarray(value).reshape(-1)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise FlameFileError(f"{p}: region {key!r} does not hold vertex indices")
        out[str(key)] = arr.astype(np.int64)
    return out


def face_labels_from_flame_masks(
    masks: dict[str, np.ndarray], faces: Tensor, rest_verts: Tensor  # faces [F, 3]; rest_verts [V, 3]
) -> Tensor:
    """[F] component label per triangle from FLAME vertex masks (a triangle takes its vertices' majority)."""
    v = rest_verts.shape[0]
    vert_label = np.full(v, LABEL["skin"], dtype=np.int64)
    x = rest_verts[:, 0].detach().cpu().numpy()
    y = rest_verts[:, 1].detach().cpu().numpy()
    unknown = sorted(set(masks) - set(FLAME_REGION_MAP))
    order = [r for r in REGION_PRIORITY if r in masks] + unknown
    for region in order:
        idx = masks[region]
        if idx.size and (idx.min() < 0 or idx.max() >= v):
            raise ValueError(f"FLAME mask {region!r} indexes vertex {int(idx.max())}, the head has {v}")
        target = FLAME_REGION_MAP.get(region)
        if target is None:
            continue  # unknown regions are ignored (named in the docstring contract: skin stays)
        if target == "lips":
            mid = float(np.median(y[idx])) if idx.size else 0.0
            vert_label[idx] = np.where(y[idx] >= mid, LABEL["upper_lip"], LABEL["lower_lip"])
        elif target == "eyes":
            vert_label[idx] = np.where(x[idx] >= 0, LABEL["left_eye"], LABEL["right_eye"])
        else:
            vert_label[idx] = LABEL[target]
    f = faces.detach().cpu().numpy()
    corner = vert_label[f]  # [F, 3]
    counts = np.stack([(corner == c).sum(1) for c in range(N_LABELS)], axis=1)
    return torch.from_numpy(counts.argmax(1)).to(faces.device)


def triangle_labels(avatar: Avatar, face_labels: Tensor | None = None) -> Tensor:
    """[N] label of the triangle each Gaussian is bound to (face_labels [F] default: the head's)."""
    labels = avatar.head.face_labels if face_labels is None else face_labels
    return labels.to(avatar.gaussians.binding.device)[avatar.gaussians.binding]


@dataclass(frozen=True)
class LabelView:
    """One frame with a 2D label map."""

    params: FlameParams  # FLAME parameters of the frame [T=1]
    camera: Camera  # the view (its size is the label map's size)
    labels: Tensor  # [H, W] long COMPONENTS index, -1 = background / unknown


def vote_labels(
    avatar: Avatar,
    views: Iterable[LabelView],
    backend: str = "auto",
    progress: Callable[[float, str], None] | None = None,
    total: int | None = None,
) -> Tensor:
    """[N, L] Σ over views and pixels labelled c of T_i·α_i, each view's sum as a share of its pixels:
    each Gaussian's votes for each label (in the same units at any resolution)."""
    votes = torch.zeros(avatar.gaussians.count, N_LABELS, device=avatar.gaussians.binding.device)
    for i, view in enumerate(views):
        lab = view.labels.to(votes.device)
        assert lab.shape == (view.camera.height, view.camera.width), (
            f"labels must be [H, W] = [{view.camera.height}, {view.camera.width}], got {tuple(lab.shape)}"
        )
        onehot = one_hot_labels(lab, N_LABELS)
        with torch.no_grad():
            splats = avatar.splats(view.params)
        votes += contributions(splats, view.camera, onehot, backend) / (view.camera.height * view.camera.width)
        if progress is not None:
            progress((i + 1) / total if total else 0.0, f"voted frame {i + 1}")
    return votes


@dataclass(frozen=True)
class ComponentLabels:
    """The FCI's verdict."""

    labels: Tensor  # [N] long COMPONENTS index
    confidence: Tensor  # [N] float in [0, 1]: probability of the chosen label
    probs: Tensor  # [N, L] label probabilities
    seen: Tensor  # [N] bool: the images voted on this Gaussian


def identify(tri_labels: Tensor, votes: Tensor | None = None, prior_weight: float = 0.25) -> ComponentLabels:
    """Combine triangle labels [N] with image votes [N, L]: p ∝ prior_weight·onehot(tri) + votes/Σvotes."""
    n = tri_labels.shape[0]
    prior = torch.nn.functional.one_hot(tri_labels.clamp(min=0), N_LABELS).float()
    if votes is None:
        seen = torch.zeros(n, dtype=torch.bool, device=tri_labels.device)
        probs = prior
    else:
        assert votes.shape == (n, N_LABELS), f"votes must be [N, L] = [{n}, {N_LABELS}], got {tuple(votes.shape)}"
        total = votes.sum(1, keepdim=True)
        seen = total[:, 0] > SEEN_SHARE
        share = torch.where(seen[:, None], votes / total.clamp(min=SEEN_SHARE), torch.zeros_like(votes))
        mix = prior_weight * prior + share
        probs = mix / mix.sum(1, keepdim=True)
    confidence, labels = probs.max(dim=1)
    return ComponentLabels(labels=labels, confidence=confidence, probs=probs, seen=seen)


def voted_labels(votes: Tensor) -> tuple[Tensor, Tensor]:
    """(labels [N], seen [N] bool) from votes alone (argmax; unseen Gaussians get -1)."""
    seen = votes.sum(1) > SEEN_SHARE
    return torch.where(seen, votes.argmax(1), torch.full_like(seen, -1, dtype=torch.long)), seen


def agreement(a: Tensor, b: Tensor, weight: Tensor, where: Tensor | None = None) -> float:
    """Weighted share of Gaussians where labels a [N] and b [N] agree (weight [N], e.g. opacity)."""
    w = weight.float() * (where.float() if where is not None else 1.0)
    return float((w * (a == b).float()).sum() / w.sum().clamp(min=1e-12))


def timestep_params(avatar: Avatar, dataset: AvatarDataset) -> dict[int, FlameParams]:
    """Timestep -> the dataset's FLAME parameters of that timestep [T=1], fitted to the avatar's head
    (every split's timesteps; rows follow dataset.timesteps(None), as dataset.flame_params(None) stacks them)."""
    params = avatar.head.fit_params(dataset.flame_params(None), str(dataset.root))
    return {t: params.frame(i) for i, t in enumerate(dataset.timesteps(None))}


def dataset_label_views(
    avatar: Avatar,
    dataset: AvatarDataset,
    split: str = "train",
    size: int | None = None,
    stride: int = 1,
    parser: Callable[[Tensor], Tensor] | None = None,
) -> list[LabelView]:
    """LabelViews of every stride-th frame of a split, at most `size` pixels on a side.

    Label maps come from the dataset's label_path files, or from parser(image [H, W, 3]) -> [H, W]
    (e.g. engine.semantics.face_parser.FaceParser) when given or when the dataset has none.
    FLAME parameters per frame come from `timestep_params`.
    """
    from engine.data.frames import FrameLoader, fit_size
    from engine.data.vhap_format import DatasetError

    params = timestep_params(avatar, dataset)
    loader = FrameLoader(capacity=0)
    views = []
    for record in dataset.frames(split)[::stride]:
        w, h = (record.camera.width, record.camera.height) if size is None else fit_size(record.camera.width, record.camera.height, size)
        frame = loader.load(record, (w, h))
        labels = frame.labels
        if parser is not None or labels is None:
            if parser is None:
                raise DatasetError(record.image_path, "no label map for this frame and no face parser given")
            labels = parser(frame.image)
        views.append(LabelView(params[record.timestep], frame.camera, labels))
    return views
