"""Writer of the VHAP / GaussianAvatars dataset layout (see engine/data/vhap_format.py).

Frames stream in one at a time (`DatasetWriter.add_frame`), so a generator never holds more than
one image in memory; the json files are written at `close()`. Every file is written atomically
(temporary file in the same folder, then os.replace).

What is written, as VHAP's exporter writes it (ShenhanQian/VHAP vhap/export_as_nerf_dataset.py):
- images/{t:05d}_{c:02d}.png: RGB, 8-bit, composited over white (pass the composited image);
- fg_masks/{t:05d}_{c:02d}.png: 8-bit alpha (key fg_mask_path, only when a mask is given);
- labels/{t:05d}_{c:02d}.png: ours, 8-bit COMPONENTS index + 1, 0 = background (key label_path);
- flame_param/{t:05d}.npz: shape (S,), expr (1, E), rotation / neck_pose / jaw_pose / translation
  (1, 3), eyes_pose (1, 6), static_offset (1, V, 3) and dynamic_offset (1, V, 3) when present;
- canonical_flame_param.npz: the same keys for the canonical pose, without dynamic_offset;
- transforms_{split}.json per split plus transforms.json with every frame: per-frame intrinsics,
  transform_matrix (OpenGL camera-to-world), cy measured from the bottom (VHAP's convention), and
  at the top level the last frame's intrinsics, "timestep_indices" and "camera_indices".
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from engine.data.vhap_format import CANONICAL_FILE, LABEL_KEY, SPLITS
from engine.head.params import FlameParams
from engine.io.atomic import atomic_write
from engine.render.camera import Camera


@dataclass(frozen=True)
class FrameSample:
    """One image to write, with its camera and optional mask and label map."""

    split: str  # "train", "val" or "test"
    timestep: int  # timestep_index (>= 0)
    camera_index: int  # camera_index (>= 0)
    camera: Camera  # OpenCV camera; width/height must match the image
    image: Tensor  # [H, W, 3] float in [0, 1] (or uint8), already composited over white
    mask: Tensor | None = None  # [H, W] float alpha in [0, 1] (or uint8), or None
    labels: Tensor | None = None  # [H, W] long COMPONENTS index, -1 = background, or None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path atomically (engine.io.atomic: a temporary file in the same folder, then a rename)."""
    with atomic_write(path) as fh:
        fh.write(data)


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _to_uint8(value: Tensor | np.ndarray, name: str) -> np.ndarray:
    a = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
    if a.dtype == np.uint8:
        return a
    if not np.isfinite(a).all():
        raise ValueError(f"{name} has non-finite values")
    return np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def flame_npz_arrays(params: FlameParams, canonical: bool = False) -> dict[str, np.ndarray]:
    """The npz arrays of one frame of params in GaussianAvatars' per-timestep layout."""
    assert params.frames == 1, f"expected one frame of FLAME parameters, got {params.frames}"
    f32 = lambda t: t.detach().cpu().numpy().astype(np.float32)
    arrays = {
        k: f32(getattr(params, k)) for k in ("translation", "rotation", "neck_pose", "jaw_pose", "eyes_pose", "expr")
    }
    arrays["shape"] = f32(params.shape)
    if params.static_offset is not None:
        arrays["static_offset"] = f32(params.static_offset)[None]
    if params.dynamic_offset is not None and not canonical:
        arrays["dynamic_offset"] = f32(params.dynamic_offset)
    return arrays


def camera_json(camera: Camera) -> dict[str, Any]:
    """The per-frame camera keys VHAP writes for an OpenCV camera."""
    w2c = camera.world_to_cam.detach().cpu().double().numpy()
    c2w = np.linalg.inv(w2c)
    c2w[3] = [0.0, 0.0, 0.0, 1.0]
    c2w[:3, 1:3] *= -1.0  # OpenCV (y down, z forward) -> OpenGL (y up, z back)
    w, h = camera.width, camera.height
    return {
        "cx": float(camera.cx),
        "cy": float(h - camera.cy),  # VHAP's opencv->opengl conversion flips the principal point
        "fl_x": float(camera.fx),
        "fl_y": float(camera.fy),
        "h": h,
        "w": w,
        "camera_angle_x": 2.0 * math.atan(w / (2.0 * camera.fx)),
        "camera_angle_y": 2.0 * math.atan(h / (2.0 * camera.fy)),
        "transform_matrix": c2w.tolist(),
    }


