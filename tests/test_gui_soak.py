"""A short GUI soak (tests/gui_soak.py): every kind of user action, fixed seed, real mouse events; no
exception, no error dialog, no render failure, no thread left behind, and the actions did change the
session. bench/robustness.py runs the long one (2,000 actions) and reports the memory growth."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtWidgets import QMessageBox

from engine.project.project_file import load_project
from tests.gui_soak import HEAVY, LIGHT, GuiSoak, build_window, close_window, wait_until

ACTIONS = 100


@pytest.fixture
def soak_window(qtbot, tmp_path, monkeypatch):
    torch.set_num_threads(2)
    # pytest-qt closes the window before this fixture ends: unsaved changes are discarded then too
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard))
    window = build_window(tmp_path, tmp_path / "state")
    qtbot.addWidget(window)
    yield window
    close_window(window)


@pytest.mark.slow
def test_short_soak_runs_every_action_without_errors(soak_window, tmp_path):
    soak = GuiSoak(soak_window, tmp_path, seed=7, heavy_every=60)
    report = soak.run(ACTIONS, warmup=36)
    assert report.actions == ACTIONS
    assert report.exceptions == [], report.exceptions[0]
    assert report.dialogs == [] and report.render_failures == []
    assert set(report.counts) == set(LIGHT) | set(HEAVY), report.counts  # every kind ran at least once
    effects = report.effects
    for kind in ("pose", "camera", "selection", "layers"):
        assert effects[kind] > 0, f"no action changed the {kind}: {dict(effects)}"
    assert effects["frames shown"] > ACTIONS // 4, dict(effects)
    assert report.threads_end <= report.threads_start, "threads left running after the jobs ended"
    assert report.memory_growth_mb < 400, f"{report.memory_growth_mb:.0f} MB in {ACTIONS} actions"  # gross leaks only
    saved = load_project(soak.saved)  # the soak's last save is a whole project
    assert saved.avatar.gaussians.count == soak_window.model.avatar.gaussians.count


def test_soak_records_an_exception_raised_in_a_slot(soak_window, tmp_path):
    """The soak's exception hook sees errors raised inside Qt slots (so a clean report means something)."""
    soak = GuiSoak(soak_window, tmp_path, seed=1)

    def broken() -> None:
        raise RuntimeError("slot failed on purpose")

    soak_window.model.poseChanged.connect(broken)
    report = soak.run(8, warmup=0)
    wait_until(lambda: True, 1, "")
    assert report.effects["pose"] > 0 and any("slot failed on purpose" in e for e in report.exceptions)
