"""Fitting a selection to a dataset's label regions of some components at several training frames.

Ticking components selects the Gaussians labelled with them, so the outline drawn is only as good as
those labels (a Gaussian bound to a lip triangle may spill over the skin). When the dataset's label
maps are at hand, the selection's weights are fitted by least squares (fit_to_views) so that, drawn
at N training frames at once, it is the components' label region there: the outlines sharpen at
every other view too (bench/masks.py: `components_multiview`). Used by `dynamicavatars masks lift
--fit-frames` and the Masks panel's "Fit ticked components to a dataset".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.data.frames import FrameLoader, fit_size
from engine.data.vhap_format import AvatarDataset, DatasetError
from engine.head.params import FlameParams
from engine.semantics.fci import timestep_params
from engine.semantics.lift import FIT_STEPS, MaskView, fit_to_views, lift_mask

Progress = Callable[[float, str], None]
T = TypeVar("T")


def label_region(labels: Tensor, wanted: Sequence[int]) -> Tensor:
    """[H, W] bool: pixels of a label map [H, W] whose label is one of `wanted`."""
    return torch.isin(labels, torch.tensor(list(wanted), dtype=labels.dtype, device=labels.device))


def spread(records: Sequence[T], count: int) -> list[T]:
    """At most `count` of the records, evenly spread over them (every k-th from the first)."""
    return list(records[:: max(1, len(records) // count)][:count])


def region_views(
    avatar: Avatar,
    dataset: AvatarDataset,
    wanted: Sequence[int],  # component labels whose pixels form the region
    count: int,
    size: int | None = None,  # at most this many pixels on a side (None: the dataset's size)
    skip: tuple[int, int] | None = None,  # (timestep, camera index) of a frame to leave out
    params: dict[int, FlameParams] | None = None,  # timestep_params(avatar, dataset), when already made
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[list[MaskView], Tensor]:
    """(views of the `wanted` label region at `count` training frames spread over the split, [N] bool
    the Gaussians those views see). Raises DatasetError for a split without frames or label maps."""
    assert count > 0, f"count must be positive, got {count}"
    train = dataset.frames("train")
    if not train:
        raise DatasetError(dataset.root, "the train split has no frames")
    params = timestep_params(avatar, dataset) if params is None else params
    loader = FrameLoader(capacity=0)
    picked = [r for r in spread(train, count) if (r.timestep, r.camera_index) != skip]
    views: list[MaskView] = []
    seen = torch.zeros(avatar.gaussians.count, dtype=torch.bool)
    for i, record in enumerate(picked):
        if cancel is not None and cancel():
            break
        if record.label_path is None:
            raise DatasetError(record.image_path, "the dataset has no label map for this frame")
        w, h = (record.camera.width, record.camera.height) if size is None else fit_size(record.camera.width, record.camera.height, size)
        frame = loader.load(record, (w, h))
        assert frame.labels is not None
        region = label_region(frame.labels, wanted).float()  # [H, W]
        with torch.no_grad():
            posed = avatar.splats(params[record.timestep])
        views.append(MaskView(posed, frame.camera, region[None]))
        seen |= lift_mask(posed, frame.camera, region).seen.cpu()
        if progress is not None:
            progress((i + 1) / len(picked), f"reading label maps: {i + 1}/{len(picked)}")
    return views, seen


def fit_to_dataset(
    avatar: Avatar,
    dataset: AvatarDataset,
    wanted: Sequence[int],
    weights: Tensor,  # [N] starting selection weights in [0, 1] (e.g. the ticked components' Gaussians)
    count: int,
    steps: int = FIT_STEPS,
    size: int | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Tensor:
    """[N] weights fitted so the selection drawn at `count` training frames is the `wanted` label region.

    Only the Gaussians those frames see may change. progress(fraction, text) covers reading the label
    maps (the first fifth) and fitting; when cancel() turns true the weights reached so far return.
    """
    assert weights.shape == (avatar.gaussians.count,), f"weights must be [N={avatar.gaussians.count}], got {tuple(weights.shape)}"

    def part(lo: float, hi: float) -> Progress | None:
        return None if progress is None else (lambda f, text: progress(lo + (hi - lo) * f, text))

    views, seen = region_views(avatar, dataset, wanted, count, size, progress=part(0.0, 0.2), cancel=cancel)
    if not views or (cancel is not None and cancel()):
        return weights
    fitted = fit_to_views(views, weights[:, None].to(torch.float32), seen, steps, progress=part(0.2, 1.0), cancel=cancel)
    return fitted[:, 0]
