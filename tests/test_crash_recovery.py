"""The app killed (SIGKILL) in the middle of an edit, then started again as a user starts it: the autosaved
work is offered once and comes back whole (selection, adjustment layer, pose, camera, frame, prompt history),
marked as unsaved. tests/crash_session.py drives both processes with real mouse events."""

from __future__ import annotations

import pytest

from tests.crash_session import kill_and_relaunch


@pytest.mark.slow
def test_killed_mid_edit_then_relaunch_offers_the_work_with_nothing_lost(tmp_path):
    result = kill_and_relaunch(tmp_path)
    assert result.editing, "the edit had ended before the kill"
    before = result.before
    assert before["selected"] > 0 and len(before["layers"]) >= 1 and before["pose"]["expressions"]
    assert before["prompts"], "the refined prompt is part of the work"
    assert result.recovery_files == 1, "the kill left no recovery copy (or several)"
    assert len(result.asked) == 1 and "unsaved work" in result.asked[0], result.asked
    assert result.after == before
    assert result.modified, "restored work must still count as unsaved"
    assert result.recovered
