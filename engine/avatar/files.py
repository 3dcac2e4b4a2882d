"""Avatar folders and standard splat files.

An avatar folder holds GaussianAvatars' files: point_cloud.ply (local-space Gaussians with
binding_0) and flame_param.npz beside it, plus our avatar.json (format version, head model, name, and
the dataset folder it was trained on, when known).
GaussianAvatars' own output opens as it is: output/<run>/point_cloud/iteration_<N>/ holds the
same two files (the highest N is taken), and those avatars are made on FLAME with teeth.
A standard 3DGS .ply holds world-space Gaussians that ordinary splat viewers show.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.avatar.avatar import Avatar
from engine.avatar.flame_npz import load_flame_params, save_flame_params
from engine.avatar.gaussians import BoundGaussians
from engine.avatar.ply import BASE_FIELDS, TAIL_FIELDS, fields_to_sh, read_ply, sh_to_fields, write_ply
from engine.head.flame_file import FlameFileError
from engine.head.match import PASS_FLAME, binding_mismatch, head_for, made_on_flame
from engine.head.model import FLAME_ENV, HeadModel, load_head
from engine.io.atomic import FileFormatError, atomic_write
from engine.io.json_file import read_json
from engine.render.splats import Splats

AVATAR_FORMAT_VERSION = 1
PLY_NAME = "point_cloud.ply"
PARAMS_NAME = "flame_param.npz"
MANIFEST_NAME = "avatar.json"
RUN_FOLDER = "point_cloud"  # GaussianAvatars: output/<run>/point_cloud/iteration_<N>/
ITERATION = re.compile(r"^iteration_(\d+)$")


class FlameModelNeeded(FileFormatError):
    """An avatar made on FLAME was opened without a FLAME model (the GUI asks for the file)."""


@dataclass(frozen=True)
class AvatarFiles:
    """Where an avatar's files are."""

    ply: Path  # point_cloud.ply
    params: Path | None  # flame_param.npz beside it, if any
    manifest: Path | None  # our avatar.json beside it, if any
    iteration: int | None  # N of a GaussianAvatars point_cloud/iteration_<N> folder, else None
    name: str  # a name for the avatar: the run's folder name for a GaussianAvatars run


def _iterations(folder: Path) -> list[tuple[int, Path]]:
    """(N, folder) of iteration_<N> subfolders holding a point_cloud.ply, highest N last."""
    found = [(int(m.group(1)), d) for d in folder.iterdir() if d.is_dir() and (m := ITERATION.match(d.name))]
    return sorted((n, d) for n, d in found if (d / PLY_NAME).is_file())


def find_avatar_files(path: str | os.PathLike) -> AvatarFiles:
    """The files of the avatar at path: a point_cloud.ply, a folder holding one, or a GaussianAvatars
    output folder (output/<run>, its point_cloud/ or one iteration_<N>/; the highest N is taken)."""
    p = Path(path)
    if not p.exists():
        raise FileFormatError(p, "no such avatar file or folder")
    folder = p if p.is_dir() else p.parent
    if p.is_dir() and not (p / PLY_NAME).is_file():
        runs = _iterations(p / RUN_FOLDER) if (p / RUN_FOLDER).is_dir() else _iterations(p)
        if not runs:
            raise FileFormatError(p, f"no avatar here: expected {PLY_NAME}, or a GaussianAvatars output folder "
                                     f"with {RUN_FOLDER}/iteration_<N>/{PLY_NAME}")
        folder = runs[-1][1]
    ply = p if p.is_file() else folder / PLY_NAME
    match = ITERATION.match(folder.name)
    iteration = int(match.group(1)) if match else None
    run = folder.parent.parent if match and folder.parent.name == RUN_FOLDER else None
    params, manifest = folder / PARAMS_NAME, folder / MANIFEST_NAME
    return AvatarFiles(ply, params if params.is_file() else None, manifest if manifest.is_file() else None,
                       iteration, (run or folder).name)


