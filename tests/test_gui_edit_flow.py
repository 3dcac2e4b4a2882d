"""The flagship flow in the main window, as a person does it: type "make her eyes green and give her a big
smile" into the prompt panel, refine, edit, and get green irises, a smile expression layer (in the Layers
panel and in the viewport), the chosen keyframes with their gate scores, the before/after split, and no
error anywhere. Real engine, offline default refiner and editor, the demo avatar."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from engine.edit.discriminator import DiscriminatorConfig
from engine.edit.layers import compose
from engine.edit.parts import part_mask
from engine.edit.run import EditConfig
from engine.prompting import RefineSettings
from engine.render.splats import dc_to_rgb
from tests.gui_windows import new_window

PROMPT = "make her eyes green and give her a big smile"
# the real edit, kept small enough for a test on two shared cores (same stages, fewer views and steps)
SMALL = EditConfig(size=80, keyframes=3, orbit_cameras=4, max_timesteps=1, mapped_steps=10, min_steps=4,
                   disc=DiscriminatorConfig(steps=30))


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    shown: list[str] = []
    for kind in ("critical", "warning", "information"):  # any dialog would be an error shown to the user
        monkeypatch.setattr(QMessageBox, kind, staticmethod(lambda *a, k=kind, **kw: shown.append(f"{k}: {a[1:3]}")))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard))
    win = new_window(tmp_path, "auto", 160, refine_settings=RefineSettings(use_embeddings=False))
    model = win.model
    controller = win.controller
    qtbot.addWidget(win)
    win.resize(1280, 900)
    for key, dock in win.docks.items():
        dock.setVisible(key in ("prompt", "edit", "layers"))
    win.show()
    with qtbot.waitSignal(model.avatarChanged, timeout=60_000):
        win.open_avatar(None)
    win.dialogs_shown = shown
    yield win
    win.close()
    controller.shutdown()


def _hues(rgb: np.ndarray) -> np.ndarray:
    """[N] hue in degrees of sRGB colours [N, 3] in [0, 1]."""
    return np.array([360.0 * colorsys.rgb_to_hsv(*c)[0] for c in rgb])


def test_green_eyes_and_a_big_smile_from_the_prompt(window, qtbot) -> None:
    model = window.model
    prompt, edit, layers_panel = window.features["prompt"], window.features["edit"], window.features["layers"]
    edit.config = SMALL
    panel = prompt.panel
    qtbot.keyClicks(panel.prompt_box.lineEdit(), PROMPT)
    with qtbot.waitSignal(prompt.refined, timeout=60_000):
        qtbot.mouseClick(panel.refine_button, Qt.MouseButton.LeftButton)
    plan = panel.plan
    assert plan.part == "iris" and plan.expression.get("smile", 0) > 0.5 and plan.colour is not None
    assert "rendered views" in edit.panel.dataset_label.text()  # the demo avatar has no training dataset

    edit.panel.backend_box.setCurrentIndex(edit.panel.backend_box.findData("procedural"))
    qtbot.mouseClick(edit.panel.edit_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not edit.job.busy, timeout=600_000)
    status = edit.panel.status_label.text()
    assert "failed" not in status.lower() and "error" not in status.lower(), status
    assert "Gaussians changed" in status and "smile" in status

    # two layers, one undo item: the green irises and the smile
    kinds = [layer.kind for layer in model.layers]
    assert kinds == ["edit", "expression"], kinds
    smile = model.layers[1]
    index = model.avatar.head.expression_index("smile")
    assert float(smile.expr_offset[index]) > 0.5
    rows = [layers_panel.list.item(i).text() for i in range(layers_panel.list.count())]
    assert len(rows) == 2 and "expression" in rows[1] and f"smile {plan.expression['smile']:+.2f}" in rows[1]

    # the eyes are green: the irises' colours in the composed avatar
    avatar = model.avatar
    iris = part_mask(avatar, "iris")
    changed = np.zeros(avatar.gaussians.count, bool)
    changed[model.layers[0].indices.numpy()] = True
    assert changed[iris.numpy()].mean() > 0.9, "the edit reached the irises"
    rgb = dc_to_rgb(compose(avatar.gaussians, list(model.layers)).sh[iris, 0]).clamp(0, 1).numpy()
    hue = float(np.median(_hues(rgb)))
    assert 75.0 <= hue <= 165.0, f"iris hue {hue:.0f}° is not green"
    assert float(np.median(rgb[:, 1] - np.maximum(rgb[:, 0], rgb[:, 2]))) > 0.05  # green dominates
    before = dc_to_rgb(avatar.gaussians.sh[iris, 0]).clamp(0, 1).numpy()
    assert not 75.0 <= float(np.median(_hues(before))) <= 165.0  # they were not green before

    # the keyframes the edit chose, with the discriminator's realness
    keyframes = edit.panel.keyframe_list
    assert keyframes.count() >= 1 and edit.panel.keyframe_list.isVisible()
    for i in range(keyframes.count()):
        item = keyframes.item(i)
        assert not item.icon().isNull() and "realness" in item.text() and "gate" in item.toolTip()

    # the viewport shows the smile and the before/after split at once
    assert model.comparing and edit.panel.compare_button.isChecked() and layers_panel.compare_button.isChecked()
    viewport = window.viewport
    qtbot.waitUntil(lambda: viewport.frame is not None and getattr(viewport.frame, "split", None) == 0.5,
                    timeout=60_000)
    params = model.current_params()
    assert float(params.expr[0, index]) == pytest.approx(float(smile.expr_offset[index]), abs=1e-5)

    qtbot.mouseClick(layers_panel.compare_button, Qt.MouseButton.LeftButton)  # the Layers panel's toggle
    assert not model.comparing and not edit.panel.compare_button.isChecked()

    # no error anywhere
    assert window.dialogs_shown == []
    assert "#b00020" not in panel.message_label.styleSheet()
    assert "fail" not in window.statusBar().currentMessage().lower()
