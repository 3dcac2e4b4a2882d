"""The window at laptop size (issue 26): docks without horizontal scrollbars, main buttons in view, the
training plot's height, one layer list, a hair selection visible in the viewport (ΔE), the fps readout idle
at rest. The figures and how they are taken: scripts/layout_probe.py, which builds the real window
(offscreen Qt, the demo avatar) at 1280x800 and 1440x900; it runs in a child process, as the GUI is a
program this bench drives (benchmarks import no Qt and nothing from app/: the import-linter contract).

    .venv/bin/python bench/layout.py --quick

--quick and the full run measure the same (geometry and pixels, well under a minute). Ends with one JSON
line: the probe's figures, plus seconds (wall time of the probe) and the 1-minute load average at start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the same figures (they take well under a minute)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the window's process")
    args = parser.parse_args()
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen"}
    load, start = os.getloadavg()[0], time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "layout_probe.py"), "--threads", str(args.threads)],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.exit(f"bench/layout.py: the probe failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    figures = json.loads(lines[-1])
    figures.update(seconds=round(time.perf_counter() - start, 1), load_average_1min=round(load, 2))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
