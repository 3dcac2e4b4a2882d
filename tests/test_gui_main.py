"""Start-up through the real entry point: `python main.py` (what dynamicavatars-gui runs) in its own process,
headless, opens the demo avatar posed from the command line, and its --screenshot shows the head rendered; its
log set up again in one process writes each record once."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_main_py_starts_the_window_on_the_demo_avatar(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local"), "DYNAMICAVATARS_CONFIG_DIR": str(home / "config"),
           "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    shots = {}
    for name, pose in (("neutral", []), ("smile", ["--pose", "smile=1"])):
        shots[name] = tmp_path / f"{name}.png"
        done = subprocess.run([sys.executable, "main.py", "--size", "900x600", "--screenshot", str(shots[name]),
                               *pose], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"screenshot written to {shots[name]}" in done.stdout
        assert "Traceback" not in done.stderr, done.stderr
    neutral, smile = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in shots.values())
    assert neutral.shape == smile.shape == (600, 900, 3)
    # the head, found by its skin in the neutral shot wherever the layout puts the viewport, is posed by
    # --pose: the smile changes the lower face, not the whole head (the sliders' own change lies outside it)
    r, g, b = neutral[..., 0], neutral[..., 1], neutral[..., 2]
    rows, cols = np.nonzero((r > 150) & (r > g + 15) & (g > b) & (b > 60))
    assert rows.size > 2000, f"no head in the screenshot ({rows.size} skin pixels)"
    view = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    assert neutral[view].std() > 20
    changed = np.abs(smile[view] - neutral[view]).max(axis=2) > 30
    changed_rows = np.nonzero(changed.any(axis=1))[0]
    height = rows.max() + 1 - rows.min()
    assert 0.001 < changed.mean() < 0.2 and changed_rows.mean() > 0.4 * height, \
        f"--pose changed {changed.mean():.4f} of the head, rows at {changed_rows.mean() / height:.2f} of its height"


def test_logging_set_up_twice_writes_each_record_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from app.gui_main import log_to_file

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        for _ in range(3):  # main() again in one process (tests open several windows)
            log_to_file(tmp_path / "dynamicavatars.log")
        logging.getLogger("app.workers").warning("the model folder is gone")
    finally:
        for handler in set(root.handlers) - set(handlers):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    assert (tmp_path / "dynamicavatars.log").read_text(encoding="utf-8").count("the model folder is gone") == 1
    assert capsys.readouterr().err == "warning: app.workers: the model folder is gone\n"
