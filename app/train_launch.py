"""Local multi-process training: the torchrun command `dynamicavatars train --nproc N` and the Train panel
launch, the JSON progress lines each process prints (`train --progress jsonl`), and their merge.

No Qt here: the GUI's worker drives `LocalRun` and shows `RankBoard`'s merge.

    run = LocalRun(torchrun_command(2, ["data/synth", "--out", "runs/a", "--progress", "jsonl"]), log)
    for line in run.lines(should_stop):   # parsed JSON lines of every rank, as they come
        board.add(line)
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


def torchrun_command(nproc: int, train_args: list[str]) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc_per_node N -m app.cli train ARGS`: N processes
    on this machine, rendezvous on a free local port."""
    assert nproc >= 1, f"nproc must be 1 or more, got {nproc}"
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "app.cli", "train", *train_args]


def torchrun_env() -> dict[str, str]:
    """The environment for the processes: this one's, with this code's folder first on PYTHONPATH (so they run
    the same code as the launcher) and one OpenBLAS thread unless set."""
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def parse_line(text: str) -> dict[str, Any] | None:
    """A progress line's fields, None for any other output (a warning, torchrun's own messages)."""
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        line = json.loads(text)
    except json.JSONDecodeError:
        return None
    return line if isinstance(line, dict) and line.get("event") in ("step", "result") else None


@dataclass(frozen=True)
class RankState:
    """The latest step line of one rank."""

    rank: int
    iteration: int
    frames: int  # frames it rendered in that step
    compute_s: float  # its seconds rendering and backpropagating
    sync_s: float  # its seconds in the all_reduce (waiting for the others)
    seconds: float  # since its run started
    done: bool  # it printed its result line


class RankBoard:
    """Merges the progress lines of a run's processes: the run's curve comes from rank 0 (every rank
    holds the same loss), and each rank's speed and share of the work are kept beside it."""

    def __init__(self) -> None:
        self.ranks: dict[int, RankState] = {}
        self.world = 0
        self.result: dict[str, Any] | None = None  # rank 0's result line
        self.pids: dict[int, int] = {}

    def add(self, line: dict[str, Any]) -> None:
        rank = int(line.get("rank", 0))
        self.world = max(self.world, int(line.get("world", 1)))
        if "pid" in line:
            self.pids[rank] = int(line["pid"])
        old = self.ranks.get(rank)
        if line["event"] == "result":
            if rank == 0:
                self.result = line
            if old is not None:
                self.ranks[rank] = RankState(old.rank, old.iteration, old.frames, old.compute_s, old.sync_s,
                                             old.seconds, True)
            return
        self.ranks[rank] = RankState(rank, int(line["iteration"]), int(line.get("rank_frames", 0)),
                                     float(line.get("compute_s", 0.0)), float(line.get("sync_s", 0.0)),
                                     float(line.get("seconds", 0.0)), False)

    @property
    def iteration(self) -> int:
        """Iterations every rank has done (the slowest one's count)."""
        return min((r.iteration for r in self.ranks.values()), default=0)

    def summary(self) -> str:
        """One line per rank: iteration, speed, frames per step, compute and sync time of its last step."""
        rows = []
        for r in sorted(self.ranks.values(), key=lambda r: r.rank):
            rate = r.iteration / r.seconds if r.seconds > 0 else 0.0
            state = "done" if r.done else f"it {r.iteration}"
            rows.append(f"rank {r.rank}: {state} · {rate:.2f} it/s · {r.frames} frame(s) · "
                        f"compute {1000 * r.compute_s:.0f} ms · sync {1000 * r.sync_s:.0f} ms")
        missing = self.world - len(rows)
        if missing > 0:
            rows.append(f"{missing} process(es) starting…")
        return "\n".join(rows)


class LocalRun:
    """A training command running in its own session (so a stop reaches the whole process tree), its
    stdout read line by line on a thread and its stderr kept in a log file."""

    def __init__(self, command: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file: IO = open(log, "wb")  # noqa: SIM115  (closed in wait())
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log_file, env=env,
                                     start_new_session=True, text=True, bufsize=1)
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name="train-stdout", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for text in self.proc.stdout:
            self._queue.put(text)
        self._queue.put(None)

    def lines(self, should_stop: Callable[[], bool], on_stop: Callable[[], None], poll: float = 0.1
              ) -> Iterator[dict[str, Any]]:
        """Progress lines as they come until the output ends; calls on_stop() once when should_stop()
        turns True (the lines go on: the processes save and say how they ended)."""
        stopping = False
        while True:
            if not stopping and should_stop():
                stopping = True
                on_stop()
            try:
                text = self._queue.get(timeout=poll)
            except queue.Empty:
                continue
            if text is None:
                return
            line = parse_line(text)
            if line is not None:
                yield line

    def interrupt(self, pid: int | None = None) -> None:
        """SIGINT to one process (rank 0: every rank then stops at the same step and rank 0 saves), or to
        the launcher's whole session when no pid is known yet."""
        try:
            if pid is not None:
                os.kill(pid, signal.SIGINT)
            else:
                os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        code = self.proc.wait()
        self._log_file.close()
        return code

    def log_tail(self, lines: int = 12) -> str:
        """The last lines of the processes' stderr (for an error message)."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])
