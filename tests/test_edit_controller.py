"""EditController (headless): the real Edit panel on a bare SessionModel; edits run on a worker, report
progress, cancel without touching the layers, and a finished edit is one undoable layer; a known failure
(EditError) is one log line, an unexpected one keeps its traceback in the log."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import torch
from PySide6.QtCore import Qt

from app.edit_controller import EditController
from app.session import SessionModel
from engine.avatar.demo import load_demo_avatar
from engine.edit.optimise import OptimConfig
from engine.edit.run import EditConfig
from engine.head.components import labels_of
from engine.prompting import refine
from widgets.edit_panel import EditPanel

QUICK = EditConfig(size=48, keyframes=2, orbit_cameras=4, max_timesteps=2, passes=2, min_steps=4, max_steps=6,
                   discriminator=False, optim=OptimConfig(refresh_every=0))


@pytest.fixture()
def setup(qtbot):
    model = SessionModel()
    model.set_avatar(load_demo_avatar(count=4000))
    panel = EditPanel()
    qtbot.addWidget(panel)
    controller = EditController(model, panel, QUICK)
    controller.set_plan(refine("make the lips blue").plan)
    return model, panel, controller


def _run(qtbot, panel: EditPanel, controller: EditController, cancel_after_progress: bool) -> list[float]:
    progress: list[float] = []
    qtbot.mouseClick(panel.edit_button, Qt.MouseButton.LeftButton)
    worker = controller.job.worker
    assert worker is not None and not panel.edit_button.isEnabled()
    worker.progress.connect(lambda f, m: progress.append(f))
    done: list[bool] = []
    worker.done.connect(lambda: done.append(True))
    if cancel_after_progress:
        qtbot.waitUntil(lambda: len(progress) > 0 or bool(done), timeout=30_000)
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(done), timeout=120_000)
    assert worker.wait(10_000)
    return progress


def test_cancel_leaves_layers_and_finished_edit_is_one_undoable_layer(qtbot, setup) -> None:
    model, panel, controller = setup
    controller.config = replace(QUICK, min_steps=5000, max_steps=5000)  # long enough to cancel
    progress = _run(qtbot, panel, controller, cancel_after_progress=True)
    assert progress and model.layers == ()
    assert "cancelled" in panel.status_label.text() and panel.edit_button.isEnabled()
    assert not model.undo_stack.canUndo()

    controller.config = QUICK
    progress = _run(qtbot, panel, controller, cancel_after_progress=False)
    assert progress and max(progress) > 0.9
    assert len(model.layers) == 1
    layer = model.layers[0]
    lips = torch.isin(model.avatar.gaussians.labels, torch.tensor(labels_of(["lips"])))
    assert layer.kind == "edit" and layer.indices.numel() > 0 and bool(lips[layer.indices].all())
    assert "Gaussians changed" in panel.status_label.text()
    assert panel.after_label.pixmap() is not None and not panel.after_label.pixmap().isNull()  # keyframe preview
    assert model.split == 0.5 and model.comparing and panel.compare_button.isChecked()  # before | after at once
    assert panel.keyframe_list.count() >= 1 and "t=" in panel.keyframe_list.item(0).text()
    model.undo_stack.undo()
    assert model.layers == ()
    assert not model.comparing and not panel.compare_button.isEnabled()  # nothing left to compare
    model.undo_stack.redo()
    assert model.layers == (layer,)
    assert model.comparing
    qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    assert model.split is None and not model.comparing


def test_keyframes_come_from_the_avatars_dataset(qtbot, tmp_path) -> None:
    from engine.data.synth import SynthConfig, generate

    root = generate(tmp_path / "ds", SynthConfig(size=64, train_frames=2, test_frames=1, train_cameras=3,
                                                 heldout_cameras=1))
    model = SessionModel()
    panel = EditPanel()
    qtbot.addWidget(panel)
    controller = EditController(model, panel, QUICK)
    model.set_avatar(replace(load_demo_avatar(count=4000), dataset=str(tmp_path / "moved")))
    assert "moved: dataset folder does not exist: keyframes from rendered views" in panel.dataset_label.text()
    assert not controller.source.usable and panel.dataset_label.styleSheet()
    model.set_avatar(replace(load_demo_avatar(count=4000), dataset=str(root)))
    assert "training dataset ds: keyframes from its 6 training frames" in panel.dataset_label.text()
    controller.choose_dataset(str(tmp_path))  # not a dataset: said, and rendered views are used
    assert "transforms_train.json" in panel.dataset_label.text() and not controller.source.usable
    controller.choose_dataset(str(root))
    assert controller.source.frames == 6 and model.avatar.dataset == str(root.resolve())
    controller.set_plan(refine("make the lips blue").plan)
    _run(qtbot, panel, controller, cancel_after_progress=False)
    assert len(model.layers) == 1, panel.status_label.text()
    steps = {f.timestep for f in controller.source.open().frames("train")}
    captions = [panel.keyframe_list.item(i).text() for i in range(panel.keyframe_list.count())]
    assert captions and all(int(c.split("t=")[1].split(" ")[0]) in steps for c in captions)


def test_session_selection_is_what_gets_edited(qtbot, setup) -> None:
    model, panel, controller = setup
    brows = torch.isin(model.avatar.gaussians.labels, torch.tensor(labels_of(["brows"]))).float()
    model.set_selection(brows)
    _run(qtbot, panel, controller, cancel_after_progress=False)
    layer = model.layers[-1]
    assert layer.indices.numel() > 0 and bool((brows[layer.indices] > 0).all())


def test_a_known_failure_is_one_log_line_and_a_bug_keeps_its_traceback(qtbot, setup, caplog) -> None:
    model, panel, controller = setup
    controller.set_selection_source(lambda: torch.zeros(model.avatar.gaussians.count))  # an empty mask
    with caplog.at_level(logging.WARNING, logger="app.workers"):
        _run(qtbot, panel, controller, cancel_after_progress=False)
    assert panel.status_label.text().startswith("Edit failed: nothing is selected")
    records = [r for r in caplog.records if r.name == "app.workers"]
    assert len(records) == 1 and records[0].exc_info is None, "an EditError is one line, no traceback"
    assert "nothing is selected" in records[0].getMessage() and "\n" not in records[0].getMessage()
    assert model.layers == ()

    caplog.clear()
    controller.set_selection_source(lambda: torch.zeros(3))  # a bug: a selection of the wrong size
    with caplog.at_level(logging.WARNING, logger="app.workers"):
        _run(qtbot, panel, controller, cancel_after_progress=False)
    assert panel.status_label.text().startswith("Edit failed: selection must have one value per Gaussian")
    records = [r for r in caplog.records if r.name == "app.workers"]
    assert len(records) == 1 and records[0].exc_info is not None, "an unexpected error keeps its traceback"


def test_a_missing_diffusion_model_fails_at_once_with_its_path(qtbot, setup, tmp_path) -> None:
    model, panel, controller = setup
    panel.backend_box.setCurrentIndex(panel.backend_box.findData("instruct-pix2pix"))
    panel.model_edit.setText(str(tmp_path / "no-such-model"))
    messages: list[str] = []
    qtbot.mouseClick(panel.edit_button, Qt.MouseButton.LeftButton)
    controller.job.worker.progress.connect(lambda f, m: messages.append(m))
    qtbot.waitUntil(lambda: panel.edit_button.isEnabled(), timeout=60_000)
    assert panel.status_label.text() == (f"Edit failed: cannot load the instruct-pix2pix model "
                                         f"'{tmp_path / 'no-such-model'}' without downloading: "
                                         f"{tmp_path / 'no-such-model'}: model folder not found")
    assert not any("keyframe" in m or "visible" in m for m in messages)  # was: rendered the keyframes first
    assert model.layers == ()
