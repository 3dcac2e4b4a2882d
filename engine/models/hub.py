"""Download models by hub id through huggingface_hub into its standard cache.

A download is planned first (the repository's file list, the files this app needs, what the cache
already holds, the disk space), then fetched with `snapshot_download` restricted to those files.
Progress reports bytes and rate; cancel stops at the next chunk; the files finished before a cancel
or crash stay in the cache and the next `download_model` fetches only the rest. (huggingface_hub
2.x writes each file to a temporary name and drops it when interrupted, so a file is resumed from
its start, not mid-file.) Offline mode (the settings' flag or HF_HUB_OFFLINE) never reaches the hub.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.io.atomic import atomic_write
from engine.models.catalog import card
from engine.models.errors import (
    DiskSpaceError,
    DownloadCancelled,
    HubUnreachableError,
    ModelError,
    OfflineError,
)
from engine.models.files import has_fp16_variant, select_files
from engine.models.settings import ModelSettings

DEFAULT_ENDPOINT = "https://huggingface.co"
ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]


def cache_dir() -> Path:
    """huggingface_hub's cache folder, read from HF_HUB_CACHE / HF_HOME now (not at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_endpoint(settings: ModelSettings) -> str:
    """The settings' mirror, else HF_ENDPOINT, else the Hub."""
    return (settings.hub_endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_offline(settings: ModelSettings) -> bool:
    """True when the settings or HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE forbid reaching the hub."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return settings.offline or any(str(f).lower() in ("1", "true", "yes", "on") for f in flags if f) \
        or constants.is_offline_mode()


def repo_folder(repo_id: str, root: Path | None = None) -> Path:
    """The cache folder of a model repository (models--org--name)."""
    return (root or cache_dir()) / ("models--" + repo_id.replace("/", "--"))


def format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


@dataclass(frozen=True)
class DownloadPlan:
    """What a download of one model fetches."""

    repo_id: str
    endpoint: str  # hub or mirror URL
    commit: str  # the revision's commit hash
    fp16: bool  # the fp16 variant files were chosen
    files: tuple[tuple[str, int], ...]  # (path in the repo, bytes) of every file needed
    have: frozenset[str]  # of those, the ones already in the cache at this commit

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)

    @property
    def missing_bytes(self) -> int:
        return sum(size for path, size in self.files if path not in self.have)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.repo_id, "endpoint": self.endpoint, "commit": self.commit, "fp16": self.fp16,
                "files": len(self.files), "total_bytes": self.total_bytes, "missing_bytes": self.missing_bytes}


@dataclass(frozen=True)
class DownloadResult:
    """A finished download."""

    plan: DownloadPlan
    path: Path  # the snapshot folder in the cache
    fetched_bytes: int  # bytes received this time
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {**self.plan.as_dict(), "path": str(self.path), "fetched_bytes": self.fetched_bytes,
                "seconds": round(self.seconds, 3)}


def hub_errors(endpoint: str, repo_id: str, exc: BaseException) -> ModelError:
    """A ModelError with a message for a person, for an exception of huggingface_hub or its HTTP client."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, OfflineModeIsEnabled):
        return OfflineError(f"offline mode is on (HF_HUB_OFFLINE): cannot fetch {repo_id}; models already on this "
                            "machine keep working")
    if isinstance(exc, (httpx2.ConnectError, httpx2.TimeoutException, httpx2.ProxyError, LocalEntryNotFoundError)):
        return HubUnreachableError(
            f"cannot reach the model hub at {endpoint} to fetch {repo_id} ({type(exc).__name__}: {str(exc)[:160]}); "
            "check the network or the hub mirror in the Models settings. Models already on this machine keep working")
    if isinstance(exc, GatedRepoError):
        return ModelError(f"{repo_id} is gated: accept its licence on its hub page and log in (`hf auth login`)")
    if isinstance(exc, RepositoryNotFoundError):
        return ModelError(f"{repo_id}: no such model at {endpoint} (or it is private: log in with `hf auth login`)")
    if isinstance(exc, RevisionNotFoundError):
        return ModelError(f"{repo_id}: the hub has no such revision")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        return HubUnreachableError(f"the model hub at {endpoint} answered HTTP {status} for {repo_id}; try again later")
    return ModelError(f"{repo_id}: download failed ({type(exc).__name__}: {str(exc)[:200]})")


def _api(endpoint: str) -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, library_name="dynamicavatars")


def plan_download(repo_id: str, settings: ModelSettings, fp16: bool = False) -> DownloadPlan:
    """Ask the hub for the repository's files and choose the ones needed (raises ModelError subclasses)."""
    from huggingface_hub.hf_api import RepoFile

    endpoint = hub_endpoint(settings)
    if is_offline(settings):
        raise OfflineError(f"offline mode is on (Models settings or HF_HUB_OFFLINE): cannot fetch {repo_id}; "
                           "turn it off to download, or choose a local folder")
    api = _api(endpoint)
    try:
        info = api.model_info(repo_id)
        tree = [f for f in api.list_repo_tree(repo_id, recursive=True, revision=info.sha) if isinstance(f, RepoFile)]
    except Exception as exc:
        raise hub_errors(endpoint, repo_id, exc) from None
    sizes = {f.path: int(f.size or 0) for f in tree}
    known = card(repo_id)
    kind = known.kind if known else ("img2img" if "model_index.json" in sizes else "causal-lm")
    fp16 = fp16 and has_fp16_variant(list(sizes))
    chosen = select_files(list(sizes), kind, fp16)
    if not any(p.endswith((".safetensors", ".bin")) for p in chosen):
        raise ModelError(f"{repo_id} has no safetensors or PyTorch weights this app can load")
    snapshot = repo_folder(repo_id) / "snapshots" / str(info.sha)
    have = frozenset(p for p in chosen if (snapshot / p).is_file())
    return DownloadPlan(repo_id, endpoint, str(info.sha), fp16, tuple((p, sizes[p]) for p in chosen), have)


