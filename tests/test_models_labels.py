"""The face parser, when chosen, makes label maps for a dataset that has none before training; without
one the training says the label loss skips those frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.cli import main
from engine.data.synth import SynthConfig, generate
from engine.data.vhap_format import read_dataset
from engine.semantics.face_parser import CELEBAMASK_TO_COMPONENT
from tiny_models import tiny_segformer


def _unlabelled(root: Path) -> Path:
    generate(root, SynthConfig(size=32, train_frames=2, test_frames=1, train_cameras=2, heldout_cameras=1))
    shutil.rmtree(root / "labels", ignore_errors=True)
    for json_path in root.glob("transforms_*.json"):
        db = json.loads(json_path.read_text())
        for frame in db["frames"]:
            frame.pop("label_path", None)
        json_path.write_text(json.dumps(db))
    return root


def test_parser_labels_a_dataset_without_label_maps(private_hub: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from engine.semantics.parse_labels import frames_without_labels

    data = _unlabelled(tmp_path / "ds")
    frames = frames_without_labels(data)
    assert frames > 0 and all(r.label_path is None for r in read_dataset(data).frames("train"))
    train = ["train", str(data), "--out", str(tmp_path / "run"), "--iters", "2", "--resolution", "32"]
    assert main([*train, "--parse-labels"]) == 2
    assert "needs a face parser" in capsys.readouterr().err
    assert main(train) == 0  # no parser: the training still runs and says why frames are unlabelled
    assert f"{frames} frames have no label map" in capsys.readouterr().out

    parser_dir = tiny_segformer(tmp_path / "parser", list(CELEBAMASK_TO_COMPONENT))
    assert main(["models", "use", "parser", str(parser_dir)]) == 0
    assert main(train) == 0
    assert f"labels: {frames} label maps made by the face parser {parser_dir}" in capsys.readouterr().out
    dataset = read_dataset(data)  # validates every label map's size and mode
    records = [r for split in dataset.splits.values() for r in split]
    assert all(r.label_path is not None and r.label_path.is_file() for r in records)
    assert frames_without_labels(data) == 0
    from engine.data.frames import load_labels

    labels = load_labels(records[0].label_path)
    assert labels.shape == (32, 32) and int(labels.min()) >= -1
