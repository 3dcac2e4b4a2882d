"""The project file (.dap): one zip holding everything a person needs to reopen their work.

    manifest.json        format name + version, avatar head, layer list, selection names, saved_at,
                         recovery_of (autosave copies only)
    avatar/              point_cloud.ply, flame_param.npz, avatar.json (engine.avatar.files layout)
    layers/<i>.npz       one per edit layer (arrays; metadata in the manifest)
    selections.npz       named per-Gaussian bool/float masks (sel_0, sel_1, … in manifest order)
    sequence.npz         the FLAME sequence being shown, when it is not the avatar's own (optional)
    current_param.npz    the expression/pose shown when saved, one frame (optional)
    presets.json, prompt_history.json, ui.json
    models.json          models pinned for this project, role -> {source, server_model} (optional;
                         never API keys)

Writing goes to a temporary file beside the target, renamed over it only when complete, so an
interrupted save leaves the previous project intact. Reading never writes to the file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.avatar.files import MANIFEST_NAME, PARAMS_NAME, PLY_NAME, load_avatar, save_avatar
from engine.avatar.flame_npz import flame_params_from_arrays, flame_params_to_arrays
from engine.edit.layers import EditLayer, PoseOffset, compose, pose_offset
from engine.head.flame_file import FlameFileError
from engine.head.model import HeadModel, load_head
from engine.head.params import FlameParams
from engine.io.atomic import FileFormatError, atomic_write
from engine.io.json_file import loads_json
from engine.io.npz import ZIP_ERRORS, check_zip_members
from engine.project.layers_io import (
    layer_arrays,
    layer_from_parts,
    layer_meta,
    npz_bytes,
    read_npz,
    selection_arrays,
    selections_from_parts,
)

PROJECT_FORMAT = "dynamicavatars-project"
PROJECT_VERSION = 1
PROJECT_SUFFIX = ".dap"
_JSON_PARTS: tuple[str, ...] = ("presets", "prompt_history", "ui")
AVATAR_FILES: tuple[str, ...] = (PLY_NAME, PARAMS_NAME, MANIFEST_NAME)  # what avatar/ holds
MAX_PROJECT_BYTES = 4 << 30  # most a project may declare uncompressed (a 1M-Gaussian avatar is ~0.25 GB)


class MissingFlameModelError(FileFormatError):
    """The project's avatar was made with a FLAME model file that is not where the project says."""

    def __init__(self, project: str | os.PathLike, model: str) -> None:
        super().__init__(project, f"its avatar needs the FLAME model file {model}, which is missing; "
                                  "locate the model (or set DYNAMICAVATARS_FLAME) and open the project again")
        self.model_path = Path(model)


@dataclass
class Project:
    """Everything saved in a project file."""

    avatar: Avatar  # the base avatar, before edit layers
    layers: list[EditLayer] = field(default_factory=list)  # edit layers, in the order they apply
    selections: dict[str, Tensor] = field(default_factory=dict)  # name -> [N] bool/float per-Gaussian mask
    presets: dict[str, Any] = field(default_factory=dict)  # JSON-able named presets (poses, brushes, edits)
    prompt_history: list[Any] = field(default_factory=list)  # JSON-able prompt entries, oldest first
    ui: dict[str, Any] = field(default_factory=dict)  # free-form JSON-able UI state (camera, panels, pose)
    sequence: FlameParams | None = None  # the shown FLAME sequence when not the avatar's own (file, take)
    current_params: FlameParams | None = None  # the expression/pose shown when saved, one frame
    models: dict[str, Any] = field(default_factory=dict)  # pinned models, role -> {"source", "server_model"}

    def composed_avatar(self) -> Avatar:
        """The avatar with every enabled layer's Gaussian changes applied."""
        return replace(self.avatar, gaussians=compose(self.avatar.gaussians, self.layers))

    def pose_offset(self) -> PoseOffset | None:
        """The summed expression and jaw offsets of the enabled layers, or None."""
        return pose_offset(self.layers, self.avatar.head.n_expr)


def _json_bytes(value: Any, what: str) -> bytes:
    try:
        return json.dumps(value, indent=1, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"project {what} cannot be saved as JSON ({exc})") from None


def _write_avatar(zf: zipfile.ZipFile, avatar: Avatar) -> None:
    with tempfile.TemporaryDirectory(prefix="dap-save-") as tmp:
        folder = save_avatar(avatar, Path(tmp) / "avatar")
        for file in sorted(folder.iterdir()):
            zf.write(file, f"avatar/{file.name}")


