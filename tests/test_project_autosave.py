"""Autosave to a recovery folder, recovery listing, and the recent-projects list."""

from __future__ import annotations

import os
import time

import pytest

from engine.project.autosave import Autosaver, discard_recovery, pending_recovery, recovery_dir
from engine.project.project_file import Project, load_project, save_project
from engine.project.recent import RecentProjects
from tests.test_export_video import tiny_avatar


@pytest.fixture()
def project() -> Project:
    return Project(tiny_avatar(n=30), ui={"step": 0})


def test_recovery_written_once_per_interval_of_changes(tmp_path, project):
    snapshots = []

    def snapshot() -> Project:
        snapshots.append(project.ui["step"])
        return project

    saver = Autosaver(snapshot, folder=tmp_path / "rec", interval_s=60.0)
    assert saver.maybe_save(now=1000.0) is None and not saver.dirty
    project.ui["step"] = 1
    saver.note_change(now=1000.0)
    saver.note_change(now=1030.0)
    assert saver.maybe_save(now=1059.0) is None
    written = saver.maybe_save(now=1060.0)
    assert written == saver.recovery_path and written.is_file() and snapshots == [1]
    assert saver.maybe_save(now=1200.0) is None and not saver.dirty  # nothing changed since
    project.ui["step"] = 2
    saver.note_change(now=1201.0)
    assert saver.maybe_save(now=1250.0) is None
    assert saver.maybe_save(now=1261.0) == written and snapshots == [1, 2]
    pending = pending_recovery(tmp_path / "rec")
    assert [r.path for r in pending] == [written] and pending[0].project_path is None
    assert load_project(pending[0].path, head=project.avatar.head).ui == {"step": 2}
    assert saver.pending_recovery() == []  # its own copy is not offered to itself
    saver.discard()
    assert not written.exists() and pending_recovery(tmp_path / "rec") == []


def test_recovery_of_saved_project_listed_only_when_newer(tmp_path, project):
    path = save_project(project, tmp_path / "work.dap")
    saver = Autosaver(lambda: project, project_path=path, folder=tmp_path / "rec", interval_s=60.0)
    saver.note_change(now=0.0)
    copy = saver.maybe_save(now=60.0)
    assert copy is not None
    later = Autosaver(lambda: project, folder=tmp_path / "rec")  # the next start, after a crash
    offered = later.pending_recovery()
    assert len(offered) == 1 and offered[0].project_path == path.resolve() and offered[0].name == "tiny avatar"
    future = time.time() + 100
    os.utime(path, (future, future))  # the project was saved after the copy
    assert later.pending_recovery() == []
    os.utime(path, (0, 0))
    assert len(later.pending_recovery()) == 1
    discard_recovery(offered[0])
    assert not copy.exists()


def test_real_save_clears_the_copy_and_failures_do_not_raise(tmp_path, project):
    calls = {"n": 0}

    def flaky() -> Project:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return project

    saver = Autosaver(flaky, folder=tmp_path / "rec", interval_s=10.0)
    saver.note_change(now=0.0)
    assert saver.maybe_save(now=10.0) is None and "disk full" in saver.last_error and saver.dirty
    assert saver.maybe_save(now=15.0) is None  # retried one interval after the failure
    assert saver.maybe_save(now=20.0) is not None and saver.last_error is None
    target = tmp_path / "saved.dap"
    save_project(project, target)
    saver.saved(target)
    assert list((tmp_path / "rec").iterdir()) == [] and saver.project_path == target.resolve()


def test_recovery_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNAMICAVATARS_STATE_DIR", str(tmp_path / "state"))
    assert recovery_dir() == tmp_path / "state" / "recovery"
    monkeypatch.delenv("DYNAMICAVATARS_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert recovery_dir() == tmp_path / "xdg" / "dynamicavatars" / "recovery"


def test_recent_projects(tmp_path):
    files = []
    for i in range(4):
        files.append(tmp_path / f"p{i}.dap")
        files[-1].write_bytes(b"x")
    recent = RecentProjects(tmp_path / "state" / "recent.json", limit=3)
    assert recent.paths() == []
    for f in files:
        recent.add(f)
    recent.add(files[1])
    assert recent.paths() == [files[1], files[3], files[2]]
    files[3].unlink()
    assert recent.paths() == [files[1], files[2]]
    recent.remove(files[1])
    assert recent.paths() == [files[2]]
    (tmp_path / "state" / "recent.json").write_text("{broken")
    assert recent.paths() == []
    recent.add(files[0])
    assert recent.paths() == [files[0]]


def test_save_now_writes_pending_changes_at_once(tmp_path, project):
    saver = Autosaver(lambda: project, folder=tmp_path / "rec", interval_s=3600.0)
    assert saver.save_now() is None and not saver.recovery_path.exists()  # nothing pending
    project.ui["step"] = 5
    saver.note_change()
    written = saver.save_now()
    assert written == saver.recovery_path and not saver.dirty
    assert load_project(written, head=project.avatar.head).ui == {"step": 5}
