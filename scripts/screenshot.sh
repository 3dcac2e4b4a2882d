#!/usr/bin/env bash
# Start the real DynamicAvatars window under a virtual X server (Xvfb) and save a PNG of it.
#   bash scripts/screenshot.sh [OUT.png] [extra dynamicavatars-gui arguments...]
# Default OUT: out/screenshot.png. Needs xvfb (and the xcb libraries scripts/dev.sh installs).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/screenshot.png}"
shift || true
PY="${PYTHON:-.venv/bin/python}"
command -v xvfb-run >/dev/null || { echo "screenshot.sh: xvfb-run not found (apt-get install xvfb)" >&2; exit 2; }
mkdir -p "$(dirname "$out")"
unset QT_QPA_PLATFORM   # a real X window (xcb), not offscreen
export OPENBLAS_NUM_THREADS=1
exec xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$PY" main.py --size 1440x900 --pose "smile=0.55,brow_raise=0.25" --screenshot "$out" "$@"
