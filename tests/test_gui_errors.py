"""GUI error paths, headless: a bad sequence file, an avatar whose FLAME model cannot be found, unwritable save and
export paths each show a dialog naming the file and keep the session; cancelling an export or a synthetic dataset
leaves no file behind; Cancel stops a refinement waiting on a server that hangs."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.prompt_controller import PromptController
from app.session import SessionModel
from app.train_controller import TrainController
from engine.avatar.files import save_avatar
from engine.data.synth import SynthConfig
from engine.export.video import VideoSettings
from engine.prompting import RefineSettings
from tests.test_gui_project import window  # noqa: F401  (the main window with every feature, on the demo avatar)
from widgets.export_dialog import ExportRequest
from widgets.prompt_panel import PromptPanel
from widgets.train_panel import TrainPanel

LONG = 120_000  # ms: the machine is shared


@pytest.fixture
def dialogs(monkeypatch) -> list[tuple[str, str]]:
    """(title, text) of each error or information box, instead of a modal box."""
    shown: list[tuple[str, str]] = []
    for kind in ("critical", "information", "warning"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(lambda parent, title, text, *a, **k: shown.append((title, text))))
    return shown


def _wait_dialog(qtbot, dialogs: list, count: int) -> tuple[str, str]:
    qtbot.waitUntil(lambda: len(dialogs) >= count, timeout=LONG)
    return dialogs[count - 1]


@pytest.mark.slow
def test_bad_sequence_and_missing_flame_model_show_dialogs_and_keep_the_avatar(window, qtbot, dialogs, monkeypatch,
                                                                               tmp_path):
    m = window.model
    avatar, sequence = m.avatar, m.sequence
    (tmp_path / "garbage.npz").write_bytes(b"not an npz" * 10)
    window.open_sequence(str(tmp_path / "garbage.npz"))
    title, text = _wait_dialog(qtbot, dialogs, 1)
    assert title == "Could not open FLAME sequence" and "garbage.npz" in text
    np.savez(tmp_path / "no_expr.npz", rotation=np.zeros((3, 3), np.float32))
    window.open_sequence(str(tmp_path / "no_expr.npz"))
    title, text = _wait_dialog(qtbot, dialogs, 2)
    assert title == "Could not open FLAME sequence" and "no_expr.npz" in text
    assert m.sequence is sequence and m.avatar is avatar

    # a GaussianAvatars output folder (point_cloud/iteration_N): made with FLAME, and no FLAME model is known
    run = tmp_path / "ga_run" / "point_cloud" / "iteration_100"
    save_avatar(avatar, run)
    (run / "avatar.json").unlink()  # as GaussianAvatars writes it: no manifest naming the head
    asked: list[str] = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (asked.append(a[1]), ("", ""))[1]))
    window.open_avatar(str(tmp_path / "ga_run"))
    title, text = _wait_dialog(qtbot, dialogs, 3)
    assert title == "FLAME model needed" and "FLAME" in text
    assert asked and "FLAME model" in asked[0], "the window asks for the FLAME model file"
    assert m.avatar is avatar  # the user cancelled the file dialog: nothing changes
    # a remembered FLAME model that has gone: an error naming it
    window.settings.setValue("flame_model", str(tmp_path / "gone" / "generic_model.pkl"))
    window.open_avatar(str(tmp_path / "ga_run"))
    title, text = _wait_dialog(qtbot, dialogs, 4)
    assert title == "Could not open avatar" and "generic_model.pkl" in text
    assert m.avatar is avatar


def test_unwritable_save_and_export_paths_show_dialogs(window, qtbot, dialogs, tmp_path):
    pc = window.features["project"]
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where a folder should be")  # unwritable even for root
    assert pc.save_to(blocker / "p.dap") is False
    title, text = dialogs[0]
    assert title == "Could not save project" and str(blocker / "p.dap") in text
    assert pc.path is None and not list(tmp_path.glob("**/*.dap"))
    pc.start_export(ExportRequest("splats", blocker / "head.ply"))
    title, text = _wait_dialog(qtbot, dialogs, 2)
    assert title == "Export failed" and "a_file" in text
    settings = VideoSettings(width=32, height=32, fps=5.0, duration_s=0.4)
    pc.start_export(ExportRequest("video", blocker / "clip.mp4", motion="held", settings=settings))
    title, text = _wait_dialog(qtbot, dialogs, 3)
    assert title == "Export failed" and "a_file" in text
    assert blocker.read_text() == "a file where a folder should be"


def test_cancelled_export_writes_nothing(window, qtbot, dialogs, tmp_path):
    pc, m = window.features["project"], window.model
    out = tmp_path / "out"
    out.mkdir()
    messages: list[str] = []
    m.message.connect(messages.append)
    settings = VideoSettings(width=48, height=48, fps=10.0, duration_s=60.0)  # 600 frames: never done before the cancel
    started: list[float] = []
    worker = pc.start_export(ExportRequest("video", out / "clip.mp4", motion="held", settings=settings))
    worker.progress.connect(lambda f, text: started.append(f))
    qtbot.waitUntil(lambda: len(started) >= 2, timeout=LONG)
    with qtbot.waitSignal(worker.cancelled, timeout=LONG):
        worker.cancel()
    assert "Export cancelled; nothing was written" in messages
    assert list(out.iterdir()) == [] and not dialogs


def test_cancelled_synthetic_dataset_leaves_no_folder(qtbot, dialogs, monkeypatch, tmp_path):
    panel = TrainPanel()
    qtbot.addWidget(panel)
    controller = TrainController(panel, SessionModel())
    controller.synth_config = SynthConfig(size=64, train_frames=40, test_frames=10, train_cameras=6, heldout_cameras=2)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(tmp_path)))
    try:
        progress: list[float] = []
        panel.synth_button.click()
        assert panel.state == "making_data"
        controller.job.worker.progress.connect(lambda f, text: progress.append(f))
        qtbot.waitUntil(lambda: len(progress) >= 2, timeout=LONG)
        panel.cancel_button.click()
        qtbot.waitUntil(lambda: panel.state == "idle", timeout=LONG)
        assert "cancelled" in panel.status.text() and panel.dataset.text() == ""
        assert list(tmp_path.iterdir()) == [], "no dataset and no .partial folder left"
        assert not dialogs
    finally:
        controller.shutdown()
        shutil.rmtree(tmp_path, ignore_errors=True)


class _HangingServer:
    """A local OpenAI-compatible stand-in that accepts the request and never answers (until closed)."""

    def __init__(self) -> None:
        release = self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                release.wait(60)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_cancel_stops_a_refinement_waiting_on_a_hanging_server(qtbot):
    server = _HangingServer()
    try:
        panel = PromptPanel()
        qtbot.addWidget(panel)
        settings = RefineSettings(base_url=server.url, http_model="stand-in", timeout=60.0, retries=0,
                                  use_embeddings=False)
        controller = PromptController(SessionModel(), panel, settings)
        failures: list[str] = []
        controller.failed.connect(failures.append)
        assert not panel.cancel_button.isEnabled()
        panel.backend_box.setCurrentText("http")
        panel.prompt_box.setEditText("make the lips red")
        panel.refine_button.click()
        assert controller.busy and panel.cancel_button.isEnabled() and not panel.refine_button.isEnabled()
        qtbot.waitUntil(lambda: controller.job.worker is not None and controller.job.worker.is_running(), timeout=LONG)
        panel.cancel_button.click()
        qtbot.waitUntil(lambda: not controller.busy, timeout=10_000)  # the server would hold it for 60 s
        assert failures == ["Refinement cancelled."] and panel.plan is None
        assert panel.refine_button.isEnabled() and not panel.cancel_button.isEnabled()
        assert controller.history[-1]["error"] == "Refinement cancelled."
    finally:
        server.close()