def _columns(xyz: np.ndarray, sh: np.ndarray, opacity: np.ndarray, log_scale: np.ndarray, rot: np.ndarray) -> dict[str, np.ndarray]:
    n = xyz.shape[0]
    cols: dict[str, np.ndarray] = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    cols.update({"nx": np.zeros(n), "ny": np.zeros(n), "nz": np.zeros(n)})
    cols.update(sh_to_fields(sh))
    cols["opacity"] = opacity
    cols.update({f"scale_{i}": log_scale[:, i] for i in range(3)})
    cols.update({f"rot_{i}": rot[:, i] for i in range(4)})
    return cols


def save_gaussians_ply(g: BoundGaussians, path: str | os.PathLike) -> None:
    """GaussianAvatars point_cloud.ply (local space, binding_0) plus our label property."""
    np_ = lambda t: t.detach().cpu().numpy()  # noqa: E731
    cols = _columns(np_(g.xyz), np_(g.sh), np_(g.opacity_logit), np_(g.log_scale), np_(g.rotation))
    cols["binding_0"] = np_(g.binding).astype(np.float32)
    cols["label"] = np_(g.labels).astype(np.float32)
    write_ply(path, cols)


def _binding(cols: dict[str, np.ndarray], path: str | os.PathLike) -> np.ndarray:
    binding = cols["binding_0"]
    if not np.isfinite(binding).all() or (binding != np.round(binding)).any() or (binding < 0).any():
        raise FileFormatError(path, "binding_0 must hold non-negative whole triangle indices")
    return binding


def _bound_gaussians(cols: dict[str, np.ndarray], head: HeadModel, path: str | os.PathLike) -> BoundGaussians:
    """Bound Gaussians from ply columns; labels default to the bound triangle's label."""
    binding = _binding(cols, path)
    if binding.size and binding.max() >= head.n_faces:
        raise FileFormatError(path, binding_mismatch(head, int(binding.max())))
    binding_t = torch.from_numpy(binding.astype(np.int64))
    stack = lambda names: torch.from_numpy(np.stack([cols[n] for n in names], axis=1))  # noqa: E731
    if "label" in cols:
        labels = torch.from_numpy(cols["label"].astype(np.int64))
    else:
        labels = head.face_labels.cpu()[binding_t]
    return BoundGaussians(
        binding=binding_t,
        xyz=stack(["x", "y", "z"]),
        rotation=stack([f"rot_{i}" for i in range(4)]),
        log_scale=stack([f"scale_{i}" for i in range(3)]),
        opacity_logit=torch.from_numpy(cols["opacity"].copy()),
        sh=torch.from_numpy(fields_to_sh(cols, path)),
        labels=labels,
    )


def load_gaussians_ply(path: str | os.PathLike, head: HeadModel) -> BoundGaussians:
    """Bound Gaussians from a GaussianAvatars ply; labels default to the bound triangle's label."""
    return _bound_gaussians(read_ply(path, BASE_FIELDS + TAIL_FIELDS + ("binding_0",)), head, path)


