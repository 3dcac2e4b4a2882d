"""`dynamicavatars render`: the viewport's own path (session state -> view pipeline) writes a PNG."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.cli import main


def test_render_writes_the_posed_avatar_framed_over_the_background(tmp_path, capsys):
    neutral, smile = tmp_path / "neutral.png", tmp_path / "smile.png"
    base = ["render", "--size", "120", "96", "--backend", "cpu", "--background", "0", "0", "0"]
    assert main(base + ["--out", str(neutral)]) == 0
    assert main(base + ["--expr", "smile=0.9", "--jaw", "0.3", "--out", str(smile)]) == 0
    assert "cpu renderer" in capsys.readouterr().out
    a, b = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (neutral, smile))
    assert a.shape == (96, 120, 3)
    head = a.max(axis=2) > 10
    assert 0.1 < head.mean() < 0.9, "the head is framed: it fills part of the picture, not all of it"
    assert not head[:, :3].any() and not head[:3, :].any(), "with room around it"
    moved = np.abs(a - b).max(axis=2) > 30
    rows = np.nonzero(moved.any(axis=1))[0]
    assert moved.sum() > 20 and rows.mean() > 96 / 2, "the smile and the open jaw change the lower face"
    assert main(base + ["--expr", "grin=1", "--out", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
