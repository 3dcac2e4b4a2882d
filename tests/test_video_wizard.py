"""The "New avatar from video" wizard as a bare view (no app, no MediaPipe): the run page's navigation follows
the run state the app reports."""

from __future__ import annotations

from widgets.video_wizard import PAGES, VideoWizard


def test_back_is_off_while_running_and_once_the_avatar_is_open(qtbot) -> None:
    wizard = VideoWizard(default_out="/tmp/run")
    qtbot.addWidget(wizard)
    wizard.set_source(10, 25.0, 192, 192, "video")
    wizard.go(PAGES.index("run"))
    assert wizard.page == "run" and wizard.back_button.isEnabled()
    wizard.set_run_state("running")
    assert not wizard.back_button.isEnabled()
    wizard.set_run_state("stopped")
    assert wizard.back_button.isEnabled()  # cancelled: the settings may be changed before Resume
    wizard.set_run_state("running")
    wizard.set_run_state("done")
    assert not wizard.back_button.isEnabled() and wizard.close_button.isVisibleTo(wizard)