def save_avatar(avatar: Avatar, folder: str | os.PathLike) -> Path:
    """Write an avatar folder (ply, npz, manifest); each file is replaced atomically."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    save_gaussians_ply(avatar.gaussians, out / PLY_NAME)
    save_flame_params(avatar.params, out / PARAMS_NAME)
    manifest = {"format": "dynamicavatars-avatar", "version": AVATAR_FORMAT_VERSION, "name": avatar.name,
                "head": avatar.head.source}
    if avatar.iteration is not None:
        manifest["iteration"] = avatar.iteration
    if avatar.dataset is not None:
        manifest["dataset"] = avatar.dataset
    with atomic_write(out / MANIFEST_NAME, "w") as fh:
        json.dump(manifest, fh, indent=2)
    return out


def load_avatar(path: str | os.PathLike, head: HeadModel | str | None = None) -> Avatar:
    """An avatar from a folder, its point_cloud.ply, or a GaussianAvatars output folder.

    The head comes from the argument, else the manifest, else DYNAMICAVATARS_FLAME, else the demo
    head; a FLAME head gets GaussianAvatars' teeth when the files need them. A ply without flame_param.npz
    beside it takes the head's neutral parameters, unless the folder's avatar.json says save_avatar wrote
    one. Raises FileFormatError naming the file and the problem (FlameModelNeeded when a FLAME-made avatar has no FLAME model).
    """
    files = find_avatar_files(path)
    manifest = _read_manifest(files.manifest) if files.manifest is not None else {}
    if manifest and files.params is None:  # save_avatar writes both: without it the shape and sequence are lost
        raise FileFormatError(files.ply.parent / PARAMS_NAME, "missing: this avatar folder's FLAME parameters "
                                                              "(shape, expressions, poses) are gone")
    cols = read_ply(files.ply, BASE_FIELDS + TAIL_FIELDS + ("binding_0",))
    binding = _binding(cols, files.ply)
    params = load_flame_params(files.params) if files.params is not None else None
    rows = None if params is None or params.static_offset is None else int(params.static_offset.shape[0])
    head_model = head if isinstance(head, HeadModel) else _avatar_head(head, manifest, files, rows)
    head_model = head_for(head_model, rows, int(binding.max()) if binding.size else None)
    gaussians = _bound_gaussians(cols, head_model, files.ply)
    try:
        fitted = head_model.fit_params(params, str(files.params)) if params is not None else head_model.neutral_params()
    except ValueError as exc:
        raise FileFormatError(files.params or files.ply, str(exc).removeprefix(f"{files.params}: ")) from None
    iteration = files.iteration if files.iteration is not None else manifest.get("iteration")
    return Avatar(head_model, gaussians, fitted, manifest.get("name") or files.name, iteration, manifest.get("dataset"))


def _avatar_head(head: str | None, manifest: dict, files: AvatarFiles, offset_rows: int | None) -> HeadModel:
    """The head an avatar names or needs; refuses a FLAME-made avatar when no FLAME model is known."""
    source = head or manifest.get("head") or ("flame" if os.environ.get(FLAME_ENV) else None)
    if source is None and (made_on_flame(offset_rows) or files.iteration is not None):
        raise FlameModelNeeded(files.params or files.ply, "this avatar was made with FLAME (GaussianAvatars); "
                                                          f"the demo head cannot drive it: {PASS_FLAME}")
    if head is None and files.manifest is not None and source == manifest.get("head"):
        try:
            return load_head(source)
        except (FlameFileError, OSError) as exc:  # OSError: a name the system refuses (too long, ...)
            raise FileFormatError(files.manifest, f"its head model cannot be loaded ({str(exc)[:300]})") from None
    return load_head(source or "demo")


def _read_manifest(path: Path) -> dict:
    if not path.is_file():
        return {}
    manifest = read_json(path, lambda problem: FileFormatError(path, problem))
    if not isinstance(manifest, dict):
        raise FileFormatError(path, "expected a JSON object")
    kinds = {"version": int, "name": str, "head": str, "iteration": int, "dataset": str}
    wrong = [k for k, kind in kinds.items() if manifest.get(k) is not None and type(manifest[k]) is not kind]
    if wrong or (manifest.get("version") or 1) < 1 or (manifest.get("iteration") or 0) < 0:
        raise FileFormatError(path, f"{', '.join(wrong) or 'version or iteration'} of the wrong type or value")
    if (manifest.get("version") or 1) > AVATAR_FORMAT_VERSION:
        raise FileFormatError(path, f"written by a newer DynamicAvatars (format {manifest['version']}); please update")
    return manifest


def save_splats_ply(splats: Splats, path: str | os.PathLike) -> None:
    """Standard 3DGS .ply in world space (raw log-scales, opacity logits) for other splat tools."""
    np_ = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
    opac = np.clip(np_(splats.opacities), 1e-6, 1 - 1e-6)
    quats = np_(torch.nn.functional.normalize(splats.quats, dim=-1))
    write_ply(path, _columns(np_(splats.means), np_(splats.sh), np.log(opac / (1 - opac)), np.log(np_(splats.scales)), quats))


def load_splats_ply(path: str | os.PathLike) -> Splats:
    """World-space Gaussians from a standard 3DGS .ply."""
    cols = read_ply(path)
    t = lambda names: torch.from_numpy(np.stack([cols[n] for n in names], axis=1))  # noqa: E731
    return Splats(
        means=t(["x", "y", "z"]),
        quats=t([f"rot_{i}" for i in range(4)]),
        scales=torch.exp(t([f"scale_{i}" for i in range(3)])),
        opacities=torch.sigmoid(torch.from_numpy(cols["opacity"].copy())),
        sh=torch.from_numpy(fields_to_sh(cols, path)),
    )