def _write_layers(zf: zipfile.ZipFile, layers: list[EditLayer]) -> list[dict[str, Any]]:
    metas = []
    for i, layer in enumerate(layers):
        name = f"layers/{i:03d}.npz"
        zf.writestr(name, npz_bytes(layer_arrays(layer)))
        metas.append(layer_meta(layer, name))
    return metas


def save_project(project: Project, path: str | os.PathLike, recovery_of: str | os.PathLike | None = None) -> Path:
    """Write project to path (a .dap zip) atomically; recovery_of marks an autosave copy of that project."""
    target = Path(path)
    names, sel_arrays = selection_arrays(project.selections)
    parts = {f"{key}.json": _json_bytes(getattr(project, key), key) for key in _JSON_PARTS}
    for i, layer in enumerate(project.layers):
        _json_bytes(layer.info, f"layer {i} ({layer.name!r}) info")
    with atomic_write(target) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        _write_avatar(zf, project.avatar)
        metas = _write_layers(zf, project.layers)
        zf.writestr("selections.npz", npz_bytes(sel_arrays))
        for key in ("sequence", "current_params"):
            value = getattr(project, key)
            if value is not None:
                zf.writestr(f"{key}.npz", npz_bytes(flame_params_to_arrays(value)))
        for name, data in parts.items():
            zf.writestr(name, data)
        zf.writestr("models.json", _json_bytes(project.models, "models"))
        manifest = {
            "format": PROJECT_FORMAT, "version": PROJECT_VERSION, "saved_at": time.time(),
            "name": project.avatar.name, "head": project.avatar.head.source,
            "layers": metas, "selections": names,
            "recovery_of": None if recovery_of is None else str(Path(recovery_of).resolve()),
        }
        zf.writestr("manifest.json", _json_bytes(manifest, "manifest"))
    return target


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The checked manifest of a project file (format, version) without reading the rest."""
    members = _read_members(Path(path), only=("manifest.json",))
    return _check_manifest(Path(path), members)


def _read_members(path: Path, only: tuple[str, ...] | None = None) -> dict[str, bytes]:
    """The members of a project zip (only those named, if given), after checking their names and declared
    sizes (MAX_PROJECT_BYTES in all) so that nothing is decompressed past what the zip declares."""
    if not path.is_file():
        raise FileFormatError(path, "project file not found")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = check_zip_members(zf, _Damaged, MAX_PROJECT_BYTES)
            return {i.filename: zf.read(i) for i in infos if (only is None or i.filename in only) and not i.is_dir()}
    except _Damaged as exc:
        raise FileFormatError(path, f"not a DynamicAvatars project, or damaged: {exc}; the file was left as it is") from None
    except ZIP_ERRORS as exc:
        raise FileFormatError(path, f"not a DynamicAvatars project, or damaged ({exc}); the file was left as it is") from None


class _Damaged(Exception):
    """A problem with a project zip's members (turned into FileFormatError naming the project)."""


def _check_manifest(path: Path, members: dict[str, bytes]) -> dict[str, Any]:
    if "manifest.json" not in members:
        raise FileFormatError(path, "no manifest.json: not a DynamicAvatars project, or damaged")
    manifest = loads_json(members["manifest.json"], lambda problem: FileFormatError(path, f"manifest.json is {problem}"))
    if not isinstance(manifest, dict) or manifest.get("format") != PROJECT_FORMAT:
        raise FileFormatError(path, f"manifest.json does not describe a {PROJECT_FORMAT} file")
    version = manifest.get("version")
    if type(version) is not int or version < 1:
        raise FileFormatError(path, f"manifest.json has no valid version ({version!r})")
    if version > PROJECT_VERSION:
        raise FileFormatError(path, f"written by a newer DynamicAvatars (project format {version}; this version "
                                    f"reads up to {PROJECT_VERSION}); please update. The file was left as it is")
    for key, kind, what in (("layers", list, "a list"), ("selections", list, "a list"), ("name", str, "text"),
                            ("saved_at", (int, float), "a number"), ("recovery_of", str, "text")):
        if manifest.get(key) is not None and not isinstance(manifest[key], kind):
            raise FileFormatError(path, f"manifest.json: {key} must be {what}")
    if not all(isinstance(meta, dict) for meta in manifest.get("layers") or []):
        raise FileFormatError(path, "manifest.json: every layer must be an object")
    return manifest


