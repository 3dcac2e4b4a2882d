"""What is on this machine: models in huggingface_hub's cache (complete or partly downloaded), local
folders, and turning a choice into the folder a loader reads, without any network access."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.models.catalog import card
from engine.models.errors import ModelError, NotInstalledError
from engine.models.files import select_files
from engine.models.hub import cache_dir, repo_folder
from engine.models.settings import is_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Installed:
    """A model repository in the cache."""

    repo_id: str
    commit: str | None  # the commit refs/main points at (None: a download never finished)
    path: Path | None  # its snapshot folder
    complete: bool  # every file the app needs is there
    disk_bytes: int  # bytes its files take on disk (partial downloads included)
    fp16: bool  # the fp16 variant files are the ones present


def _disk_bytes(folder: Path) -> int:
    blobs = folder / "blobs"
    return sum(f.stat().st_size for f in blobs.iterdir() if f.is_file()) if blobs.is_dir() else 0


def _needed(repo_id: str, commit: str, snapshot: Path) -> tuple[bool, bool]:
    """(complete, fp16) of a snapshot, judged against the cached file listing of its commit."""
    from huggingface_hub import get_cached_repo_tree
    from huggingface_hub.errors import CachedRepoTreeNotFoundError

    try:
        files = [f.path for f in get_cached_repo_tree(repo_id, revision=commit, cache_dir=str(cache_dir()))]
    except CachedRepoTreeNotFoundError:  # fetched by other means: trust it when it holds weights
        weights = any(p.suffix in (".safetensors", ".bin") for p in snapshot.rglob("*"))
        return weights, False
    known = card(repo_id)
    kind = known.kind if known else ("img2img" if "model_index.json" in files else "causal-lm")
    for fp16 in (True, False):
        chosen = select_files(files, kind, fp16)
        if chosen and all((snapshot / p).is_file() for p in chosen):
            return True, fp16
    return False, False


def installed(repo_id: str) -> Installed | None:
    """The cache state of a hub id, or None when nothing of it is cached."""
    folder = repo_folder(repo_id)
    if not folder.is_dir():
        return None
    ref = folder / "refs" / "main"
    commit = ref.read_text().strip() if ref.is_file() else None
    snapshots = folder / "snapshots"
    path = snapshots / commit if commit else None
    if path is None and snapshots.is_dir():
        partial = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime)
        path = partial[-1] if partial else None
    complete, fp16 = (False, False)
    if commit and path is not None and path.is_dir():
        complete, fp16 = _needed(repo_id, commit, path)
    return Installed(repo_id, commit, path, complete, _disk_bytes(folder), fp16)


def cached_repo_ids() -> list[str]:
    """Hub ids of every model repository in the cache."""
    root = cache_dir()
    if not root.is_dir():
        return []
    return sorted(p.name[len("models--"):].replace("--", "/", 1) for p in root.iterdir()
                  if p.is_dir() and p.name.startswith("models--"))


def looks_like_path(source: str) -> bool:
    return source.startswith((".", "/", "~", "\\")) or (len(source) > 1 and source[1] == ":") or \
        source.count("/") > 1 or Path(source).expanduser().exists()


def resolve_local(source: str) -> Path:
    """The folder holding source's files: a local folder as it is, a hub id from the cache (never downloads).

    Raises NotInstalledError (hub id not fully in the cache) or ModelError (missing folder, URL).
    """
    if is_url(source):
        raise ModelError(f"{source} is an endpoint URL, not a model folder or hub id")
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if looks_like_path(source):
        raise ModelError(f"{source}: model folder not found")
    state = installed(source)
    if state is None or state.path is None:
        raise NotInstalledError(f"{source} is not on this machine: get it with `dynamicavatars models get {source}` "
                                "or Edit → Models… (or choose a local folder)")
    if not state.complete:
        raise NotInstalledError(f"{source} is only partly downloaded: get it again to fetch the rest "
                                f"(`dynamicavatars models get {source}`)")
    return state.path


def remove_model(repo_id: str) -> int:
    """Delete a hub id from the cache (every revision and partial file); the bytes freed (0 when absent)."""
    from huggingface_hub import scan_cache_dir

    folder = repo_folder(repo_id)
    if not folder.is_dir():
        return 0
    freed = _disk_bytes(folder)
    try:
        info = scan_cache_dir(str(cache_dir()))
        revisions = [r.commit_hash for repo in info.repos if repo.repo_id == repo_id and repo.repo_type == "model"
                     for r in repo.revisions]
        if revisions:
            info.delete_revisions(*revisions).execute()
    except Exception as exc:  # a damaged or partial entry the scanner refuses: the folder goes below all the same
        log.info("cache scan of %s failed (%s); removing its folder", repo_id, type(exc).__name__)
    shutil.rmtree(folder, ignore_errors=True)
    return freed
