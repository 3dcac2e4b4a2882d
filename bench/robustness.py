"""Robustness benchmark: hostile inputs to every loader, a long GUI session of random user actions, and a
kill-and-relaunch.

- Loaders (tests/fuzz_cases.py): for each file loader, seeded random mutations of a small valid seed file
  plus raw garbage (and, for the pickle loaders, every hostile payload of tests/pickle_payloads.py at
  protocols 0, 2, 4 and 5); for the HTTP refiner and image editor, hostile answers from a stand-in server
  on 127.0.0.1 (tests/fuzz_http.py). An input "escapes" when anything but the project's own error naming
  the file (or URL) comes out; the time of every rejection is taken.
- Soak (tests/gui_soak.py): the main window on a 4,000-Gaussian avatar, 2,000 random actions (--quick: 30)
  with seed 0: slider drags, orbit/pan/zoom, paint/erase/lasso, undo/redo, adjust, timeline, component
  ticks, and every --heavy-every actions a save, reopen, ply export, cancelled video export, procedural
  edit or cancelled edit. Memory growth is resident memory at the end minus after the warm-up.
- Crash (tests/crash_session.py, skipped by --quick unless --crash): a session killed with SIGKILL during
  an edit, the app started again; recovered = the autosaved work was offered and came back identical.

Ends with one JSON line:
  loaders {name: {tried, escaped, slowest_rejection_ms}}, inputs_tried, escaped_total, slowest_rejection_ms,
  slowest_loader, pickle_payloads_ran, soak_actions, soak_exceptions, soak_error_dialogs,
  soak_memory_growth_mb, soak_threads_leaked, soak_seconds, crash_recovered, crash_seconds.
Timings are wall clock on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# isort: off
import engine  # noqa: F401  (before torch: sets OMP_WAIT_POLICY=PASSIVE)
import torch
# isort: on


def fuzz_loaders(mutations: int, garbage: int, answers: int, seed: int) -> dict[str, dict[str, float]]:
    """{loader: {tried, escaped, slowest_rejection_ms}} over every file loader and both HTTP clients."""
    from tests import fuzz_http as fh
    from tests.fuzz_cases import CASES, seed_folder
    from tests.pickle_payloads import PAYLOADS, payload_pickle

    rnd = random.Random(seed)
    folder = seed_folder()
    results: dict[str, dict[str, float]] = {}

    def tally(name: str, outcomes: list) -> None:
        rejected = [o.seconds for o in outcomes if o.kind == "refused"]
        escaped = [o.detail for o in outcomes if o.kind == "escaped"]
        results[name] = {"tried": len(outcomes), "escaped": len(escaped),
                         "slowest_rejection_ms": round(1000 * max(rejected, default=0.0), 1)}
        for detail in escaped[:3]:
            print(f"  {name} escaped: {detail}", flush=True)

    for case in CASES:
        seed_bytes = case.seed(folder)
        inputs = [case.mutate(seed_bytes, rnd) for _ in range(mutations)]
        inputs += [rnd.randbytes(rnd.randint(0, 4096)) for _ in range(garbage)]
        if case.target.endswith(".pkl"):
            inputs += [payload_pickle(p, proto) for p in PAYLOADS for proto in (0, 2, 4, 5)]
        tally(case.name, [case.run(folder, data) for data in inputs])
    with fh.StandIn() as server:
        for kind, call in (("refiner_response", fh.refiner_response), ("editor_response", fh.editor_response)):
            short = kind.split("_")[0]
            tally(kind, [call(server, [fh.hostile_reply(rnd, server, short) for _ in range(3)]) for _ in range(answers)])
    return results


def soak(actions: int, heavy_every: int, warmup: int, seed: int, threads: int) -> dict:
    """tests/gui_soak.py in its own process (the bench imports no Qt; a fatal crash there is a finding)."""
    cmd = [sys.executable, "-m", "tests.gui_soak", "--actions", str(actions), "--heavy-every", str(heavy_every),
           "--warmup", str(warmup), "--seed", str(seed), "--threads", str(threads)]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in run.stdout.splitlines() if line.startswith("SOAK ")]
    if not lines:
        print(f"  soak process ended with {run.returncode} and no report:\n{run.stderr[-3000:]}", flush=True)
        return {"actions": 0, "exceptions": [f"the soak process died ({run.returncode})"], "dialogs": [],
                "memory_growth_mb": float("nan"), "threads_start": 0, "threads_end": 0, "seconds": 0.0}
    report = json.loads(lines[-1][5:])
    for text in report["exceptions"][:3] + report["dialogs"][:3] + report["render_failures"][:3]:
        print(f"  soak: {text}", flush=True)
    print(f"  soak actions by kind: {report['counts']}; effects: {report['effects']}", flush=True)
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer inputs, a 30-action soak, no crash run (under a minute)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--actions", type=int, default=None, help="soak actions (default 2000; --quick 30)")
    p.add_argument("--heavy-every", type=int, default=None, help="a slow action every N (default 150; --quick 30)")
    p.add_argument("--crash", action="store_true", help="run the kill-and-relaunch even with --quick")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from tests.pickle_payloads import SENTINEL

    SENTINEL.unlink(missing_ok=True)
    t0 = time.perf_counter()
    loaders = fuzz_loaders(*((10, 3, 3) if args.quick else (200, 50, 40)), seed=args.seed)
    ran = int(SENTINEL.exists())
    print(f"loaders fuzzed in {time.perf_counter() - t0:.1f} s", flush=True)
    actions = args.actions or (30 if args.quick else 2000)
    heavy = args.heavy_every or (30 if args.quick else 150)
    report = soak(actions, heavy, warmup=0 if args.quick else 40, seed=args.seed, threads=args.threads)
    crash = None
    if args.crash or not args.quick:
        from tests.crash_session import kill_and_relaunch

        crash = kill_and_relaunch(Path(tempfile.mkdtemp(prefix="robustness-crash-")))
        print(f"  crash: editing when killed {crash.editing}, recovery copies {crash.recovery_files}, "
              f"asked {len(crash.asked)}, same session {crash.after == crash.before}", flush=True)
    slowest = max(loaders, key=lambda name: loaders[name]["slowest_rejection_ms"])
    print(json.dumps({
        "loaders": loaders,
        "inputs_tried": sum(r["tried"] for r in loaders.values()),
        "escaped_total": sum(r["escaped"] for r in loaders.values()),
        "slowest_rejection_ms": loaders[slowest]["slowest_rejection_ms"],
        "slowest_loader": slowest,
        "pickle_payloads_ran": ran,
        "soak_actions": report["actions"],
        "soak_exceptions": len(report["exceptions"]),
        "soak_error_dialogs": len(report["dialogs"]),
        "soak_memory_growth_mb": round(report["memory_growth_mb"], 1),
        "soak_threads_leaked": max(0, report["threads_end"] - report["threads_start"]),
        "soak_seconds": round(report["seconds"], 1),
        "crash_recovered": None if crash is None else crash.recovered,
        "crash_seconds": None if crash is None else round(crash.seconds, 1),
    }))


if __name__ == "__main__":
    main()
