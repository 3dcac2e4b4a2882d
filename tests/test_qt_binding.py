"""The Qt binding keeps Python's reference counts: PySide6 6.12.0 drops one reference to True on every
Signal.emit() and one to None on every static function returning void (QTimer.singleShot,
QApplication.processEvents, QTest.mouseClick, ...), so a long session ends with "Fatal Python error:
bool_dealloc" or "none_dealloc" (the GUI soak found it). requirements.lock pins a version without it."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

CALLS = 200
_RESTORED: list[object] = []  # references handed back when the binding dropped some (so the test fails, not the process)


class _Emitter(QObject):
    ping = Signal(object)


def _lost(obj: object, call) -> int:
    before = sys.getrefcount(obj)
    for _ in range(CALLS):
        call()
    lost = before - sys.getrefcount(obj)
    _RESTORED.extend([obj] * max(0, lost))
    return lost


def test_emitting_a_signal_keeps_references_to_true(qapp):
    emitter, seen = _Emitter(), []
    emitter.ping.connect(seen.append)
    lost = _lost(True, lambda: emitter.ping.emit(1))
    assert len(seen) == CALLS
    assert lost < CALLS // 2, f"{lost} references to True lost in {CALLS} emits: pin PySide6 as requirements.lock does"


def test_static_void_functions_keep_references_to_none(qapp):
    lost = _lost(None, lambda: (QApplication.processEvents(), QTimer.singleShot(0, lambda: None)))
    assert lost < CALLS // 2, f"{lost} references to None lost in {CALLS} calls: pin PySide6 as requirements.lock does"
