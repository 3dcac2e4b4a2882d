"""Reader for the dataset layout that VHAP exports and GaussianAvatars trains on.

Layout (ShenhanQian/VHAP vhap/export_as_nerf_dataset.py; read by ShenhanQian/GaussianAvatars
scene/dataset_readers.py)::

    root/
      transforms_train.json       required; transforms_val.json / transforms_test.json optional
      canonical_flame_param.npz   FLAME parameters of the canonical pose (jaw slightly open)
      images/{t:05d}_{c:02d}.png  RGB composited over white
      fg_masks/{t:05d}_{c:02d}.png  8-bit alpha (only when the export had alpha maps)
      flame_param/{t:05d}.npz     per-timestep FLAME parameters
      labels/{t:05d}_{c:02d}.png  ours, optional: 8-bit COMPONENTS index + 1, 0 = background

Each json holds a "frames" list; a frame has timestep_index, camera_index, cx, cy, fl_x, fl_y,
w, h, camera_angle_x, camera_angle_y, transform_matrix, file_path, flame_param_path and, when
present, fg_mask_path and our "label_path". Missing intrinsics fall back to the top level.

Conventions:
- transform_matrix is camera-to-world in OpenGL/Blender axes; columns 1 and 2 are negated to
  reach OpenCV axes, then it is inverted to world-to-camera (as GaussianAvatars does).
- VHAP converts its cameras "opencv->opengl" (vhap/util/camera.py convert_camera_convention),
  which also flips the principal point: the json's cy is measured from the image bottom. The
  reader therefore uses cy_opencv = h - cy (principal_point="vhap", the default); pass
  principal_point="opencv" for files whose cy is measured from the top.
- A file_path without an extension gets ".png" (GaussianAvatars' reader does the same).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from engine.errors import UserError
from engine.head.params import FlameParams
from engine.io.images import open_image
from engine.io.json_file import read_json
from engine.io.npz import read_npz
from engine.render.camera import Camera

SPLITS: tuple[str, ...] = ("train", "val", "test")
CANONICAL_FILE = "canonical_flame_param.npz"
LABEL_KEY = "label_path"  # our per-frame key for the optional component label map
REQUIRED_NPZ_KEYS: tuple[str, ...] = ("shape", "expr", "rotation", "neck_pose", "jaw_pose", "eyes_pose", "translation")
NPZ_WIDTHS: dict[str, int] = {"rotation": 3, "neck_pose": 3, "jaw_pose": 3, "eyes_pose": 6, "translation": 3}
MAX_JSON_BYTES = 256 << 20  # largest transforms json read (VHAP's are ~1 kB per frame)
RIGID_TOLERANCE = 1e-3  # max |RᵀR − I| entry accepted for a camera rotation


class DatasetError(UserError, ValueError):
    """A dataset file is missing or malformed; names the file and the problem."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


@dataclass(frozen=True)
class FrameRecord:
    """One image of the dataset: which timestep, which camera, and where its files are."""

    timestep: int  # timestep_index (row key into the per-timestep FLAME parameters)
    camera_index: int  # camera_index
    camera: Camera  # OpenCV pinhole camera at the image's full size
    image_path: Path  # RGB image (composited over white)
    mask_path: Path | None  # 8-bit foreground alpha, or None when the export has none
    flame_param_path: Path  # per-timestep FLAME npz
    label_path: Path | None = None  # 8-bit component labels (index + 1, 0 = background), or None


