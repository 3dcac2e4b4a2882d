"""Which model plays each role: per-user settings (a JSON file in the platform's config folder) and
per-project pins (kept in the project file), merged with pins first.

A choice is one string: a hub id ("timbrooks/instruct-pix2pix"), a local folder, or, for the editor
and refiner, an endpoint URL ("http://127.0.0.1:11434/v1"), with the model name to ask the server
for. API keys are never part of these settings (engine.models.secrets).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.io.atomic import FileFormatError, atomic_write
from engine.models.catalog import HTTP_ROLES, ROLES, check_role

SETTINGS_FORMAT = "dynamicavatars-models"
SETTINGS_VERSION = 1
CONFIG_ENV = "DYNAMICAVATARS_CONFIG_DIR"  # overrides the platform config folder (tests, portable installs)
APP_NAME = "DynamicAvatars"


@dataclass(frozen=True)
class Choice:
    """The model of one role."""

    source: str  # hub id, local folder, or http(s) URL of an OpenAI-compatible endpoint
    server_model: str | None = None  # endpoint choices: the model name sent to the server

    @property
    def is_url(self) -> bool:
        return is_url(self.source)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "server_model": self.server_model}

    @staticmethod
    def from_json(data: Any, origin: str) -> Choice:
        if isinstance(data, str):
            return Choice(data)
        if not isinstance(data, dict) or not isinstance(data.get("source"), str) or not data["source"].strip():
            raise ValueError(f"{origin}: a model choice needs a 'source' string, got {data!r}")
        server_model = data.get("server_model")
        return Choice(data["source"].strip(), server_model if isinstance(server_model, str) and server_model else None)


@dataclass(frozen=True)
class ModelSettings:
    """A person's model settings (never holds API keys)."""

    choices: dict[str, Choice] = field(default_factory=dict)  # role -> chosen model
    hub_endpoint: str | None = None  # a Hub mirror; None: HF_ENDPOINT, else the Hub
    offline: bool = False  # never reach the hub (HF_HUB_OFFLINE=1 does the same)
    keep_free_gb: float = 2.0  # a download must leave this much disk free
    device: str | None = None  # "cuda", "cpu", ...; None: CUDA when present
    cpu_max_steps: int = 20  # most denoising steps of a full-step diffusion model on a CPU
    diffusion_size: int = 512  # working resolution of diffusion editors (square side, multiple of 8)
    timings: dict[str, float] = field(default_factory=dict)  # "model|device|size" -> measured seconds per step

    def choice(self, role: str) -> Choice | None:
        return self.choices.get(check_role(role))

    def with_choice(self, role: str, choice: Choice | None) -> ModelSettings:
        """A copy with role set to choice (None: back to the offline default)."""
        check_choice(role, choice)
        choices = {k: v for k, v in self.choices.items() if k != role}
        if choice is not None:
            choices[role] = choice
        return replace(self, choices=choices)

    def with_timing(self, key: str, seconds_per_step: float) -> ModelSettings:
        return replace(self, timings={**self.timings, key: round(float(seconds_per_step), 4)})

    def merged(self, pins: dict[str, Choice]) -> ModelSettings:
        """These settings with a project's pins taking precedence."""
        return replace(self, choices={**self.choices, **pins})

    def to_json(self) -> dict[str, Any]:
        return {"format": SETTINGS_FORMAT, "version": SETTINGS_VERSION,
                "choices": {k: v.to_json() for k, v in self.choices.items()}, "hub_endpoint": self.hub_endpoint,
                "offline": self.offline, "keep_free_gb": self.keep_free_gb, "device": self.device,
                "cpu_max_steps": self.cpu_max_steps, "diffusion_size": self.diffusion_size,
                "timings": dict(self.timings)}


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def check_choice(role: str, choice: Choice | None) -> None:
    """ValueError when choice cannot serve role (an endpoint for the parser or embedder)."""
    check_role(role)
    if choice is not None and choice.is_url and role not in HTTP_ROLES:
        raise ValueError(f"the {role} cannot be an HTTP endpoint; give a hub id or a local folder")


def config_dir() -> Path:
    """The folder of the user's settings: $DYNAMICAVATARS_CONFIG_DIR, else the platform's config folder."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def settings_path() -> Path:
    return config_dir() / "models.json"


def settings_from_json(data: Any, origin: str) -> ModelSettings:
    """Validated settings from parsed JSON (FileFormatError naming origin)."""
    if not isinstance(data, dict) or data.get("format") != SETTINGS_FORMAT:
        raise FileFormatError(origin, f"not a {SETTINGS_FORMAT} settings file")
    if not isinstance(data.get("version"), int) or data["version"] > SETTINGS_VERSION:
        raise FileFormatError(origin, f"settings version {data.get('version')!r} is newer than this app reads "
                                      f"({SETTINGS_VERSION}); please update")
    try:
        choices = pins_from_json(data.get("choices") or {}, origin)
        keep = float(data.get("keep_free_gb", 2.0))
        steps = int(data.get("cpu_max_steps", 20))
        size = int(data.get("diffusion_size", 512))
        timings = {str(k): float(v) for k, v in (data.get("timings") or {}).items()}
    except (TypeError, ValueError) as exc:
        raise FileFormatError(origin, str(exc)) from None
    if keep < 0 or steps < 1 or size < 8 or size % 8:
        raise FileFormatError(origin, "keep_free_gb must be 0 or more, cpu_max_steps at least 1 and "
                                      "diffusion_size a positive multiple of 8")
    endpoint, device = data.get("hub_endpoint"), data.get("device")
    return ModelSettings(choices, endpoint if isinstance(endpoint, str) and endpoint else None,
                         bool(data.get("offline", False)), keep, device if isinstance(device, str) and device else None,
                         steps, size, timings)


def pins_from_json(data: Any, origin: str) -> dict[str, Choice]:
    """role -> Choice from a JSON object (a project's pins or the settings' choices); ValueError when malformed."""
    if not isinstance(data, dict):
        raise ValueError(f"{origin}: model choices must be an object of role: choice")
    out = {}
    for role, value in data.items():
        if role not in ROLES:
            raise ValueError(f"{origin}: unknown model role {role!r}; roles: {', '.join(ROLES)}")
        out[role] = Choice.from_json(value, f"{origin} ({role})")
        check_choice(role, out[role])
    return out


def pins_to_json(pins: dict[str, Choice]) -> dict[str, Any]:
    return {role: choice.to_json() for role, choice in pins.items()}


def load_settings(path: str | os.PathLike | None = None) -> ModelSettings:
    """The user's settings (defaults when the file does not exist; FileFormatError when it is damaged)."""
    file = Path(path) if path is not None else settings_path()
    if not file.is_file():
        return ModelSettings()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(file, f"cannot read the model settings ({exc}); fix or delete the file") from None
    return settings_from_json(data, str(file))


def save_settings(settings: ModelSettings, path: str | os.PathLike | None = None) -> Path:
    """Write the settings atomically (never any API key: ModelSettings has none)."""
    file = Path(path) if path is not None else settings_path()
    with atomic_write(file, "w") as fh:
        json.dump(settings.to_json(), fh, indent=1)
    return file
