"""Shared test set-up: headless Qt, offline hubs, a private model cache and settings folder, few threads."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_PRIVATE = tempfile.mkdtemp(prefix="dynamicavatars-tests-")  # never the real user cache or model settings
os.environ["HF_HOME"] = os.path.join(_PRIVATE, "hf")
os.environ["HF_HUB_CACHE"] = os.path.join(_PRIVATE, "hf", "hub")
os.environ["DYNAMICAVATARS_CONFIG_DIR"] = os.path.join(_PRIVATE, "config")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as engine/__init__.py; before anything loads torch

import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from engine.data.synth import SynthConfig, generate  # noqa: E402

from models_env import private_hub, tiny_repos  # noqa: E402,F401  (fixtures of the model-registry tests)

THREADS = 2
"""torch and numba threads at the start of every test: float sums (and the floors measured on them) then come out
the same on any machine and whatever an earlier test set (a render thread, a distributed rank)."""


@pytest.fixture(autouse=True)
def _fixed_threads() -> None:
    torch.set_num_threads(THREADS)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))


@pytest.fixture(scope="session")
def synth_128(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic dataset of the demo head at 128 px (6 training timesteps of 5 cameras, 2 test timesteps, one
    held-out camera), built once for the modules that read it (FCI votes, the masks CLI). Read-only: a test that
    writes into a dataset makes its own."""
    return generate(tmp_path_factory.mktemp("synth_128") / "ds", SynthConfig(size=128, train_frames=6, test_frames=2,
                                                                          train_cameras=5, heldout_cameras=1))


@pytest.fixture
def mesh_renderer() -> Iterator[Any]:
    """An open engine.data.mesh_render.MeshRenderer (the labelled-mesh reference); the test is skipped where no
    OpenGL context can be made."""
    from engine.data.mesh_render import MeshRenderer

    try:
        renderer = MeshRenderer()
    except Exception as exc:  # noqa: BLE001 - no EGL on this machine
        pytest.skip(f"no OpenGL context for the mesh reference: {exc}")
    with renderer:
        yield renderer