def _resolve_head(path: Path, source: Any, head: HeadModel | str | None) -> HeadModel:
    if isinstance(head, HeadModel):
        return head
    wanted = head if head is not None else source
    if not isinstance(wanted, str) or not wanted:
        raise FileFormatError(path, "manifest.json names no head model")
    if "\x00" in wanted or len(wanted) > 4096:
        raise FileFormatError(path, "manifest.json names a head model that cannot be a file path")
    if wanted not in ("demo", "flame") and not os.path.exists(wanted):
        raise MissingFlameModelError(path, wanted)
    try:
        return load_head(wanted)
    except FlameFileError as exc:
        raise FileFormatError(path, f"cannot load its FLAME model: {exc}") from None


def _member(members: dict[str, bytes], path: Path, name: str) -> bytes:
    if name not in members:
        raise FileFormatError(path, f"{name} is missing from the project")
    return members[name]


def load_project(path: str | os.PathLike, head: HeadModel | str | None = None) -> Project:
    """Read a .dap project. head overrides the FLAME model the project names (e.g. after the user
    located a moved model file). Raises FileFormatError (MissingFlameModelError for a missing FLAME
    file) naming the project and the problem; the file itself is never modified."""
    p = Path(path)
    members = _read_members(p)
    manifest = _check_manifest(p, members)
    head_model = _resolve_head(p, manifest.get("head"), head)
    with tempfile.TemporaryDirectory(prefix="dap-load-") as tmp:
        folder = Path(tmp) / "avatar"
        folder.mkdir()
        for name in AVATAR_FILES:
            if f"avatar/{name}" in members:
                (folder / name).write_bytes(members[f"avatar/{name}"])
        _member(members, p, "avatar/point_cloud.ply")
        try:
            avatar = load_avatar(folder, head=head_model)
        except (FileFormatError, ValueError) as exc:
            problem = exc.problem if isinstance(exc, FileFormatError) else str(exc)
            raise FileFormatError(p, f"its avatar cannot be read: {problem}") from None
    return Project(avatar=avatar, **_load_rest(p, members, manifest, avatar))


def _load_rest(p: Path, members: dict[str, bytes], manifest: dict[str, Any], avatar: Avatar) -> dict[str, Any]:
    layers = []
    for i, meta in enumerate(manifest.get("layers") or []):
        if not isinstance(meta.get("file"), str):
            raise FileFormatError(p, f"manifest.json layer {i} is malformed")
        origin = f"{p}:{meta['file']}"
        arrays = read_npz(_member(members, p, meta["file"]), origin)
        layers.append(layer_from_parts(meta, arrays, origin, avatar.gaussians, avatar.head.n_faces))
    sel = read_npz(_member(members, p, "selections.npz"), f"{p}:selections.npz")
    out: dict[str, Any] = {"layers": layers,
                           "selections": selections_from_parts(list(manifest.get("selections") or []), sel, f"{p}:selections.npz")}
    for key in ("sequence", "current_params"):
        if f"{key}.npz" in members:
            origin = f"{p}:{key}.npz"
            params = flame_params_from_arrays(read_npz(members[f"{key}.npz"], origin), origin)
            try:
                out[key] = avatar.head.fit_params(params, origin)
            except ValueError as exc:
                raise FileFormatError(origin, str(exc)) from None
    for key in _JSON_PARTS:
        out[key] = loads_json(_member(members, p, f"{key}.json"),
                              lambda problem, key=key: FileFormatError(p, f"{key}.json is {problem}"))
    if not isinstance(out["presets"], dict) or not isinstance(out["prompt_history"], list) or not isinstance(out["ui"], dict):
        raise FileFormatError(p, "presets.json and ui.json must hold objects, prompt_history.json a list")
    out["models"] = _models_part(p, members)
    return out


def _models_part(p: Path, members: dict[str, bytes]) -> dict[str, Any]:
    if "models.json" not in members:  # projects saved before models could be pinned
        return {}
    models = loads_json(members["models.json"], lambda problem: FileFormatError(p, f"models.json is {problem}"))
    if not isinstance(models, dict):
        raise FileFormatError(p, "models.json must hold an object of role: model")
    return models


def read_model_pins(path: str | os.PathLike) -> dict[str, Any]:
    """The models a project pins (role -> {"source", "server_model"}), without reading its avatar."""
    p = Path(path)
    members = _read_members(p, only=("manifest.json", "models.json"))
    _check_manifest(p, members)
    return _models_part(p, members)


def write_model_pins(path: str | os.PathLike, models: dict[str, Any]) -> None:
    """Replace a project's pinned models, keeping every other part byte for byte (atomic rewrite)."""
    p = Path(path)
    members = _read_members(p)
    _check_manifest(p, members)
    members["models.json"] = _json_bytes(models, "models")
    with atomic_write(p) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
