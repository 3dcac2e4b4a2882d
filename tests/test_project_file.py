"""Project files (.dap): exact round trips, atomic saves, clear errors that leave the file untouched."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.avatar.avatar import Avatar
from engine.avatar.demo import load_demo_avatar
from engine.edit.layers import EditLayer
from engine.head.model import HeadModel, load_head
from engine.io.atomic import FileFormatError
from engine.project import project_file
from engine.project.project_file import MissingFlameModelError, Project, load_project, save_project
from tests.helpers_head import tiny_flame_arrays
from tests.test_export_video import talking, tiny_avatar


def head_on_disk(folder: Path) -> HeadModel:
    """The tiny test head saved as a FLAME-format npz, so the project names a real model file."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "FLAME_NEUTRAL.npz", **tiny_flame_arrays())
    return load_head(str(folder / "FLAME_NEUTRAL.npz"))


def full_project(head: HeadModel) -> Project:
    avatar = tiny_avatar(n=200, head=head)
    avatar = Avatar(head, avatar.gaussians, talking(head, 3), "sam")
    gen = torch.Generator().manual_seed(3)
    idx = torch.tensor([3, 7, 11, 150])
    added = tiny_avatar(n=5, seed=9, head=head).gaussians
    offset = torch.zeros(head.n_expr)
    offset[0] = 0.25
    layers = [
        EditLayer("tint lips", "adjust", indices=idx,
                  deltas={"sh": torch.randn(4, 16, 3, generator=gen), "xyz": torch.randn(4, 3, generator=gen)},
                  info={"operation": "tint", "colour": [0.9, 0.1, 0.1], "nested": {"k": 1.5e-7}}),
        EditLayer("add beard", "edit", hidden=torch.tensor([0, 1, 2]), added=added,
                  info={"prompt": "give him a beard", "plan": {"steps": [1, 2]}}),
        EditLayer("smile more", "expression", expr_offset=offset, enabled=False),
    ]
    selections = {
        "lips / upper": torch.rand(200, generator=gen) > 0.5,
        "soft brush": torch.rand(200, generator=gen).to(torch.float32),
    }
    current = talking(head, 3).frame(1)
    return Project(
        avatar=avatar, layers=layers, selections=selections,
        presets={"poses": {"happy": {"smile": 0.8, "jaw": 0.1}}},
        prompt_history=[{"prompt": "red lips", "when": 1.0}, "make the hair blond"],
        ui={"camera": {"yaw": 12.5, "pitch": -3.0}, "panels": ["layers", "prompt"]},
        sequence=talking(head, 5), current_params=current,
    )


