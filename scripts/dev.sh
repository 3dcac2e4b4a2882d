#!/usr/bin/env bash
# Set up everything DynamicAvatars needs (system libraries, a virtualenv with pinned packages) and run it.
#   bash scripts/dev.sh gui [ARGS...]    run the GUI (on the embedded demo avatar unless ARGS say otherwise)
#   bash scripts/dev.sh test [ARGS...]   run the whole test suite headless (2 workers; ARGS go to pytest)
#   bash scripts/dev.sh setup            only set up
# Works on a fresh Debian 12 machine with Python 3.11; safe to run again (it skips what is already done).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=python3

need_apt=()
system_libs=(libgl1 libegl1 libegl-mesa0 libgl1-mesa-dri libglx-mesa0 libxkbcommon0 libxkbcommon-x11-0
             libfontconfig1 libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
             libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xinerama0 libxcb-xkb1 xvfb)
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${system_libs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
  done
  $PY -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "dev.sh: installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

stamp="$VENV/.installed-$(cat requirements.lock requirements-landmarks.lock pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || $PY -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch first, alone and pinned: otherwise a dependency pulls a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q torch==2.13.0
  "$VENV/bin/python" -m pip install -q -c <(echo torch==2.13.0) -r requirements.lock
  # the optional `landmarks` extra (video ingest's face landmarks and foreground), with the shared packages held
  "$VENV/bin/python" -m pip install -q -c <(echo torch==2.13.0) -c requirements.lock -r requirements-landmarks.lock
  "$VENV/bin/python" -m pip install -q --no-deps -e .
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$ROOT/.numba_cache}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
mode="${1:-setup}"; shift || true
case "$mode" in
  setup) echo "dev.sh: ready ($VENV)";;
  gui)
    if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
      echo "dev.sh: no display found; starting the GUI on a virtual X screen (xvfb-run)"
      exec xvfb-run -a -s "-screen 0 1600x1000x24" "$VENV/bin/dynamicavatars-gui" "$@"
    fi
    exec "$VENV/bin/dynamicavatars-gui" "$@";;
  test)
    export QT_QPA_PLATFORM=offscreen
    "$VENV/bin/lint-imports"
    # two workers (pytest-xdist), each running whole test files so module fixtures are built once: the suite is
    # mostly single-threaded, so this about halves it on 2 cores. `-n 0` after `test` runs in one process.
    exec "$VENV/bin/python" -m pytest -q -n 2 --dist loadfile "$@";;
  *) echo "usage: bash scripts/dev.sh gui|test|setup" >&2; exit 2;;
esac
