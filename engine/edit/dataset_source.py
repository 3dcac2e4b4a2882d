"""Where an edit's keyframes come from: the avatar's training dataset when it has one (the paper's dynamic
editing strategy edits a well-spread subset of the training frames), else rendered views (the avatar's
FLAME sequence × an orbit of cameras).

Training records the dataset folder in the avatar (avatar.json "dataset"); a person may choose another
folder. `dataset_source` says which source an edit will use and why, in words for the Edit panel and the
CLI. It only looks at the folder and its training split's JSON (quick enough for the GUI thread, even for
thousands of frames); `DatasetSource.open()` reads and validates the dataset, in the edit's worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.data.vhap_format import CANONICAL_FILE, AvatarDataset, read_dataset

RENDERED = "keyframes from rendered views"  # the avatar's FLAME sequence × orbit cameras
TRAIN_JSON = "transforms_train.json"


@dataclass(frozen=True)
class DatasetSource:
    """The keyframe source of an edit."""

    path: str | None  # the folder asked for (recorded or chosen), None when there is none
    text: str  # what to tell the user: which source, and why
    problem: str | None = None  # why the folder asked for cannot be used (missing, unreadable), or None
    frames: int = 0  # training frames the keyframes are picked from (0: rendered views)

    @property
    def usable(self) -> bool:
        """Keyframes come from the dataset's training frames."""
        return self.path is not None and self.problem is None

    def open(self) -> AvatarDataset | None:
        """The dataset, read and validated (DatasetError naming the file and the problem), or None for
        rendered views."""
        return read_dataset(self.path, check_files=False) if self.usable else None


def dataset_source(path: str | Path | None, recorded: bool = True) -> DatasetSource:
    """The source for a dataset folder (recorded: the avatar's own record, else chosen by the user)."""
    if path is None or str(path) == "":
        return DatasetSource(None, f"none recorded: {RENDERED}")
    problem = _problem(Path(path))
    if isinstance(problem, str):
        return DatasetSource(str(path), f"{problem}: {RENDERED}", problem)
    frames, steps, cams = problem
    how = "the avatar's training dataset" if recorded else "dataset"
    text = (f"{how} {Path(path).name}: keyframes from its {frames} training frames "
            f"({steps} timesteps × {cams} cameras)")
    return DatasetSource(str(path), text, None, frames)


def _problem(root: Path) -> str | tuple[int, int, int]:
    """Why root is not a usable dataset, or its (training frames, timesteps, cameras)."""
    if not root.is_dir():
        return f"{root}: dataset folder does not exist"
    train = root / TRAIN_JSON
    if not train.is_file():
        return f"{train}: missing (not a VHAP / GaussianAvatars dataset folder)"
    if not (root / CANONICAL_FILE).is_file():
        return f"{root / CANONICAL_FILE}: missing"
    try:
        frames = json.loads(train.read_text()).get("frames")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        return f"{train}: cannot be read as a dataset's JSON ({exc})"
    if not isinstance(frames, list) or not frames or not all(isinstance(f, dict) for f in frames):
        return f"{train}: its training split has no frames"
    steps = {f.get("timestep_index") for f in frames}
    cams = {f.get("camera_index") for f in frames}
    return len(frames), len(steps), len(cams)
