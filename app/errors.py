"""Errors the application reports to the user without a traceback."""


class CommandError(Exception):
    """An error the user caused (bad file, bad value): printed without a traceback."""