def assert_same_params(a, b) -> None:
    for key in ("shape", "expr", "rotation", "neck_pose", "jaw_pose", "eyes_pose", "translation"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key
    for key in ("static_offset", "dynamic_offset"):
        x, y = getattr(a, key), getattr(b, key)
        assert (x is None and y is None) or torch.equal(x, y), key


def assert_same_project(a: Project, b: Project) -> None:
    assert b.avatar.gaussians.equal(a.avatar.gaussians)
    assert b.avatar.name == a.avatar.name and b.avatar.head.source == a.avatar.head.source
    assert_same_params(a.avatar.params, b.avatar.params)
    assert_same_params(a.sequence, b.sequence)
    assert_same_params(a.current_params, b.current_params)
    assert list(b.selections) == list(a.selections)
    for name, value in a.selections.items():
        assert b.selections[name].dtype == value.dtype and torch.equal(b.selections[name], value), name
    assert len(b.layers) == len(a.layers)
    for x, y in zip(a.layers, b.layers):
        assert (x.id, x.name, x.kind, x.enabled, x.info) == (y.id, y.name, y.kind, y.enabled, y.info)
        assert torch.equal(x.indices, y.indices) and torch.equal(x.hidden, y.hidden)
        assert x.deltas.keys() == y.deltas.keys()
        assert all(torch.equal(x.deltas[k], y.deltas[k]) for k in x.deltas)
        assert (x.added is None) == (y.added is None) and (x.added is None or x.added.equal(y.added))
        assert (x.expr_offset is None) == (y.expr_offset is None)
        assert x.expr_offset is None or torch.equal(x.expr_offset, y.expr_offset)
        assert (x.jaw_offset is None) == (y.jaw_offset is None)
    assert (b.presets, b.prompt_history, b.ui) == (a.presets, a.prompt_history, a.ui)


def test_round_trip_restores_everything_exactly(tmp_path):
    project = full_project(head_on_disk(tmp_path / "flame"))
    path = save_project(project, tmp_path / "work.dap")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert {"manifest.json", "avatar/point_cloud.ply", "avatar/flame_param.npz", "avatar/avatar.json",
            "layers/000.npz", "layers/001.npz", "layers/002.npz", "selections.npz", "presets.json",
            "prompt_history.json", "ui.json"} <= names
    assert manifest["format"] == "dynamicavatars-project" and manifest["version"] == 1
    back = load_project(path)
    assert_same_project(project, back)
    composed = back.composed_avatar()
    assert composed.gaussians.count == 200 - 3 + 5
    assert torch.equal(composed.gaussians.sh, project.composed_avatar().gaussians.sh)
    assert back.pose_offset() is None  # the expression layer is disabled


def test_demo_avatar_project_round_trip(tmp_path):
    demo = load_demo_avatar(count=3000)
    project = Project(demo, selections={"all": torch.ones(demo.gaussians.count, dtype=torch.bool)})
    back = load_project(save_project(project, tmp_path / "demo.dap"))
    assert back.avatar.head.source == "demo" and back.avatar.gaussians.equal(demo.gaussians)
    assert torch.equal(back.selections["all"], project.selections["all"])


def test_failed_save_leaves_previous_project_intact(tmp_path, monkeypatch):
    project = full_project(head_on_disk(tmp_path / "flame"))
    path = save_project(project, tmp_path / "work.dap")
    before = path.read_bytes()
    changed = Project(project.avatar, layers=[], ui={"changed": True})

    def dies_midway(zf, layers):  # the avatar is already in the zip when this runs
        zf.writestr("layers/partial.npz", b"half a layer")
        raise RuntimeError("killed during save")

    monkeypatch.setattr(project_file, "_write_layers", dies_midway)
    with pytest.raises(RuntimeError, match="killed during save"):
        save_project(changed, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flame", "work.dap"]
    assert_same_project(project, load_project(path))
    with pytest.raises(ValueError, match="JSON"):
        save_project(Project(project.avatar, ui={"bad": torch.zeros(2)}), path)
    assert path.read_bytes() == before


def test_missing_flame_model_is_named_and_file_untouched(tmp_path):
    head = head_on_disk(tmp_path / "flame")
    path = save_project(full_project(head), tmp_path / "work.dap")
    before = path.read_bytes()
    model = tmp_path / "flame" / "FLAME_NEUTRAL.npz"
    model.rename(tmp_path / "moved.npz")
    with pytest.raises(MissingFlameModelError) as info:
        load_project(path)
    assert str(model.resolve()) in str(info.value) and "work.dap" in str(info.value)
    assert info.value.model_path == model.resolve()
    assert isinstance(info.value, FileFormatError)
    assert path.read_bytes() == before
    again = load_project(path, head=str(tmp_path / "moved.npz"))  # the user located the model
    assert again.avatar.gaussians.count == 200


def test_newer_and_corrupt_projects_give_clear_errors(tmp_path):
    path = save_project(full_project(head_on_disk(tmp_path / "flame")), tmp_path / "work.dap")
    newer = tmp_path / "newer.dap"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(newer, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "manifest.json":
                data = json.dumps(dict(json.loads(data), version=7)).encode()
            dst.writestr(item, data)
    newer_bytes = newer.read_bytes()
    with pytest.raises(FileFormatError, match="newer DynamicAvatars"):
        load_project(newer)
    assert newer.read_bytes() == newer_bytes
    truncated = tmp_path / "truncated.dap"
    truncated.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(FileFormatError, match="truncated.dap"):
        load_project(truncated)
    assert len(truncated.read_bytes()) == len(path.read_bytes()) // 2
    (tmp_path / "text.dap").write_text("not a zip")
    with pytest.raises(FileFormatError, match="not a DynamicAvatars project"):
        load_project(tmp_path / "text.dap")
    broken_layer = tmp_path / "broken.dap"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken_layer, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, b"garbage" if item.filename == "layers/001.npz" else src.read(item))
    with pytest.raises(FileFormatError, match="layers/001.npz"):
        load_project(broken_layer)
    with pytest.raises(FileFormatError, match="not found"):
        load_project(tmp_path / "absent.dap")
