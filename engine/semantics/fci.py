"""The Facial Component Identifier (FCI): a component label and a confidence for every Gaussian.

Sources, combined:
(a) the label of the triangle each Gaussian is bound to: the head's face_labels (exact for the demo
    head; for a real FLAME model made from FLAME_masks.pkl by engine.head.flame_masks when the head
    is loaded);
(b) 2D face-parsing label maps of training frames (from the dataset, or from a face parser), voted
    onto Gaussians by their alpha-weighted contribution T·α to each pixel, summed over many frames
    (engine.semantics.lift.contributions with one-hot label maps).

`identify` combines them: p(label) ∝ prior_weight·onehot(triangle label) + votes / Σ votes, so a
Gaussian the cameras saw (votes of at least SEEN_SHARE of a view's pixels) takes the images' verdict and any
other keeps its triangle's label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.data.frames import one_hot_labels
from engine.head.components import COMPONENTS
from engine.head.params import FlameParams
from engine.render.camera import Camera
from engine.semantics.lift import SEEN_SHARE, contributions

if TYPE_CHECKING:
    from engine.data.vhap_format import AvatarDataset

N_LABELS = len(COMPONENTS)

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
