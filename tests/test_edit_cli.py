"""`dynamicavatars edit`: a mixed prompt saves the appearance layer and the expression layer; --part narrows
the edit to the irises; user errors exit with code 2 and write nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.cli import main
from engine.avatar.demo import load_demo_avatar
from engine.avatar.files import load_avatar
from engine.edit.parts import part_mask
from engine.project.project_file import load_project
from tests.helpers_net import closed_port

FAST = ["--size", "64", "--keyframes", "2", "--steps", "6"]


@pytest.mark.slow
def test_green_eyes_and_a_smile_save_both_layers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "green_smile"
    code = main(["edit", "demo", "--prompt", "make her eyes green and give her a big smile", "--part", "iris",
                 *FAST, "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "the iris" in printed
    assert "keyframe 0 (t=" in printed and "realness" in printed and "passed" in printed  # the gate's verdicts
    project = load_project(out / "project.dap")
    assert [layer.kind for layer in project.layers] == ["edit", "expression"]
    base = load_demo_avatar()
    iris = part_mask(base, "iris")
    edit = project.layers[0]
    assert edit.indices.numel() > 0 and bool(iris[edit.indices].all())
    smile = base.head.expression_index("smile")
    assert float(project.layers[1].expr_offset[smile]) > 0.3
    saved = load_avatar(out / "avatar")  # the avatar folder wears both: green irises and the smile in every frame
    assert saved.gaussians.subset(~iris).equal(base.gaussians.subset(~iris))
    assert not torch.equal(saved.gaussians.sh[iris], base.gaussians.sh[iris])
    assert bool((saved.params.expr[:, smile] > 0.3).all())


@pytest.mark.parametrize("argv, message", [
    (["--prompt", "make the lips blue", "--components", "lips", "--part", "iris"], "part 'iris' lies in"),
    (["--prompt", "make the lips blue", "--components", "lipz"], "unknown facial component"),
])
def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str) -> None:
    assert main(["edit", "demo", *argv, *FAST, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_missing_diffusion_model_fails_before_any_rendering(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "no-such-model"
    assert main(["edit", "demo", "--prompt", "make the lips blue", "--backend", "instruct-pix2pix",
                 "--model", str(missing), *FAST, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f"dynamicavatars edit: error: cannot load the instruct-pix2pix model "
                                    f"'{missing}' without downloading: {missing}: model folder not found")
    assert "keyframe" not in err and "visible" not in err and "Traceback" not in err  # was: after rendering them
    assert not (tmp_path / "x").exists()


def test_an_unreachable_edit_endpoint_fails_before_any_rendering(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    assert main(["edit", "demo", "--prompt", "make the lips blue", "--components", "lips", "--backend", "http",
                 "--url", url, *FAST, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"dynamicavatars edit: error: {url}/images/edits: the image-edit "
                                           "endpoint cannot be reached (")
    assert "keyframe" not in err and "visible" not in err and "Traceback" not in err  # was: after rendering them
    assert not (tmp_path / "x").exists()