def free_bytes(folder: Path) -> int:
    """Free bytes on the disk holding folder (or its nearest existing parent)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_disk_space(plan: DownloadPlan, settings: ModelSettings, folder: Path | None = None) -> None:
    """DiskSpaceError unless the missing files fit with settings.keep_free_gb left over."""
    where = folder or cache_dir()
    free = free_bytes(where)
    keep = int(settings.keep_free_gb * 1e9)
    if plan.missing_bytes + keep > free:
        raise DiskSpaceError(
            f"{plan.repo_id} needs {format_bytes(plan.missing_bytes)} and {format_bytes(free)} is free on the disk "
            f"of {where} (keeping {format_bytes(keep)} free); free some space or remove models you do not use")


class _Meter:
    """Bytes received, rate over the last few seconds, and the cancel check, shared by all progress bars."""

    def __init__(self, total: int, progress: ProgressFn | None, cancel: CancelFn | None, label: str) -> None:
        self.total, self.progress, self.cancel, self.label = total, progress, cancel, label
        self.lock = threading.Lock()
        self.byte_bars: list[Any] = []
        self.files_done = 0
        self.files_total = 0
        self.start = time.perf_counter()
        self.samples: deque[tuple[float, int]] = deque([(self.start, 0)])
        self.last_report = 0.0

    @property
    def done(self) -> int:
        return max((b.n for b in self.byte_bars), default=0)  # each byte bar counts the same bytes

    def rate(self) -> float:
        now, done = time.perf_counter(), self.done
        while len(self.samples) > 1 and now - self.samples[0][0] > 3.0:
            self.samples.popleft()
        self.samples.append((now, done))
        t0, b0 = self.samples[0]
        return (done - b0) / (now - t0) if now > t0 else 0.0

    def check(self) -> None:
        if self.cancel is not None and self.cancel():
            raise DownloadCancelled("download cancelled")

    def report(self, force: bool = False) -> None:
        now = time.perf_counter()
        if self.progress is None or (not force and now - self.last_report < 0.1):
            return
        self.last_report = now
        done = min(self.done, self.total) if self.total else self.done
        files = f", file {self.files_done}/{self.files_total}" if self.files_total else ""
        text = (f"{self.label}: {format_bytes(done)} of {format_bytes(self.total)} "
                f"at {format_bytes(self.rate())}/s{files}")
        self.progress(done / self.total if self.total else 1.0, text)

    def bar_class(self) -> type:
        meter = self

        class Bar:
            """The tqdm stand-in huggingface_hub drives: counts, reports, and raises when cancelled."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                self.n = int(kwargs.get("initial") or 0)
                self.total = kwargs.get("total")
                self.unit = kwargs.get("unit", "it")
                self.desc = kwargs.get("desc", "")
                with meter.lock:
                    if self.unit == "B":
                        meter.byte_bars.append(self)
                    elif isinstance(self.total, int) and self.total > meter.files_total:
                        meter.files_total = self.total

            def update(self, n: float | None = 1) -> None:
                meter.check()
                with meter.lock:
                    self.n += int(n or 0)
                    if self.unit != "B":
                        meter.files_done = max(meter.files_done, self.n)
                meter.report()

            def __enter__(self) -> Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            @property
            def format_dict(self) -> dict[str, Any]:
                return {"rate": meter.rate(), "n": self.n, "total": self.total}

            def __getattr__(self, name: str) -> Any:  # refresh, close, set_description, set_postfix_str...
                return lambda *args, **kwargs: None

        return Bar


def download_model(repo_id: str, settings: ModelSettings, progress: ProgressFn | None = None,
                   cancel: CancelFn | None = None, fp16: bool = False, workers: int = 4) -> DownloadResult:
    """Fetch what the app needs of repo_id into the cache and return where it is.

    Raises OfflineError, HubUnreachableError, DiskSpaceError, DownloadCancelled (the files finished so far
    stay; calling again resumes) or ModelError.
    """
    from huggingface_hub import snapshot_download

    plan = plan_download(repo_id, settings, fp16)
    check_disk_space(plan, settings)
    meter = _Meter(plan.missing_bytes, progress, cancel, f"Downloading {repo_id}")
    meter.report(force=True)
    start = time.perf_counter()
    try:
        path = snapshot_download(repo_id, revision=plan.commit, cache_dir=str(cache_dir()), endpoint=plan.endpoint,
                                 allow_patterns=[p for p, _ in plan.files], tqdm_class=meter.bar_class(),
                                 max_workers=max(1, workers), library_name="dynamicavatars")
    except DownloadCancelled:
        snapshot = repo_folder(repo_id) / "snapshots" / plan.commit
        kept = sum(1 for p, _ in plan.files if (snapshot / p).is_file())
        raise DownloadCancelled(f"download of {repo_id} cancelled; {kept} of {len(plan.files)} files are kept: "
                                "get it again to fetch the rest") from None
    except Exception as exc:
        raise hub_errors(plan.endpoint, repo_id, exc) from None
    _write_ref(repo_id, plan.commit)
    meter.report(force=True)
    return DownloadResult(plan, Path(path), meter.done, time.perf_counter() - start)


def _write_ref(repo_id: str, commit: str, ref: str = "main") -> None:
    """Point refs/main at the downloaded commit, so the id resolves offline (the download was by commit)."""
    with atomic_write(repo_folder(repo_id) / "refs" / ref, "w") as fh:
        fh.write(commit)
