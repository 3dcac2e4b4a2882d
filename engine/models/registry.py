"""The registry's answers: which model each role will use and why, and what every known or cached
model is (for `models list` and the Models dialog)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.models.cache import Installed, cached_repo_ids, installed, looks_like_path, resolve_local
from engine.models.catalog import CATALOG, ROLE_INFO, ROLES, card, check_role
from engine.models.errors import ModelError
from engine.models.settings import Choice, ModelSettings

PIPELINE_KINDS: dict[str, str] = {
    "StableDiffusionInstructPix2PixPipeline": "instruct-pix2pix",
    "StableDiffusionInpaintPipeline": "inpaint",
    "StableDiffusionPipeline": "img2img",
    "StableDiffusionImg2ImgPipeline": "img2img",
    "LatentConsistencyModelPipeline": "img2img",
    "LatentConsistencyModelImg2ImgPipeline": "img2img",
}
"""diffusers pipeline classes (model_index.json) -> how the editor uses them."""


@dataclass(frozen=True)
class Resolved:
    """What a role will use, ready for a loader."""

    role: str
    choice: Choice | None  # None: the offline default
    backend: str  # editor: procedural / instruct-pix2pix / inpaint / img2img / http; refiner: rules / local / http;
    # parser, embedder: none / model
    path: Path | None  # local folder with the model's files (None: default or endpoint)
    reason: str  # one line for people: what runs and why

    @property
    def uses_model(self) -> bool:
        return self.path is not None or (self.choice is not None and self.choice.is_url)


def folder_kind(folder: Path) -> str | None:
    """The kind of a model folder from its files: a diffusers pipeline class, SegFormer, sentence embedder, LM."""
    index = folder / "model_index.json"
    if index.is_file():
        try:
            name = json.loads(index.read_text()).get("_class_name", "")
        except (OSError, ValueError):
            return None
        return PIPELINE_KINDS.get(name, "img2img" if "Pipeline" in str(name) else None)
    if (folder / "modules.json").is_file():
        return "sentence-embedder"
    config = folder / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text())
        except (OSError, ValueError):
            return None
        archs = " ".join(data.get("architectures") or [])
        if "Segformer" in archs or data.get("model_type") == "segformer":
            return "segformer"
        if "CausalLM" in archs or "LMHead" in archs:
            return "causal-lm"
    return None


def resolve(role: str, settings: ModelSettings) -> Resolved:
    """What `role` will use under settings (pins already merged); never reaches the network.

    Raises ModelError when the choice cannot be used (not downloaded, missing folder, wrong kind): the
    app then says so instead of silently falling back.
    """
    check_role(role)
    choice = settings.choice(role)
    info = ROLE_INFO[role]
    if choice is None:
        default = {"editor": "procedural", "refiner": "rules"}.get(role, "none")
        return Resolved(role, None, default, None, f"{default}: no {info.title.lower()} model set")
    if choice.is_url:
        name = f" ({choice.server_model})" if choice.server_model else ""
        return Resolved(role, choice, "http", None, f"http: endpoint {choice.source}{name}")
    folder = resolve_local(choice.source)
    kind = folder_kind(folder) or (card(choice.source).kind if card(choice.source) else None)
    expected = {"editor": ("instruct-pix2pix", "inpaint", "img2img"), "refiner": ("causal-lm",),
                "parser": ("segformer",), "embedder": ("sentence-embedder",)}[role]
    if kind not in expected:
        raise ModelError(f"{choice.source} is not a {info.title.lower()} model (found {kind or 'no known model'}; "
                         f"needs {' or '.join(expected)})")
    backend = {"causal-lm": "local", "segformer": "model", "sentence-embedder": "model"}.get(kind, kind)
    return Resolved(role, choice, backend, folder, f"{backend}: {choice.source}")


def describe(role: str, settings: ModelSettings) -> Resolved:
    """resolve(), but a choice that cannot be used becomes the offline default with the reason why."""
    try:
        return resolve(role, settings)
    except ModelError as exc:
        default = {"editor": "procedural", "refiner": "rules"}.get(role, "none")
        return Resolved(role, None, default, None, f"{default}: {exc}")


@dataclass(frozen=True)
class ModelEntry:
    """One row of `models list`."""

    id: str  # hub id, folder or URL
    role: str | None  # the catalog role, or the role it is chosen for
    title: str
    kind: str | None
    licence: str | None
    size_gb: float | None  # documented download size (full precision)
    status: str  # installed / partial / not installed / folder / missing folder / endpoint
    disk_bytes: int  # on disk
    used_for: tuple[str, ...]  # roles that use it now
    unlocks: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "title": self.title, "kind": self.kind, "licence": self.licence,
                "size_gb": self.size_gb, "status": self.status, "disk_bytes": self.disk_bytes,
                "used_for": list(self.used_for), "unlocks": self.unlocks}


def _status(state: Installed | None) -> str:
    if state is None:
        return "not installed"
    return "installed" if state.complete else "partial"


def list_models(settings: ModelSettings) -> list[ModelEntry]:
    """Catalog models, the chosen ones, and any other model in the cache, by role."""
    used: dict[str, list[str]] = {}
    for role in ROLES:
        choice = settings.choice(role)
        if choice is not None:
            used.setdefault(choice.source, []).append(role)
    entries: list[ModelEntry] = []
    seen: set[str] = set()
    for c in CATALOG:
        state = installed(c.id)
        entries.append(ModelEntry(c.id, c.role, c.title, c.kind, c.licence, c.size_gb, _status(state),
                                  state.disk_bytes if state else 0, tuple(used.get(c.id, ())), c.unlocks))
        seen.add(c.id.lower())
    others = [s for s in used if s.lower() not in seen] + [r for r in cached_repo_ids() if r.lower() not in seen]
    for source in dict.fromkeys(others):
        roles = tuple(used.get(source, ()))
        if source.startswith(("http://", "https://")):
            entries.append(ModelEntry(source, roles[0] if roles else None, "HTTP endpoint", None, None, None,
                                      "endpoint", 0, roles, ROLE_INFO[roles[0]].unlocks if roles else ""))
        elif looks_like_path(source) and not installed(source):
            path = Path(source).expanduser()
            entries.append(ModelEntry(source, roles[0] if roles else None, path.name, folder_kind(path)
                                      if path.is_dir() else None, None, None,
                                      "folder" if path.is_dir() else "missing folder", 0, roles, ""))
        else:
            state = installed(source)
            entries.append(ModelEntry(source, roles[0] if roles else None, source, None, None, None, _status(state),
                                      state.disk_bytes if state else 0, roles, ""))
    return entries
