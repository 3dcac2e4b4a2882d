"""Training checkpoints: the trainer's full state in one file, written atomically."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch

from engine.io.atomic import FileFormatError, atomic_write

CHECKPOINT_VERSION = 1


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """Write a trainer state dict (engine.train.trainer.Trainer.state_dict) atomically."""
    with atomic_write(path) as fh:
        torch.save({"format": "dynamicavatars-checkpoint", "version": CHECKPOINT_VERSION, "state": state}, fh)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """The trainer state dict in a checkpoint; raises FileFormatError naming the file and the problem."""
    if not os.path.isfile(path):
        raise FileFormatError(path, "checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError) as exc:
        raise FileFormatError(path, f"not a readable checkpoint ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != "dynamicavatars-checkpoint":
        raise FileFormatError(path, "not a DynamicAvatars training checkpoint")
    if int(data.get("version", 0)) > CHECKPOINT_VERSION:
        raise FileFormatError(path, f"written by a newer DynamicAvatars (version {data['version']})")
    return data["state"]


def check_same_dataset(state: dict, signature: dict, path: str | os.PathLike) -> None:
    """Raise FileFormatError when a checkpoint was trained on another dataset than `signature` describes
    (engine.train.trainer.Trainer.dataset_signature). Checkpoints written before the signature pass."""
    theirs = state.get("dataset")
    if theirs is None or theirs == signature:
        return
    raise FileFormatError(path, f"trained on another dataset ({len(theirs['timesteps'])} timesteps, "
                                f"{theirs['train_frames']} training frames; this one has {len(signature['timesteps'])} "
                                f"and {signature['train_frames']}): resume with the dataset it was trained on, "
                                "or train into another folder")
