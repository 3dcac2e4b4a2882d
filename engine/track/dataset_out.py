"""Writing a tracked clip as a VHAP / GaussianAvatars dataset the trainer reads.

One camera (index 0) for every frame: a monocular clip whose views come from the head turning.
The split is by time: the first (1 − holdout) of the frames train, the later ones are held out as
"test" (novel poses and expressions later in the clip, never a camera the training did not see).
Images are composited over white with the foreground mask, which is written beside them; label
maps are the tracked mesh's component labels (engine/data/mesh_render.py), so the trainer's label
loss works. Beside the layout: track.json (where every frame came from, the fit's figures) and
landmarks.npz (detected and fitted landmarks).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.data.vhap_writer import DatasetWriter, FrameSample, atomic_write_bytes
from engine.head.model import HeadModel
from engine.io.atomic import staged_folder
from engine.track.clip import Clip
from engine.track.sources import IngestCancelled
from engine.track.tracker import Tracking

TRACK_FILE = "track.json"
LANDMARKS_FILE = "landmarks.npz"
FORMAT = "dynamicavatars-track"
VERSION = 1

Progress = Callable[[float, str], None]
Cancel = Callable[[], bool]


def time_split(frames: int, holdout: float) -> list[str]:
    """Split name per frame: the first ceil((1 − holdout)·T) frames "train", the rest "test"."""
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    n_train = max(1, math.ceil(frames * (1.0 - holdout)))
    return ["train" if t < n_train else "test" for t in range(frames)]


def write_tracked_dataset(out: str | Path, clip: Clip, tracking: Tracking, head: HeadModel, holdout: float,
                          meta: dict[str, Any] | None = None, progress: Progress | None = None,
                          cancel: Cancel | None = None) -> Path:
    """Write the dataset to `out` (built in out.partial, renamed when complete; a cancel leaves `out` as it was)."""
    from engine.data.mesh_render import MeshRenderer

    out = Path(out)
    splits = time_split(clip.frames, holdout)
    params = tracking.params
    with staged_folder(out) as work, MeshRenderer() as renderer, torch.no_grad():
        writer = DatasetWriter(work)
        writer.set_canonical(head.neutral_params().with_values(shape=params.shape, static_offset=params.static_offset))
        rest = head(head.neutral_params())[0]
        for t in range(clip.frames):
            if cancel is not None and cancel():
                raise IngestCancelled("ingest cancelled")
            frame = params.frame(t)
            writer.add_flame(t, frame)
            verts = head(frame)[0]
            labels = renderer.render(verts, head.faces, head.face_labels, tracking.camera, rest_verts=rest).labels
            image = torch.from_numpy(clip.images[t]).float() / 255.0
            mask = None
            if clip.masks is not None:
                mask = torch.from_numpy(clip.masks[t]).float()
                image = image * mask[..., None] + (1.0 - mask[..., None])
            writer.add_frame(FrameSample(splits[t], t, 0, tracking.camera, image, mask, labels))
            if progress is not None:
                progress((t + 1) / clip.frames, f"wrote {t + 1}/{clip.frames} frames")
        writer.close()
        _write_extras(work, clip, tracking, head, holdout, splits, meta or {})
    return out


def _write_extras(root: Path, clip: Clip, tracking: Tracking, head: HeadModel, holdout: float, splits: list[str],
                  meta: dict[str, Any]) -> None:
    finite = lambda a: [None if not np.isfinite(v) else float(v) for v in a]
    record = {
        "format": FORMAT,
        "version": VERSION,
        "source": str(clip.source.path),
        "kind": clip.source.kind,
        "fps": clip.source.fps,
        "crop": list(clip.crop),
        "size": list(clip.size),
        "head": head.source,
        "focal": tracking.camera.fx,
        "holdout": holdout,
        "splits": {name: splits.count(name) for name in ("train", "test")},
        "times": [float(t) for t in clip.times],
        "indices": [int(i) for i in clip.indices],
        "found": [bool(f) for f in clip.found],
        "residual_px": finite(tracking.residual_px),
        "tracking_seconds": tracking.seconds,
        **meta,
    }
    atomic_write_bytes(root / TRACK_FILE, json.dumps(record, indent=2).encode())
    buf = io.BytesIO()
    np.savez(buf, detected=clip.landmarks, fitted=tracking.fitted_landmarks)
    atomic_write_bytes(root / LANDMARKS_FILE, buf.getvalue())


def read_track_record(root: str | Path) -> dict[str, Any] | None:
    """The dataset's track.json, or None when it has none (not made by ingest)."""
    path = Path(root) / TRACK_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None
