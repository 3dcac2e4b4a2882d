"""Failures the user can act on: their message says what went wrong and what to do, so the app reports them in
one line (a dialog, a status line, one log line) and never as a crash with a traceback.

An error class joins by deriving from UserError beside its built-in base (`class DatasetError(UserError,
ValueError)`), so code that catches the built-in keeps working. Anything else that escapes a job is a bug: the
app logs its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A known, user-facing failure with a clear message (bad input, missing model, nothing to edit)."""


class EditError(UserError, ValueError):
    """An edit cannot run on what was asked: nothing selected, a region no view shows, no frames to edit."""
