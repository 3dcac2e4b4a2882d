"""Registry of the learned models per role (image editor, prompt refiner, face parser, sentence
embedder): known-good hub models, the user's and the project's choices, download into
huggingface_hub's cache, what is installed, and how to run it on this machine. No Qt."""

from engine.models.cache import Installed, installed, remove_model, resolve_local
from engine.models.catalog import CATALOG, HTTP_ROLES, ROLE_INFO, ROLES, ModelCard, card, cards_for, recommended
from engine.models.errors import (
    DiskSpaceError,
    DownloadCancelled,
    HubUnreachableError,
    ModelError,
    NotInstalledError,
    OfflineError,
    SecretStoreError,
)
from engine.models.hub import DownloadPlan, DownloadResult, cache_dir, download_model, is_offline, plan_download
from engine.models.registry import ModelEntry, Resolved, describe, list_models, resolve
from engine.models.settings import Choice, ModelSettings, load_settings, save_settings

__all__ = [
    "CATALOG", "HTTP_ROLES", "ROLES", "ROLE_INFO", "Choice", "DiskSpaceError", "DownloadCancelled", "DownloadPlan",
    "DownloadResult", "HubUnreachableError", "Installed", "ModelCard", "ModelEntry", "ModelError", "ModelSettings",
    "NotInstalledError", "OfflineError", "Resolved", "SecretStoreError", "cache_dir", "card", "cards_for",
    "describe", "download_model", "installed", "is_offline", "list_models", "load_settings", "plan_download",
    "recommended", "remove_model", "resolve", "resolve_local", "save_settings",
]