class DatasetWriter:
    """Streams frames and FLAME parameters into a dataset folder; `close()` writes the json files."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._frames: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
        self._seen: set[tuple[str, int, int]] = set()
        self._flame_written: set[int] = set()
        self._canonical_written = False
        self._closed = False

    def add_frame(self, sample: FrameSample) -> None:
        """Write one frame's image (and mask and label map) now; remember its json entry."""
        if sample.split not in self._frames:
            raise ValueError(f"unknown split {sample.split!r}; expected one of {SPLITS}")
        t, c, cam = sample.timestep, sample.camera_index, sample.camera
        if t < 0 or c < 0:
            raise ValueError(f"timestep and camera_index must be >= 0, got {t}, {c}")
        if (sample.split, t, c) in self._seen:
            raise ValueError(f"frame timestep {t}, camera {c} already written to split {sample.split}")
        h, w = cam.height, cam.width
        assert tuple(sample.image.shape) == (h, w, 3), f"image must be [{h}, {w}, 3], got {tuple(sample.image.shape)}"
        stem = f"{t:05d}_{c:02d}"
        entry: dict[str, Any] = {
            "timestep_index": t,
            "timestep_index_original": t,
            "timestep_id": f"{t:05d}",
            "camera_index": c,
            "camera_id": f"{c:02d}",
            **camera_json(cam),
            "file_path": f"images/{stem}.png",
        }
        atomic_write_bytes(self.root / entry["file_path"], _png_bytes(_to_uint8(sample.image, "image")))
        if sample.mask is not None:
            assert tuple(sample.mask.shape) == (h, w), f"mask must be [{h}, {w}], got {tuple(sample.mask.shape)}"
            entry["fg_mask_path"] = f"fg_masks/{stem}.png"
            atomic_write_bytes(self.root / entry["fg_mask_path"], _png_bytes(_to_uint8(sample.mask, "mask")))
        if sample.labels is not None:
            assert tuple(sample.labels.shape) == (h, w), f"labels must be [{h}, {w}], got {tuple(sample.labels.shape)}"
            labels = sample.labels.detach().cpu().long()
            if labels.min() < -1 or labels.max() > 254:
                raise ValueError(f"labels must lie in [-1, 254], got [{int(labels.min())}, {int(labels.max())}]")
            entry[LABEL_KEY] = f"labels/{stem}.png"
            atomic_write_bytes(self.root / entry[LABEL_KEY], _png_bytes((labels + 1).to(torch.uint8).numpy()))
        entry["flame_param_path"] = f"flame_param/{t:05d}.npz"
        self._frames[sample.split].append(entry)
        self._seen.add((sample.split, t, c))

    def add_flame(self, timestep: int, params: FlameParams) -> None:
        """Write flame_param/{timestep:05d}.npz from one frame of params."""
        buf = io.BytesIO()
        np.savez(buf, **flame_npz_arrays(params))
        atomic_write_bytes(self.root / f"flame_param/{timestep:05d}.npz", buf.getvalue())
        self._flame_written.add(timestep)

    def set_canonical(self, params: FlameParams) -> None:
        """Write canonical_flame_param.npz from one frame of params (dynamic_offset dropped)."""
        buf = io.BytesIO()
        np.savez(buf, **flame_npz_arrays(params, canonical=True))
        atomic_write_bytes(self.root / CANONICAL_FILE, buf.getvalue())
        self._canonical_written = True

    def close(self) -> None:
        """Check completeness and write transforms_{split}.json and transforms.json."""
        if self._closed:
            return
        if not self._frames["train"]:
            raise ValueError(f"{self.root}: no training frames were written")
        needed = {e["timestep_index"] for frames in self._frames.values() for e in frames}
        missing = sorted(needed - self._flame_written)
        if missing:
            raise ValueError(f"{self.root}: FLAME parameters missing for timesteps {missing[:10]}")
        if not self._canonical_written:
            raise ValueError(f"{self.root}: canonical FLAME parameters were not written (set_canonical)")
        everything: list[dict[str, Any]] = []
        for name, frames in self._frames.items():
            if frames or name == "train":
                self._write_json(f"transforms_{name}.json", frames)
            everything.extend(frames)
        self._write_json("transforms.json", everything)
        self._closed = True

    def _write_json(self, name: str, frames: list[dict[str, Any]]) -> None:
        shared = {k: frames[-1][k] for k in ("cx", "cy", "fl_x", "fl_y", "h", "w", "camera_angle_x", "camera_angle_y")}
        db = {
            "frames": frames,
            **shared,
            "timestep_indices": sorted({e["timestep_index"] for e in frames}),
            "camera_indices": sorted({e["camera_index"] for e in frames}),
        }
        atomic_write_bytes(self.root / name, json.dumps(db, indent=2).encode())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()


def write_dataset(
    root: str | Path,
    frames: Iterable[FrameSample],
    flame: Mapping[int, FlameParams],
    canonical: FlameParams,
) -> Path:
    """Write a whole dataset: frames stream from the iterable; flame maps timestep -> one frame of params.

    Each FrameSample names its split (see `vhap_split` for VHAP's rule). Returns the root path.
    """
    with DatasetWriter(root) as writer:
        writer.set_canonical(canonical)
        for timestep, params in sorted(flame.items()):
            writer.add_flame(timestep, params)
        for sample in frames:
            writer.add_frame(sample)
    return Path(root)


def vhap_split(
    timesteps: Sequence[int], camera_indices: Sequence[int], train_ratio: float = 0.7
) -> Callable[[int, int], str]:
    """VHAP's split rule (split_json): the first ceil(ratio·T) timesteps train, the rest test;
    with several cameras, camera 8 (NeRSemble's front view) or else the last camera is held out
    of train as val. Returns split_of(timestep, camera_index) -> "train" | "val" | "test".
    """
    assert 0 < train_ratio <= 1, f"train_ratio must be in (0, 1], got {train_ratio}"
    steps = sorted(timesteps)
    cams = sorted(camera_indices)
    n_train = math.ceil(len(steps) * train_ratio)
    train_steps = set(steps[:n_train])
    val_cam = None if len(cams) < 2 else (8 if 8 in cams else cams[-1])

    def split_of(timestep: int, camera_index: int) -> str:
        if timestep not in train_steps:
            return "test"
        return "val" if camera_index == val_cam else "train"

    return split_of
