"""`dynamicavatars adjust`: writes the adjusted avatar; user errors exit with code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.cli import main
from engine.avatar.demo import load_demo_avatar
from engine.avatar.files import load_avatar
from engine.edit.adjust import selection_from_components
from engine.edit.colour_space import dc_to_rgb


def test_tint_lips_writes_an_avatar_with_only_the_lips_changed(tmp_path: Path) -> None:
    out = tmp_path / "blue_lips"
    code = main(["adjust", "demo", "--components", "lips", "--tint", "0.1,0.3,0.9", "--strength", "0.6",
                 "--out", str(out)])
    assert code == 0
    got = load_avatar(out).gaussians
    base = load_demo_avatar().gaussians
    lips = selection_from_components(base, ["lips"])
    assert got.count == base.count
    assert got.subset(~lips).equal(base.subset(~lips))
    before, after = dc_to_rgb(base.sh[lips, 0]), dc_to_rgb(got.sh[lips, 0])
    assert bool(((after[:, 2] - after[:, 0]) > (before[:, 2] - before[:, 0]) + 0.1).all())


@pytest.mark.slow
def test_hide_and_brightness(tmp_path: Path) -> None:
    out = tmp_path / "no_ears"
    assert main(["adjust", "demo", "--components", "ears,brows", "--hide", "--out", str(out)]) == 0
    got = load_avatar(out).gaussians
    base = load_demo_avatar().gaussians
    sel = selection_from_components(base, ["ears", "brows"])
    assert got.equal(base.subset(~sel))
    out2 = tmp_path / "dark_brows"
    assert main(["adjust", "demo", "--components", "brows", "--brightness", "-0.5", "--out", str(out2)]) == 0
    brows = selection_from_components(base, ["brows"])
    darker = load_avatar(out2).gaussians
    assert bool((dc_to_rgb(darker.sh[brows, 0]).sum(1) < dc_to_rgb(base.sh[brows, 0]).sum(1)).all())
    assert torch.equal(darker.sh[~brows], base.sh[~brows])


@pytest.mark.parametrize("argv, message", [
    (["--components", "lipz", "--tint", "red"], "unknown facial component"),
    (["--components", "lips", "--tint", "1,2"], "three numbers"),
    (["--components", "lips", "--strength", "0.5"], "needs --tint"),
    (["--components", "lips", "--brightness", "3"], "brightness must be in"),
])
def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str) -> None:
    assert main(["adjust", "demo", *argv, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
