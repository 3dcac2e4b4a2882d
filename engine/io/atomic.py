"""Atomic file writing: write to a temporary file in the same folder, then rename over the target."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from engine.errors import UserError


class FileFormatError(UserError, ValueError):
    """A file is missing, unreadable or malformed; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class WriteFailed(UserError, OSError):
    """Writing a file failed (disk full, permission, ...); the message names the file and says that the
    previous file there, if any, is unchanged. errno and strerror are the underlying error's."""

    def __init__(self, path: str | os.PathLike, cause: OSError, had_previous: bool) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause), str(path))
        kept = "the previous file is unchanged" if had_previous else "nothing was written"
        self.message = f"{path}: could not be written ({cause.strerror or cause}); {kept}"

    def __str__(self) -> str:
        return self.message


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux), else by setting and
    restoring it (which other threads could briefly see)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(target: str | os.PathLike) -> int:
    """Permission bits for a file written to target: the existing file's, else 0o666 less the umask (what
    open() would give; mkstemp's temporary files are 0o600)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside path; on success it replaces path, on error it is removed.

    The previous file at path stays intact until the new one is complete; a failed write raises
    WriteFailed saying so. The new file gets the previous file's permissions, or the umask's.
    """
    target = Path(path)
    had_previous = target.is_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise WriteFailed(target, exc, had_previous) from exc
    try:
        os.fchmod(fd, new_file_mode(target))
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not (isinstance(exc, WriteFailed) and exc.filename == str(target)):
            raise WriteFailed(target, exc, had_previous) from exc
        raise


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike) -> Iterator[Path]:
    """A fresh folder beside target (target.partial) to fill. When the block ends without an error it
    replaces target (a previous folder there is removed); otherwise it is removed and target is left as it was."""
    final = Path(target)
    work = final.with_name(final.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(final)
    work.rename(final)