@dataclass(frozen=True)
class AvatarDataset:
    """A VHAP / GaussianAvatars dataset on disk, validated."""

    root: Path  # dataset folder
    splits: dict[str, tuple[FrameRecord, ...]]  # split name -> frames in file order (absent splits omitted)
    canonical_path: Path  # canonical_flame_param.npz

    def frames(self, split: str = "train") -> tuple[FrameRecord, ...]:
        """The frames of one split (an empty tuple for a split the dataset lacks)."""
        return self.splits.get(split, ())

    def timesteps(self, split: str | None = "train") -> list[int]:
        """Sorted distinct timesteps of a split (None: of all splits); row i of flame_params(split)."""
        names = list(self.splits) if split is None else [split]
        return sorted({f.timestep for n in names for f in self.splits.get(n, ())})

    def camera_indices(self, split: str | None = "train") -> list[int]:
        """Sorted distinct camera indices of a split (None: of all splits)."""
        names = list(self.splits) if split is None else [split]
        return sorted({f.camera_index for n in names for f in self.splits.get(n, ())})

    def flame_params(self, split: str | None = "train") -> FlameParams:
        """Per-timestep FLAME parameters stacked in timestep order (T = len(timesteps(split)))."""
        paths: dict[int, Path] = {}
        for name in list(self.splits) if split is None else [split]:
            for f in self.splits.get(name, ()):
                paths.setdefault(f.timestep, f.flame_param_path)
        if not paths:
            raise DatasetError(self.root, f"split {split!r} has no frames, so no FLAME parameters")
        per_step = [read_flame_npz(paths[t]) for t in sorted(paths)]
        return _stack(per_step, [paths[t] for t in sorted(paths)])

    def canonical_params(self) -> FlameParams:
        """The canonical FLAME parameters (one frame)."""
        return read_flame_npz(self.canonical_path, canonical=True)


def read_dataset(
    root: str | Path, check_files: bool = True, principal_point: Literal["vhap", "opencv"] = "vhap",
    time_holdout: float | None = None,
) -> AvatarDataset:
    """Read and validate a dataset folder.

    check_files: also check that every image / mask / label exists with the size the json says
    (PIL header only, no decode) and that every FLAME npz has the right keys and shapes.
    time_holdout: split by time instead of the files' splits (`split_by_time`), for a monocular clip.
    Raises DatasetError naming the offending file and the problem.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "dataset folder does not exist")
    if not (root / "transforms_train.json").is_file():
        raise DatasetError(root / "transforms_train.json", "missing (every dataset needs a training split)")
    canonical = root / CANONICAL_FILE
    if not canonical.is_file():
        raise DatasetError(canonical, "missing (VHAP exports it with --flame_mode param)")
    splits: dict[str, tuple[FrameRecord, ...]] = {}
    for name in SPLITS:
        json_path = root / f"transforms_{name}.json"
        if json_path.is_file():
            splits[name] = _read_split(root, json_path, principal_point)
    dataset = AvatarDataset(root=root, splits=splits, canonical_path=canonical)
    if time_holdout is not None:
        dataset = split_by_time(dataset, time_holdout)
    if check_files:
        _check_files(dataset)
    return dataset


def split_by_time(dataset: AvatarDataset, holdout: float) -> AvatarDataset:
    """The dataset's frames (all splits) re-split by time: frames of the first ceil((1 − holdout)·T)
    timesteps train, those of the later timesteps are held out as "test" (no "val")."""
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"time holdout must be in [0, 1), got {holdout}")
    steps = dataset.timesteps(None)
    train_steps = set(steps[: max(1, math.ceil(len(steps) * (1.0 - holdout)))])
    seen: set[tuple[int, int]] = set()
    pooled = []
    for records in dataset.splits.values():
        for r in records:
            if (r.timestep, r.camera_index) not in seen:
                seen.add((r.timestep, r.camera_index))
                pooled.append(r)
    pooled.sort(key=lambda r: (r.timestep, r.camera_index))
    splits = {"train": tuple(r for r in pooled if r.timestep in train_steps),
              "test": tuple(r for r in pooled if r.timestep not in train_steps)}
    return AvatarDataset(dataset.root, {k: v for k, v in splits.items() if v or k == "train"}, dataset.canonical_path)


def _read_split(root: Path, json_path: Path, principal_point: str) -> tuple[FrameRecord, ...]:
    db = read_json(json_path, lambda problem: DatasetError(json_path, problem), MAX_JSON_BYTES)
    if not isinstance(db, dict) or not isinstance(db.get("frames"), list):
        raise DatasetError(json_path, "has no 'frames' list")
    records = tuple(_frame_record(root, json_path, db, i, fr, principal_point) for i, fr in enumerate(db["frames"]))
    _check_split_consistency(json_path, db, records)
    return records


def _frame_record(root: Path, json_path: Path, db: dict, i: int, frame: Any, principal_point: str) -> FrameRecord:
    where = f"frame {i}"
    if not isinstance(frame, dict):
        raise DatasetError(json_path, f"{where} is not an object")
    for key in ("timestep_index", "camera_index", "transform_matrix", "file_path", "flame_param_path"):
        if key not in frame:
            raise DatasetError(json_path, f"{where} lacks '{key}'")
    t, c = frame["timestep_index"], frame["camera_index"]
    if not (type(t) is int and type(c) is int and t >= 0 and c >= 0):
        raise DatasetError(
            json_path, f"{where}: timestep_index and camera_index must be non-negative integers, got {t!r}, {c!r}"
        )
    camera = _camera(json_path, f"{where} (timestep {t}, camera {c})", db, frame, principal_point)
    rel = {key: _relative(json_path, where, key, frame.get(key))
           for key in ("file_path", "fg_mask_path", "flame_param_path", LABEL_KEY)}
    return FrameRecord(
        timestep=t,
        camera_index=c,
        camera=camera,
        image_path=_resolve_image(root, rel["file_path"]),
        mask_path=_resolve_image(root, rel["fg_mask_path"]) if rel["fg_mask_path"] else None,
        flame_param_path=root / rel["flame_param_path"],
        label_path=_resolve_image(root, rel[LABEL_KEY]) if rel[LABEL_KEY] else None,
    )


def _relative(json_path: Path, where: str, key: str, value: Any) -> str:
    """A frame's file path as text ('' for none); DatasetError for a value that cannot be a path."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or "\x00" in value:
        raise DatasetError(json_path, f"{where}: '{key}' must be a file path, got {str(value)[:80]!r}")
    return value


