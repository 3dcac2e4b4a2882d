"""Training checkpoints that cannot be resumed: missing, unreadable, not ours, newer, or made on another dataset.
Each is refused with an error naming the file and the problem, in the engine and in the CLI (exit code 2)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from app.cli import main
from engine.data.synth import SynthConfig, generate
from engine.io.atomic import FileFormatError
from engine.train.checkpoint import CHECKPOINT_VERSION, load_checkpoint, save_checkpoint
from engine.train.config import TrainConfig
from engine.train.run import train

CONFIG = replace(TrainConfig(), iters=2, resolution=32, eval_interval=0, preview_interval=0, checkpoint_interval=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(dataset, another dataset, run folder trained 2 steps on the first)."""
    root = tmp_path_factory.mktemp("ckpt")
    first = generate(root / "a", SynthConfig(size=32, train_frames=2, test_frames=1, train_cameras=2, heldout_cameras=1))
    other = generate(root / "b", SynthConfig(size=32, train_frames=3, test_frames=1, train_cameras=2, heldout_cameras=1))
    train(first, root / "run", CONFIG, final_eval_frames=1)
    return first, other, root / "run"


def test_missing_unreadable_foreign_and_newer_checkpoints_are_refused(run, tmp_path: Path) -> None:
    _, _, folder = run
    with pytest.raises(FileFormatError, match=r"nope\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a zip at all" * 20)
    with pytest.raises(FileFormatError, match=r"garbage\.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "garbage.pt")
    whole = (folder / "checkpoint.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FileFormatError, match=r"cut\.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"iteration": 3}, tmp_path / "foreign.pt")
    with pytest.raises(FileFormatError, match=r"foreign\.pt: not a DynamicAvatars training checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    state = load_checkpoint(folder / "checkpoint.pt")
    assert state["iteration"] == 2
    save_checkpoint(state, tmp_path / "newer.pt")
    data = torch.load(tmp_path / "newer.pt", weights_only=True)
    torch.save({**data, "version": CHECKPOINT_VERSION + 1}, tmp_path / "newer.pt")
    with pytest.raises(FileFormatError, match=rf"newer\.pt: written by a newer DynamicAvatars \(version {CHECKPOINT_VERSION + 1}\)"):
        load_checkpoint(tmp_path / "newer.pt")


def test_resuming_on_another_dataset_is_refused_and_keeps_the_checkpoint(run, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    first, other, folder = run
    before = (folder / "checkpoint.pt").read_bytes()
    with pytest.raises(FileFormatError, match=r"checkpoint\.pt: trained on another dataset"):
        train(other, folder, replace(CONFIG, iters=4), resume=True)
    assert main(["train", str(other), "--out", str(folder), "--iters", "4", "--resolution", "32", "--resume",
                 "--finetune-flame"]) == 2  # was a traceback deep in FLAME skinning
    err = capsys.readouterr().err
    assert "checkpoint.pt: trained on another dataset" in err and "Traceback" not in err
    assert (folder / "checkpoint.pt").read_bytes() == before
    # the dataset it was trained on resumes, and a checkpoint written before the signature existed still does
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    state = load_checkpoint(folder / "checkpoint.pt")
    save_checkpoint({k: v for k, v in state.items() if k != "dataset"}, resumed / "checkpoint.pt")
    assert train(first, resumed, replace(CONFIG, iters=3), resume=True, final_eval_frames=1).iterations == 3
    assert train(first, folder, replace(CONFIG, iters=3), resume=True, final_eval_frames=1).iterations == 3
