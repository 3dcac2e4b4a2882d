"""The avatar knows its training dataset: training records it in avatar.json, it survives saving and
projects, and edits (CLI and GUI) pick keyframes from its training frames while it is there; a missing or
unreadable folder is said plainly and the edit falls back to rendered views."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from app.cli import main
from engine.avatar.demo import load_demo_avatar
from engine.avatar.files import MANIFEST_NAME, load_avatar, save_avatar
from engine.data.synth import SynthConfig, generate
from engine.edit.dataset_source import dataset_source
from engine.io.atomic import FileFormatError
from engine.project.project_file import Project, load_project, save_project


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    return generate(out, SynthConfig(size=64, train_frames=3, test_frames=1, train_cameras=3, heldout_cameras=1))


def test_sources_say_which_frames_and_why(dataset: Path, tmp_path: Path) -> None:
    none = dataset_source(None)
    assert not none.usable and none.open() is None and none.problem is None and "rendered views" in none.text
    ok = dataset_source(str(dataset))
    assert ok.usable and ok.problem is None and ok.frames == 9 and len(ok.open().frames("train")) == 9
    assert "9 training frames" in ok.text and "3 timesteps × 3 cameras" in ok.text
    gone = dataset_source(str(tmp_path / "moved_away"))
    assert not gone.usable and gone.open() is None and "does not exist" in gone.problem and "moved_away" in gone.text
    assert "rendered views" in gone.text
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "transforms_train.json").write_text("{ not json")
    (broken / "canonical_flame_param.npz").write_bytes(b"")
    bad = dataset_source(str(broken))
    assert not bad.usable and bad.problem and "transforms_train.json" in bad.problem


def test_the_avatar_keeps_its_dataset_through_files_and_projects(dataset: Path, tmp_path: Path) -> None:
    avatar = replace(load_demo_avatar(count=2000), dataset=str(dataset))
    folder = save_avatar(avatar, tmp_path / "a")
    assert json.loads((folder / MANIFEST_NAME).read_text())["dataset"] == str(dataset)
    assert load_avatar(folder).dataset == str(dataset)
    save_project(Project(avatar, []), tmp_path / "p.dap")
    assert load_project(tmp_path / "p.dap").avatar.dataset == str(dataset)
    assert load_avatar(save_avatar(load_demo_avatar(count=2000), tmp_path / "b")).dataset is None
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    (folder / MANIFEST_NAME).write_text(json.dumps({**manifest, "dataset": 3}))
    with pytest.raises(FileFormatError, match="dataset of the wrong type"):
        load_avatar(folder)


@pytest.mark.slow
def test_the_cli_edits_on_the_recorded_dataset_and_falls_back_when_it_is_gone(
        dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    avatar = replace(load_demo_avatar(count=4000), dataset=str(dataset))
    folder = save_avatar(avatar, tmp_path / "avatar")
    fast = ["--size", "48", "--keyframes", "1", "--steps", "4", "--prompt", "make the lips blue"]
    assert main(["edit", str(folder), *fast, "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "keyframes: the avatar's training dataset ds: keyframes from its 9 training frames" in printed
    assert load_avatar(tmp_path / "out" / "avatar").dataset == str(dataset)  # the edited avatar still knows it
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    (folder / MANIFEST_NAME).write_text(json.dumps({**manifest, "dataset": str(tmp_path / "gone")}))
    assert main(["edit", str(folder), *fast, "--out", str(tmp_path / "out2")]) == 0
    printed = capsys.readouterr().out
    assert "gone: dataset folder does not exist: keyframes from rendered views" in printed
