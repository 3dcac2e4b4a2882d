"""Where an edit's keyframes come from: the avatar's training dataset when it has one (the paper's dynamic
editing strategy edits a well-spread subset of the training frames), else rendered views (the avatar's
FLAME sequence × an orbit of cameras).

Training records the dataset folder in the avatar (avatar.json "dataset"); a person may choose another
folder. `dataset_source` says which source an edit will use and why, in words for the Edit panel and the
CLI, without reading any image (it parses the dataset's JSON files only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.data.vhap_format import AvatarDataset, DatasetError, read_dataset

RENDERED = "keyframes from rendered views"  # the avatar's FLAME sequence × orbit cameras


@dataclass(frozen=True)
class DatasetSource:
    """The keyframe source of an edit."""

    dataset: AvatarDataset | None  # the dataset whose training frames are the candidates, None: rendered views
    path: str | None  # the folder asked for (recorded or chosen), None when there is none
    text: str  # what to tell the user: which source, and why
    problem: str | None = None  # why the folder asked for cannot be used (missing, unreadable), or None

    @property
    def frames(self) -> int:
        """Training frames the keyframes are picked from (0: rendered views)."""
        return 0 if self.dataset is None else len(self.dataset.frames("train"))


def dataset_source(path: str | Path | None, recorded: bool = True) -> DatasetSource:
    """The source for a dataset folder (recorded: the avatar's own record, else chosen by the user)."""
    if path is None or str(path) == "":
        return DatasetSource(None, None, f"none recorded: {RENDERED}")
    try:
        dataset = read_dataset(path, check_files=False)
    except DatasetError as exc:
        return DatasetSource(None, str(path), f"{exc}: {RENDERED}", str(exc))
    except (OSError, ValueError) as exc:  # unreadable JSON, permissions: name the folder and the problem
        problem = f"{path}: cannot be read ({exc})"
        return DatasetSource(None, str(path), f"{problem}: {RENDERED}", problem)
    train = dataset.frames("train")
    if not train:
        problem = f"{path}: its training split has no frames"
        return DatasetSource(None, str(path), f"{problem}: {RENDERED}", problem)
    how = "the avatar's training dataset" if recorded else "dataset"
    text = (f"{how} {Path(path).name}: keyframes from its {len(train)} training frames "
            f"({len(dataset.timesteps('train'))} timesteps × {len(dataset.camera_indices('train'))} cameras)")
    return DatasetSource(dataset, str(path), text)