def _resolve_image(root: Path, rel: str) -> Path:
    path = root / rel
    if path.suffix == "" and not path.exists():
        path = path.with_name(path.name + ".png")
    return path


def _intrinsic(json_path: Path, where: str, db: dict, frame: dict, key: str) -> float | None:
    value = frame.get(key, db.get(key))
    if value is None:
        return None
    try:
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise DatasetError(json_path, f"{where}: '{key}' must be a finite number, got {str(value)[:40]}")
    return number


def _camera(json_path: Path, where: str, db: dict, frame: dict, principal_point: str) -> Camera:
    get = lambda key: _intrinsic(json_path, where, db, frame, key)
    w, h = get("w"), get("h")
    if w is None or h is None or w <= 0 or h <= 0 or w != int(w) or h != int(h):
        raise DatasetError(json_path, f"{where}: needs positive integer 'w' and 'h', got {w!r}, {h!r}")
    fx, fy, cx, cy = get("fl_x"), get("fl_y"), get("cx"), get("cy")
    if fx is None:
        angle = get("camera_angle_x")
        if angle is None or not 0 < angle < math.pi:
            raise DatasetError(json_path, f"{where}: needs 'fl_x' or a 'camera_angle_x' in (0, pi)")
        fx = w / (2 * math.tan(angle / 2))
    if fy is None:
        angle = get("camera_angle_y")
        fy = h / (2 * math.tan(angle / 2)) if angle is not None and 0 < angle < math.pi else fx
    if fx <= 0 or fy <= 0:
        raise DatasetError(json_path, f"{where}: focal lengths must be positive, got {fx}, {fy}")
    cx = w / 2 if cx is None else cx
    cy = h / 2 if cy is None else (h - cy if principal_point == "vhap" else cy)
    w2c = _world_to_cam(json_path, where, frame["transform_matrix"])
    return Camera(torch.from_numpy(w2c).float(), fx=fx, fy=fy, cx=cx, cy=cy, width=int(w), height=int(h))


