"""Start-up through the real entry point: `python main.py` (what dynamicavatars-gui runs) in its own process,
headless, opens the demo avatar posed from the command line, and its --screenshot shows the head rendered."""

from __future__ import annotations

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
    # the viewport (left of the docks, about 390 x 440 here) shows a head, posed by --pose: the smile changes
    # the mouth, not the whole view
    view = (slice(60, 420), slice(40, 315))
    assert neutral[view].std() > 20
    changed = np.abs(smile[view] - neutral[view]).max(axis=2) > 30
    rows = np.nonzero(changed.any(axis=1))[0]
    assert 0.001 < changed.mean() < 0.2 and rows.mean() > 150, f"--pose changed {changed.mean():.4f} of the view"  # measured 0.004
