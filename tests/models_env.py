"""Shared set-up of the model-registry tests: a private hub cache, config folder and keyring, the hub
reachable (conftest turns HF_HUB_OFFLINE on for every other test), and tiny models built once per
session to serve from a stand-in hub on 127.0.0.1. Import the fixtures into a test module to use them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

LM_CORPUS = ['{"refined_prompt": "make the hair bright blue", "components": ["hair"], "kinds": ["colour"]}',
             "give her bright red lipstick and make her smile", "You turn a request into one JSON object."]


def memory_keyring():
    """A keyring backend kept in memory (the test machine has no Secret Service)."""
    import keyring.backend
    from keyring.errors import PasswordDeleteError

    class Backend(keyring.backend.KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.store: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.store.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.store[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            if self.store.pop((service, username), None) is None:
                raise PasswordDeleteError(username)

    return Backend()


@pytest.fixture
def private_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The hub cache and the settings folder in tmp_path, an in-memory keyring, the hub reachable.

    Yields the cache folder. Never touches the real user cache or settings."""
    import huggingface_hub.constants as hf_constants
    import keyring

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("DYNAMICAVATARS_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("HF_ENDPOINT", "DYNAMICAVATARS_IMAGE_API_KEY", "DYNAMICAVATARS_LLM_API_KEY", "HF_HUB_OFFLINE",
                 "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    previous = keyring.get_keyring()
    keyring.set_keyring(memory_keyring())
    yield tmp_path / "hf" / "hub"
    keyring.set_keyring(previous)


def go_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline mode as a person sets it: HF_HUB_OFFLINE=1 (read by huggingface_hub at import)."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session")
def tiny_repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Hub id -> folder of the tiny models the stand-in hub serves."""
    from tiny_models import add_hub_extras, tiny_chat_lm, tiny_diffusers, tiny_segformer

    from engine.semantics.face_parser import CELEBAMASK_TO_COMPONENT

    root = tmp_path_factory.mktemp("tiny-repos")
    return {
        "tiny/instruct-pix2pix": add_hub_extras(tiny_diffusers(root / "ip2p", "instruct-pix2pix", fp16_variant=True)),
        "tiny/turbo": add_hub_extras(tiny_diffusers(root / "turbo", "img2img")),
        "tiny/chat-lm": add_hub_extras(tiny_chat_lm(root / "lm", LM_CORPUS)),
        "tiny/face-parsing": add_hub_extras(tiny_segformer(root / "parser", list(CELEBAMASK_TO_COMPONENT))),
    }

