"""Change events of plain-Python models (napari's evented-model idea, without the machinery).

    state.events.pose.connect(on_pose)   # on_pose() runs, in the caller's thread, after every pose change
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Event:
    """Callbacks run in connection order by emit(*args)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in tuple(self._callbacks):
            callback(*args)


class Events:
    """One Event per name, as attributes: Events("pose", "camera").pose.connect(...)."""

    def __init__(self, *names: str) -> None:
        self.names = names
        for name in names:
            setattr(self, name, Event(name))

    def __getattr__(self, name: str) -> Event:  # for type checkers: the events are set in __init__
        raise AttributeError(f"no event {name!r}; events: {', '.join(self.names)}")