def _world_to_cam(json_path: Path, where: str, matrix: Any) -> np.ndarray:
    """[4, 4] float64 OpenCV world-to-camera of an OpenGL camera-to-world transform_matrix."""
    try:
        c2w = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(json_path, f"{where}: transform_matrix is not numeric ({exc})") from exc
    if c2w.shape == (3, 4):
        c2w = np.vstack([c2w, [0.0, 0.0, 0.0, 1.0]])
    if c2w.shape != (4, 4):
        raise DatasetError(json_path, f"{where}: transform_matrix must be 4x4, got shape {c2w.shape}")
    if not np.isfinite(c2w).all():
        raise DatasetError(json_path, f"{where}: transform_matrix has non-finite entries")
    rot = c2w[:3, :3]
    err = np.abs(rot.T @ rot - np.eye(3)).max()
    if err > RIGID_TOLERANCE or np.linalg.det(rot) < 0 or np.abs(c2w[3] - [0, 0, 0, 1]).max() > 1e-6:
        raise DatasetError(
            json_path,
            f"{where}: transform_matrix is not a rigid transform (|RᵀR−I| = {err:.2e}, det = {np.linalg.det(rot):.3f})",
        )
    c2w = c2w.copy()
    c2w[:3, 1:3] *= -1.0  # OpenGL (y up, z back) -> OpenCV (y down, z forward)
    w2c = np.eye(4)
    w2c[:3, :3] = c2w[:3, :3].T
    w2c[:3, 3] = -c2w[:3, :3].T @ c2w[:3, 3]
    return w2c


def _check_split_consistency(json_path: Path, db: dict, records: tuple[FrameRecord, ...]) -> None:
    seen: set[tuple[int, int]] = set()
    npz_of: dict[int, Path] = {}
    for r in records:
        key = (r.timestep, r.camera_index)
        if key in seen:
            raise DatasetError(json_path, f"timestep {r.timestep}, camera {r.camera_index} appears twice")
        seen.add(key)
        if npz_of.setdefault(r.timestep, r.flame_param_path) != r.flame_param_path:
            raise DatasetError(
                json_path, f"timestep {r.timestep} names two FLAME files: {npz_of[r.timestep]} and {r.flame_param_path}"
            )
    counts = Counter(r.timestep for r in records)
    if len(set(counts.values())) > 1:
        (t_lo, n_lo), (t_hi, n_hi) = (
            min(counts.items(), key=lambda kv: kv[1]),
            max(counts.items(), key=lambda kv: kv[1]),
        )
        raise DatasetError(
            json_path,
            f"inconsistent frames per timestep: timestep {t_lo} has {n_lo} cameras, timestep {t_hi} has {n_hi}",
        )
    for key, attr in (("timestep_indices", "timestep"), ("camera_indices", "camera_index")):
        listed = db.get(key)
        if isinstance(listed, list):
            listed = [v for v in listed if type(v) is int]
            extra = sorted({getattr(r, attr) for r in records} - set(listed))
            if extra:
                raise DatasetError(json_path, f"frames use {attr} {extra[:5]} not listed in '{key}'")


def _check_files(dataset: AvatarDataset) -> None:
    checked_npz: set[Path] = set()
    for records in dataset.splits.values():
        for r in records:
            size = (r.camera.width, r.camera.height)
            _check_image(r.image_path, size)
            if r.mask_path is not None:
                _check_image(r.mask_path, size)
            if r.label_path is not None:
                _check_image(r.label_path, size, modes=("L", "P"))
            if r.flame_param_path not in checked_npz:
                read_flame_npz(r.flame_param_path)
                checked_npz.add(r.flame_param_path)
    read_flame_npz(dataset.canonical_path, canonical=True)


def _check_image(path: Path, size: tuple[int, int], modes: tuple[str, ...] | None = None) -> None:
    """Existence and header check (no pixel decode)."""
    if not path.is_file():
        raise DatasetError(path, "image file is missing")
    with open_image(path, lambda problem: DatasetError(path, problem), decode=False) as im:
        got, mode = im.size, im.mode
    if got != size:
        raise DatasetError(path, f"image is {got[0]}x{got[1]} but the transforms say {size[0]}x{size[1]}")
    if modes is not None and mode not in modes:
        raise DatasetError(path, f"label map must be 8-bit single channel, got mode {mode}")


