"""A terminal progress bar for CLI commands, fed by the engine's progress(fraction, message) callback."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from tqdm import tqdm


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator[Callable[[float, str], None]]:
    """A progress(fraction, message) callback drawing a tqdm bar on stderr (plain lines when not a tty)."""
    bar = tqdm(total=1000, desc=label, file=sys.stderr, disable=None, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def progress(fraction: float, message: str) -> None:
        bar.n = int(max(0.0, min(1.0, fraction)) * 1000)
        bar.set_postfix_str(message, refresh=True)

    try:
        yield progress
    finally:
        bar.close()
