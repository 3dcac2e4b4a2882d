"""Avatar folders and standard splat files.

An avatar folder holds GaussianAvatars' files: point_cloud.ply (local-space Gaussians with
binding_0) and flame_param.npz beside it, plus our avatar.json (format version, head model, name).
A standard 3DGS .ply holds world-space Gaussians that ordinary splat viewers show.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from engine.avatar.avatar import Avatar
from engine.avatar.flame_npz import load_flame_params, save_flame_params
from engine.avatar.gaussians import BoundGaussians
from engine.avatar.ply import BASE_FIELDS, TAIL_FIELDS, fields_to_sh, read_ply, sh_to_fields, write_ply
from engine.head.model import HeadModel, load_head
from engine.io.atomic import FileFormatError, atomic_write
from engine.render.splats import Splats

AVATAR_FORMAT_VERSION = 1
PLY_NAME = "point_cloud.ply"
PARAMS_NAME = "flame_param.npz"
MANIFEST_NAME = "avatar.json"


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


def load_gaussians_ply(path: str | os.PathLike, head: HeadModel) -> BoundGaussians:
    """Bound Gaussians from a GaussianAvatars ply; labels default to the bound triangle's label."""
    cols = read_ply(path, BASE_FIELDS + TAIL_FIELDS + ("binding_0",))
    binding = cols["binding_0"]
    if not np.isfinite(binding).all() or (binding != np.round(binding)).any() or (binding < 0).any():
        raise FileFormatError(path, "binding_0 must hold non-negative whole triangle indices")
    if binding.size and binding.max() >= head.n_faces:
        raise FileFormatError(
            path,
            f"Gaussians bound to triangle {int(binding.max())}, but head {head.name!r} has {head.n_faces} "
            "triangles: open it with the FLAME model it was trained with",
        )
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


def save_avatar(avatar: Avatar, folder: str | os.PathLike) -> Path:
    """Write an avatar folder (ply, npz, manifest); each file is replaced atomically."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    save_gaussians_ply(avatar.gaussians, out / PLY_NAME)
    save_flame_params(avatar.params, out / PARAMS_NAME)
    manifest = {"format": "dynamicavatars-avatar", "version": AVATAR_FORMAT_VERSION, "name": avatar.name,
                "head": avatar.head.source}
    with atomic_write(out / MANIFEST_NAME, "w") as fh:
        json.dump(manifest, fh, indent=2)
    return out


def load_avatar(path: str | os.PathLike, head: HeadModel | str | None = None) -> Avatar:
    """An avatar from a folder (or its point_cloud.ply). The head comes from the argument, else the
    manifest, else DYNAMICAVATARS_FLAME, else the demo head."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    ply = p if p.is_file() else folder / PLY_NAME
    if not ply.is_file():
        raise FileFormatError(ply, "avatar point cloud not found")
    manifest = _read_manifest(folder / MANIFEST_NAME)
    if not isinstance(head, HeadModel):
        source = head or manifest.get("head") or ("flame" if os.environ.get("DYNAMICAVATARS_FLAME") else "demo")
        head = load_head(source)
    gaussians = load_gaussians_ply(ply, head)
    params_file = folder / PARAMS_NAME
    params = head.fit_params(load_flame_params(params_file), str(params_file)) if params_file.is_file() else head.neutral_params()
    return Avatar(head, gaussians, params, manifest.get("name") or folder.name)


def _read_manifest(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FileFormatError(path, f"not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise FileFormatError(path, "expected a JSON object")
    if int(manifest.get("version", 1)) > AVATAR_FORMAT_VERSION:
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