def read_flame_npz(path: Path, canonical: bool = False) -> FlameParams:
    """One-frame FlameParams from a GaussianAvatars per-timestep (or canonical) npz.

    Keys: shape (S,) or (1, S); expr (1, E); rotation, neck_pose, jaw_pose, translation (1, 3);
    eyes_pose (1, 6); optional static_offset (1, V, 3) or (V, 3); optional dynamic_offset
    (1, V, 3) (ignored in the canonical file).
    """
    if not path.is_file():
        raise DatasetError(path, "FLAME parameter file is missing")
    arrays = read_npz(path, lambda problem: DatasetError(path, problem))
    missing = [k for k in REQUIRED_NPZ_KEYS if k not in arrays]
    if missing:
        raise DatasetError(path, f"missing keys {missing} (has {sorted(arrays)})")
    for key in REQUIRED_NPZ_KEYS + ("static_offset", "dynamic_offset"):
        value = arrays.get(key)
        if value is not None and value.dtype.kind not in "biuf":
            raise DatasetError(path, f"'{key}' must hold numbers, got {value.dtype}")
    for key, value in arrays.items():
        if value.dtype.kind in "fiu" and not np.isfinite(value).all():
            raise DatasetError(path, f"'{key}' has non-finite values")
    shape = arrays["shape"]
    if not (shape.ndim == 1 or (shape.ndim == 2 and shape.shape[0] == 1)) or shape.size == 0:
        raise DatasetError(path, f"'shape' must be (S,) or (1, S), got {shape.shape}")
    expr = arrays["expr"]
    if expr.ndim != 2 or expr.shape[0] != 1 or expr.shape[1] == 0:
        raise DatasetError(path, f"'expr' must be (1, E), got {expr.shape}")
    for key, width in NPZ_WIDTHS.items():
        if arrays[key].shape != (1, width):
            raise DatasetError(path, f"'{key}' must be (1, {width}), got {arrays[key].shape}")
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    static = arrays.get("static_offset")
    if static is not None:
        if static.ndim == 3 and static.shape[0] == 1:
            static = static[0]
        if static.ndim != 2 or static.shape[1] != 3:
            raise DatasetError(
                path, f"'static_offset' must be (1, V, 3) or (V, 3), got {arrays['static_offset'].shape}"
            )
    dynamic = None if canonical else arrays.get("dynamic_offset")
    if dynamic is not None and (dynamic.ndim != 3 or dynamic.shape[0] != 1 or dynamic.shape[2] != 3):
        raise DatasetError(path, f"'dynamic_offset' must be (1, V, 3), got {dynamic.shape}")
    return FlameParams(
        shape=t(shape.reshape(-1)),
        expr=t(expr),
        **{k: t(arrays[k]) for k in NPZ_WIDTHS},
        static_offset=None if static is None else t(static),
        dynamic_offset=None if dynamic is None else t(dynamic),
    )


def _stack(per_step: list[FlameParams], paths: list[Path]) -> FlameParams:
    """Stack one-frame parameters along the frame axis; shape and static offset from the first."""
    first = per_step[0]
    for p, path in zip(per_step, paths):
        if p.shape.shape != first.shape.shape or p.expr.shape[1] != first.expr.shape[1]:
            raise DatasetError(
                path,
                f"shape/expr sizes {tuple(p.shape.shape)}/{p.expr.shape[1]} differ from "
                f"{paths[0]}'s {tuple(first.shape.shape)}/{first.expr.shape[1]}",
            )
        if (p.dynamic_offset is None) != (first.dynamic_offset is None):
            raise DatasetError(path, f"dynamic_offset present in some timesteps but not others (compare {paths[0]})")
    cat = lambda name: torch.cat([getattr(p, name) for p in per_step])
    return FlameParams(
        shape=first.shape,
        expr=cat("expr"),
        **{k: cat(k) for k in NPZ_WIDTHS},
        static_offset=first.static_offset,
        dynamic_offset=None if first.dynamic_offset is None else cat("dynamic_offset"),
    )
