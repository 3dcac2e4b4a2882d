"""Errors of the model registry; each message says what went wrong and what to do."""

from __future__ import annotations

from engine.errors import UserError


class ModelError(UserError, RuntimeError):
    """A model cannot be found, fetched or used; the message is meant for a person."""


class HubUnreachableError(ModelError):
    """The model hub (or the mirror in the settings) did not answer."""


class OfflineError(ModelError):
    """Offline mode is on (the app's setting or HF_HUB_OFFLINE) and the model is not on this machine."""


class DiskSpaceError(ModelError):
    """Not enough free disk space for a download (checked before anything is fetched)."""


class DownloadCancelled(ModelError):
    """The person cancelled a download; the files completed so far stay in the cache."""


class NotInstalledError(ModelError):
    """A hub id is chosen for a role but its files are not (all) in the cache."""


class SecretStoreError(ModelError):
    """The system keyring cannot store or read a key."""
