"""A terminal progress bar for CLI commands, fed by the engine's progress(fraction, message) callback."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from tqdm import tqdm


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator[Callable[[float, str], None]]:
    """A progress(fraction, message) callback drawing a tqdm bar on stderr.

    When stderr is not a terminal, it prints a plain line at each tenth of the way instead."""
    bar = tqdm(total=1000, desc=label, file=sys.stderr, disable=None, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    printed = [-1]  # last tenth printed as a plain line (when the bar is off: not a terminal)

    def progress(fraction: float, message: str) -> None:
        fraction = max(0.0, min(1.0, fraction))
        if bar.disable:
            tenth = int(fraction * 10)
            if tenth > printed[0]:
                printed[0] = tenth
                print(f"{label}: {100 * fraction:3.0f}% {message}", file=sys.stderr, flush=True)
            return
        bar.n = int(fraction * 1000)
        bar.set_postfix_str(message, refresh=True)

    try:
        yield progress
    finally:
        bar.close()
