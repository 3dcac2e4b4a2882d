"""Errors name what the user typed: every command given a missing, empty, damaged or unwritable path says
`dynamicavatars CMD: error: <the path as typed>: <the problem>` on one line, exits 2, and shows no traceback
(relative paths stay relative; nothing is resolved to a file the user never named)."""

from __future__ import annotations

import pytest

from app.cli import main

CASES = [
    (["render", "--avatar", "nope/run", "--out", "o.png"], "nope/run", "no such avatar file or folder"),
    (["render", "--avatar", "/nonexistent", "--out", "o.png"], "/nonexistent", "no such avatar file or folder"),
    (["render", "--avatar", "emptydir", "--out", "o.png"], "emptydir", "no avatar here"),
    (["render", "--avatar", "bad.ply", "--out", "o.png"], "bad.ply", "not a valid ply file"),
    (["render", "--avatar", "demo", "--flame", "nope/flame.pkl", "--out", "o.png"], "nope/flame.pkl",
     "no such file or folder (given with --flame)"),
    (["export", "bad.dap", "--video", "o.mp4"], "bad.dap", "not a DynamicAvatars project"),
    (["export", "demo", "--video", "o.mp4", "--sequence", "bad.npz"], "bad.npz", "not a readable .npz file"),
    (["export", "demo", "--splats", "/proc/x.ply"], "/proc/x.ply", "could not be written"),
    (["train", "emptydir", "--out", "runs/x"], "emptydir/transforms_train.json", "missing"),
    (["train", "nope", "--out", "runs/x"], "nope", "dataset folder does not exist"),
    (["edit", "bad.ply", "--prompt", "blue lips", "--out", "runs/b"], "bad.ply", "not a valid ply file"),
    (["adjust", "nope", "--components", "lips", "--tint", "0.1,0.3,0.9", "--out", "runs/c"], "nope",
     "no such avatar file or folder"),
    (["masks", "lift", "demo", "--dataset", "nope", "--timestep", "0", "--camera", "3", "--components", "lips",
      "--out", "runs/m"], "nope", "dataset folder does not exist"),
]


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "bad.ply").write_text("garbage")
    (tmp_path / "bad.npz").write_text("x")
    (tmp_path / "bad.dap").write_text("{")
    return tmp_path


@pytest.mark.parametrize(("argv", "typed", "problem"), CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_errors_name_the_path_as_typed(workdir, capsys, argv, typed, problem):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"dynamicavatars {argv[0]}: error: {typed}: "), err
    assert problem in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert str(workdir) not in err  # relative paths are not resolved
