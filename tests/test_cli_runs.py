"""The CLI's long jobs end to end on a tiny dataset, each checked on what it wrote: `synth` a dataset that reads
back, `train` an avatar (loss falls, checkpoint, metrics, a loadable avatar), `edit` its lips blue (only the lips
change) and `render` both (the lips turn blue in the picture)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app.cli import main
from engine.avatar.files import load_avatar
from engine.data.vhap_format import read_dataset
from engine.head.components import labels_of
from engine.project.project_file import load_project
from engine.train.checkpoint import load_checkpoint

ITERS = 30


def _render(avatar: Path, out: Path) -> np.ndarray:
    """[H, W, 3] int picture of an avatar folder by `dynamicavatars render` (front view, 64 px, CPU)."""
    assert main(["render", "--avatar", str(avatar), "--size", "64", "--backend", "cpu", "--out", str(out)]) == 0
    return np.asarray(Image.open(out).convert("RGB")).astype(int)


@pytest.mark.slow
def test_synth_train_edit_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run, edited = tmp_path / "ds", tmp_path / "run", tmp_path / "edited"
    assert main(["synth", str(data), "--size", "32", "--frames", "2", "--test-frames", "1", "--cameras", "2",
                 "--heldout-cameras", "1"]) == 0
    dataset = read_dataset(data)  # validates every frame's files
    assert len(dataset.frames("train")) == 4 and all(r.image_path.is_file() for r in dataset.frames("train"))

    assert main(["train", str(data), "--out", str(run), "--iters", str(ITERS), "--resolution", "32"]) == 0
    state = load_checkpoint(run / "checkpoint.pt")
    losses = [r["loss"] for r in state["history"]]
    assert state["iteration"] == ITERS and len(losses) == ITERS
    # measured: first five steps 0.159 on average, last five 0.148
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.005, losses
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["iterations"] == ITERS and 10 < metrics["metrics"]["val"]["psnr"] < 60
    trained = load_avatar(run / "avatar")
    assert trained.gaussians.count == state["params"]["xyz"].shape[0]

    capsys.readouterr()
    assert main(["edit", str(run / "avatar"), "--prompt", "make the lips blue", "--components", "lips",
                 "--out", str(edited), "--steps", "10", "--size", "64", "--keyframes", "2", "--seed", "0"]) == 0
    assert "Gaussians changed" in capsys.readouterr().out
    after = load_avatar(edited / "avatar")
    lips = torch.isin(trained.gaussians.labels, torch.tensor(labels_of(["lips"])))
    changed = (after.gaussians.sh - trained.gaussians.sh).abs().flatten(1).amax(1) > 0
    assert after.gaussians.count == trained.gaussians.count and bool(changed.any())
    assert not bool((changed & ~lips).any()), "the edit changed Gaussians outside the lips"
    torch.testing.assert_close(after.gaussians.xyz, trained.gaussians.xyz)
    def blue_red(g) -> float:  # mean blue minus red of the lips' DC colour
        return float((g.sh[lips, 0, 2] - g.sh[lips, 0, 0]).mean())

    assert blue_red(after.gaussians) > blue_red(trained.gaussians) + 0.3  # measured -0.44 -> 0.69
    assert load_project(edited / "project.dap").layers, "the project holds the edit as a layer"

    before_px, after_px = _render(run / "avatar", tmp_path / "a.png"), _render(edited / "avatar", tmp_path / "b.png")
    moved = np.abs(after_px - before_px).max(axis=2) > 20
    assert 0 < moved.mean() < 0.1, "the lips change, not the whole picture"
    bluer = (after_px[..., 2] - after_px[..., 0]) - (before_px[..., 2] - before_px[..., 0])
    assert bluer[moved].mean() > 20
