"""Label maps for a dataset that has none, made by a face parser (engine.semantics.face_parser).

Every frame of a VHAP-layout dataset without a `label_path` gets `labels/{image stem}.png` (8-bit
COMPONENTS index + 1, 0 = background, the layout engine.data.vhap_writer writes) parsed from its image,
and its json entry the `label_path` key; frames that have a label map keep it. Files are written
atomically, each split's json once its frames are done, so a cancel leaves a readable dataset.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from engine.data.frames import load_image
from engine.data.vhap_format import LABEL_KEY, SPLITS, read_dataset
from engine.io.atomic import atomic_write
from engine.io.images import save_png

ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]


def frames_without_labels(root: str | Path) -> int:
    """How many frames of the dataset at root have no label map."""
    dataset = read_dataset(root, check_files=False)
    return sum(1 for split in dataset.splits.values() for r in split if r.label_path is None)


def write_label_maps(root: str | Path, parser: Callable[[Tensor], Tensor], progress: ProgressFn | None = None,
                     cancel: CancelFn | None = None) -> int:
    """Parse the images of every frame without a label map and add the maps to the dataset; the number written.

    parser: image [H, W, 3] float in [0, 1] -> labels [H, W] long (COMPONENTS index, -1 = none).
    """
    root = Path(root)
    todo = frames_without_labels(root)
    done = 0
    for name in SPLITS:
        json_path = root / f"transforms_{name}.json"
        if not json_path.is_file():
            continue
        db = json.loads(json_path.read_text())
        changed = False
        for frame in db["frames"]:
            if frame.get(LABEL_KEY):
                continue
            if cancel is not None and cancel():
                break
            image_path = root / str(frame["file_path"])
            if not image_path.suffix and not image_path.exists():
                image_path = image_path.with_suffix(".png")
            labels = parser(load_image(image_path))  # [H, W]
            assert labels.ndim == 2, f"the parser must return [H, W] labels, got {tuple(labels.shape)}"
            rel = f"labels/{Path(str(frame['file_path'])).stem}.png"
            values = (labels.detach().cpu().long().clamp(min=-1) + 1).to(torch.uint8).numpy()
            save_png(root / rel, np.ascontiguousarray(values))  # [H, W] uint8
            frame[LABEL_KEY] = rel
            changed = True
            done += 1
            if progress is not None:
                progress(done / max(todo, 1), f"label map {done}/{todo} ({rel})")
        if changed:
            with atomic_write(json_path, "w") as fh:
                json.dump(db, fh, indent=1)
        if cancel is not None and cancel():
            break
    return done
