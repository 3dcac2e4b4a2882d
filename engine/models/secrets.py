"""API keys of the HTTP endpoints: read from the environment or the system keyring, stored only in
the system keyring. Never written to settings, project files or logs; `KeyInfo` says where a key
came from without holding it in its repr.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from engine.models.catalog import HTTP_ROLES
from engine.models.errors import SecretStoreError

log = logging.getLogger(__name__)

KEYRING_SERVICE = "DynamicAvatars"
ENV_KEYS: dict[str, str] = {"editor": "DYNAMICAVATARS_IMAGE_API_KEY", "refiner": "DYNAMICAVATARS_LLM_API_KEY"}
"""Environment variable holding each endpoint role's key (it wins over the keyring)."""


@dataclass(frozen=True)
class KeyInfo:
    """An endpoint key and where it came from."""

    key: str | None = field(repr=False)  # the key itself (never printed)
    source: str  # "environment DYNAMICAVATARS_…", "system keyring" or "none"

    @property
    def present(self) -> bool:
        return bool(self.key)


def _account(role: str) -> str:
    if role not in HTTP_ROLES:
        raise ValueError(f"only the {' and '.join(sorted(HTTP_ROLES))} endpoints take API keys, not the {role}")
    return f"{role}-endpoint"


def api_key(role: str) -> KeyInfo:
    """The key for role's endpoint: its environment variable, else the system keyring, else none."""
    account = _account(role)
    env = ENV_KEYS[role]
    if os.environ.get(env):
        return KeyInfo(os.environ[env], f"environment {env}")
    try:
        import keyring

        key = keyring.get_password(KEYRING_SERVICE, account)
    except Exception as exc:  # keyring raises backend-specific errors (no D-Bus, locked store...)
        log.info("system keyring not readable: %s", type(exc).__name__)
        return KeyInfo(None, "none (no usable system keyring)")
    return KeyInfo(key, "system keyring") if key else KeyInfo(None, "none")


def store_api_key(role: str, key: str) -> None:
    """Keep key in the system keyring (SecretStoreError when there is none); an empty key deletes it."""
    account = _account(role)
    try:
        import keyring
        from keyring.errors import PasswordDeleteError

        if key:
            keyring.set_password(KEYRING_SERVICE, account, key)
        else:
            try:
                keyring.delete_password(KEYRING_SERVICE, account)
            except PasswordDeleteError:
                pass
    except Exception as exc:
        raise SecretStoreError(
            f"the system keyring cannot store the {role} key ({type(exc).__name__}); set {ENV_KEYS[role]} in "
            "the environment instead") from None
