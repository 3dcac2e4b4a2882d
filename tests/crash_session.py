"""Kill the app mid-edit, relaunch it, and check the autosaved work comes back whole.

    python -m tests.crash_session work FOLDER       # the session that is killed
    python -m tests.crash_session relaunch FOLDER   # the next start (app.gui_main.main, as a user starts it)

`work` opens an avatar, makes changes with real mouse events (ticks a component, paints, applies an adjustment,
drags expression sliders, orbits), starts an edit, and once the edit reports progress prints one line
`STATE {json}` with a digest of the session, then keeps running. `kill_and_relaunch` reads that line, kills the
process with SIGKILL, starts `relaunch` (which answers the recovery question with Open and prints what it was
asked and the restored session's digest) and compares. Used by tests/test_crash_recovery.py and
bench/robustness.py. Both processes use FOLDER/state (DYNAMICAVATARS_STATE_DIR) and FOLDER/config.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha1(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def session_digest(window: Any) -> dict[str, Any]:
    """What a user would lose: selection, layers (with their values), pose, camera, frame, prompt history."""
    m = window.model
    layers = [{"id": layer.id, "name": layer.name, "kind": layer.kind, "enabled": layer.enabled,
               "indices": _sha(layer.indices), "hidden": _sha(layer.hidden),
               "deltas": {k: _sha(v) for k, v in sorted(layer.deltas.items())}} for layer in m.layers]
    return {"selection": None if m.selection is None else _sha(m.selection),
            "selected": 0 if m.selection is None else int((m.selection > 0).sum()),
            "layers": layers, "pose": json.loads(json.dumps(asdict(m.pose))),
            "camera": json.loads(json.dumps(asdict(m.camera))), "frame": m.frame,
            "prompts": json.loads(json.dumps(window.features["prompt"].history, default=str)),
            "gaussians": m.avatar.gaussians.count}


def environment(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"QT_QPA_PLATFORM": "offscreen", "OPENBLAS_NUM_THREADS": "1",
                "DYNAMICAVATARS_STATE_DIR": str(folder / "state"), "DYNAMICAVATARS_CONFIG_DIR": str(folder / "config"),
                "XDG_CONFIG_HOME": str(folder / "config"), "HF_HUB_OFFLINE": "1",
                "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])})
    return env


# ---- the session that crashes ------------------------------------------------------------------------------
def work(folder: Path) -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication

    from tests.gui_soak import GuiSoak, build_window, click, drag, slider_handle, small_avatar_folder, wait_until

    torch.set_num_threads(1)
    qt_app = QApplication.instance() or QApplication(sys.argv[:1])
    window = build_window(folder, folder / "state")
    soak = GuiSoak(window, folder, seed=3)
    window.open_avatar(str(small_avatar_folder(folder)))
    wait_until(lambda: window.model.avatar is not None, 120, "the avatar to open")
    soak._idle()
    for kind in ("components", "paint", "paint", "slider", "slider", "orbit", "timeline"):
        getattr(soak, f"act_{kind}")()
        soak._wait_frame()
    adjust = window.features["adjust"].panel
    slider = adjust.sliders[min(adjust.sliders)]
    drag(slider, [slider_handle(slider), slider_handle(slider) + QPoint(30, 0)])
    click(adjust.apply_button)
    wait_until(lambda: len(window.model.layers) > 0, 30, "the adjustment to become a layer")
    soak._idle()
    prompt, edit = window.features["prompt"], window.features["edit"]
    prompt.panel.prompt_box.setEditText("make the lips blue")
    refined: list[object] = []
    prompt.refined.connect(refined.append)
    click(prompt.panel.refine_button)
    wait_until(lambda: bool(refined), 60, "the prompt to be refined")
    soak._idle()
    click(edit.panel.edit_button)
    worker = edit.job.worker
    progressed: list[float] = []
    worker.progress.connect(lambda f, _t: progressed.append(f))
    wait_until(lambda: bool(progressed) or not worker.is_running(), 120, "edit progress")
    state = {"digest": session_digest(window), "editing": worker.is_running()}
    print("STATE " + json.dumps(state), flush=True)
    wait_until(lambda: False, 600, "the kill")  # runs until killed
    qt_app.quit()


# ---- the next start ----------------------------------------------------------------------------------------
def relaunch(folder: Path) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app import gui_main

    torch.set_num_threads(1)
    qt_app = QApplication.instance() or QApplication(sys.argv[:1])
    asked: list[str] = []
    QMessageBox.question = staticmethod(lambda *a, **k: asked.append(str(a[2])) or QMessageBox.StandardButton.Open)
    install = gui_main.install_features
    found: dict[str, Any] = {}

    def report(window: Any) -> None:
        pc = window.features["project"]
        print("RESTORED " + json.dumps({"asked": asked, "digest": session_digest(window), "modified": pc.modified,
                                        "title": window.windowTitle()}), flush=True)
        qt_app.exit(0)

    def installing(window: Any, *args: Any, **kwargs: Any) -> dict[str, object]:
        features = install(window, *args, **kwargs)
        features["project"].opened.connect(lambda _path: report(window))
        found["window"] = window
        return features

    gui_main.install_features = installing
    give_up = QTimer(interval=180_000, singleShot=True)
    give_up.timeout.connect(lambda: (print("RESTORED " + json.dumps({"asked": asked, "digest": None}), flush=True),
                                     qt_app.exit(3)))
    give_up.start()
    return gui_main.main(["--size", "900x640", "--backend", "cpu"])


# ---- both, from outside ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrashResult:
    """What one kill-and-relaunch showed."""

    before: dict[str, Any]  # the session digest printed just before the kill
    after: dict[str, Any] | None  # the digest after the relaunch restored the recovery copy (None: nothing restored)
    asked: list[str]  # the recovery questions the relaunch showed
    editing: bool  # the edit was still running when the process was killed
    recovery_files: int  # recovery copies on disk after the kill
    modified: bool  # the restored project is marked as unsaved work
    seconds: float

    @property
    def recovered(self) -> bool:
        return self.after is not None and self.after == self.before and len(self.asked) == 1 and self.modified


def _line(proc: subprocess.Popen, prefix: str, timeout_s: float) -> dict[str, Any]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        if line.startswith(prefix):
            return json.loads(line[len(prefix):])
    raise RuntimeError(f"no {prefix.strip()} line (exit {proc.poll()}): {proc.stderr.read()[-3000:] if proc.poll() is not None else ''}")


def kill_and_relaunch(folder: Path, timeout_s: float = 400) -> CrashResult:
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    env = environment(folder)
    cmd = [sys.executable, "-m", "tests.crash_session"]
    with subprocess.Popen(cmd + ["work", str(folder)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            state = _line(proc, "STATE ", timeout_s)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    copies = list((folder / "state" / "recovery").glob("*.dap"))
    with subprocess.Popen(cmd + ["relaunch", str(folder)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            restored = _line(proc, "RESTORED ", timeout_s)
        finally:
            proc.kill()
            proc.wait()
    return CrashResult(state["digest"], restored["digest"], restored["asked"], state["editing"], len(copies),
                       bool(restored.get("modified")), time.perf_counter() - start)


if __name__ == "__main__":
    mode, where = sys.argv[1], Path(sys.argv[2])
    if mode == "work":
        work(where)
    else:
        raise SystemExit(relaunch(where))
