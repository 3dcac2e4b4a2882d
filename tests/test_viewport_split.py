"""Dragging the viewport's before/after divider (a real press-move-release) moves the session's split; a
press away from it still orbits; without a comparison there is no divider to grab."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from app.session import SessionModel
from engine.avatar.demo import load_demo_avatar
from engine.edit.layers import expression_layer_of
from widgets.viewport import Viewport


@pytest.fixture()
def view(qtbot):
    model = SessionModel()
    model.set_avatar(load_demo_avatar(count=2000))
    viewport = Viewport(model)
    qtbot.addWidget(viewport)
    viewport.resize(400, 300)
    viewport.show()
    qtbot.waitExposed(viewport)
    return model, viewport


def test_dragging_the_divider_moves_the_split(qtbot, view) -> None:
    model, viewport = view
    smile = expression_layer_of(model.avatar.head, {"smile": 0.8}, "smile")
    model.set_layers([smile])
    model.set_compare({smile.id}, 0.5)
    camera = model.camera
    x = round(viewport.divider_x())
    assert x == 200
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=QPoint(x + 4, 150))
    qtbot.mouseMove(viewport, QPoint(300, 160))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=QPoint(300, 160))
    assert model.split == pytest.approx(300 / 400, abs=0.01)
    assert model.camera == camera  # the divider moved, the camera did not
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=QPoint(100, 150))  # far from the divider: orbit
    qtbot.mouseMove(viewport, QPoint(140, 150))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=QPoint(140, 150))
    assert model.camera != camera and model.split == pytest.approx(0.75, abs=0.01)


def test_no_divider_without_a_comparison(qtbot, view) -> None:
    model, viewport = view
    model.set_compare(set(), 0.5)  # on, but both sides are the same
    assert viewport.divider_x() is None and not viewport.near_divider(200)
    camera = model.camera
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=QPoint(200, 150))
    qtbot.mouseMove(viewport, QPoint(260, 150))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=QPoint(260, 150))
    assert model.split == 0.5 and model.camera != camera
