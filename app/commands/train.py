"""Train an animatable Gaussian avatar from a dataset of frames with FLAME tracking."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from app.commands import add_head_arguments, head_arg, report_head
from app.errors import CommandError
from app.progress import progress_bar
from app.train_launch import torchrun_command, torchrun_env
from engine.io.images import save_png
from engine.train.config import TrainConfig, monocular, read_config
from engine.train.distributed import from_env
from engine.train.run import TrainReport, TrainResult, train

PREVIEW_NAME = "preview.png"  # rank 0's latest held-out preview in the output folder (--progress jsonl)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("dataset", help="dataset folder (VHAP / GaussianAvatars layout, or `dynamicavatars synth` output)")
    p.add_argument("--out", required=True, help="output folder (avatar/, checkpoint.pt, metrics.json)")
    p.add_argument("--config", metavar="FILE", help="training settings as JSON (TrainConfig's fields); the options "
                                                    "below override it")
    p.add_argument("--iters", type=int, default=None, help=f"optimisation steps (default {d.iters})")
    p.add_argument("--resolution", type=int, default=None,
                   help=f"longer image side used for training (default {d.resolution})")
    add_head_arguments(p, device=True)
    p.set_defaults(device=None)
    p.add_argument("--finetune-flame", action=argparse.BooleanOptionalAction, default=None,
                   help="also refine the training frames' FLAME parameters (default: the settings file's; else on with "
                        "--holdout-time, a tracked monocular clip, with its learning rates where the file sets none; "
                        "else off)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--label-weight", type=float, default=None,
                   help="weight of the label loss that draws part outlines where the dataset's label maps put them "
                        f"(0 = off; needs label maps; default {d.lambda_label:g})")
    p.add_argument("--parse-labels", action=argparse.BooleanOptionalAction, default=None,
                   help="make label maps for frames that have none with the face parser chosen in the model "
                        "settings (default: when the label loss is on and a parser is set; with --nproc, before the "
                        "processes start)")
    p.add_argument("--holdout-time", type=float, default=None, metavar="FRACTION",
                   help="split by time instead of the dataset's splits: hold out the later FRACTION of the "
                        "timesteps (for a monocular clip)")
    p.add_argument("--seed", type=int, default=None, help=f"random seed, the same on every process (default {d.seed})")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="training processes on this machine: launches torchrun (gloo on the CPU; with --device cuda "
                        "one GPU each). Several machines: run torchrun yourself (README)")
    p.add_argument("--frames-per-step", type=int, default=None, metavar="N",
                   help="frames each step descends the mean loss of, split over the processes (default: one per "
                        "process; a resumed run keeps its checkpoint's)")
    p.add_argument("--stop-at", type=int, default=None, metavar="ITER",
                   help="stop after iteration ITER with a checkpoint and the avatar; --resume continues the same "
                        "schedule (for time-limited cluster jobs)")
    p.add_argument("--progress", choices=("bar", "jsonl"), default="bar",
                   help="bar: a progress bar (rank 0); jsonl: one JSON line per step and process on stdout, and a "
                        "result line at the end (for the GUI and scripts)")


def config_from(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the arguments ask for: the defaults (with --holdout-time the monocular preset's), then what
    --config's file sets, then the options given."""
    preset = args.holdout_time is not None and args.finetune_flame is not False  # a tracked monocular clip
    base = monocular(TrainConfig()) if preset else TrainConfig()  # what the file leaves out
    config = read_config(args.config, base) if args.config else base
    given = {"iters": args.iters, "resolution": args.resolution, "device": args.device, "seed": args.seed,
             "finetune_flame": args.finetune_flame, "lambda_label": args.label_weight,
             "frames_per_step": args.frames_per_step}
    config = replace(config, **{k: v for k, v in given.items() if v is not None})
    for name, value in (("--iters", config.iters), ("--resolution", config.resolution)):
        if value < 1:
            raise CommandError(f"{name} must be 1 or more, got {value}")
    if not config.lambda_label >= 0:
        raise CommandError(f"--label-weight must be 0 or more, got {config.lambda_label:g}")
    if config.frames_per_step < 0:
        raise CommandError(f"--frames-per-step must be 1 or more, got {config.frames_per_step}")
    if args.holdout_time is not None and not 0 <= args.holdout_time < 1:
        raise CommandError(f"--holdout-time must be in [0, 1), got {args.holdout_time:g}")
    return config


def forwarded(args: argparse.Namespace) -> list[str]:
    """The arguments again, without --nproc: what each process launched by torchrun is given."""
    out = [args.dataset, "--out", args.out]
    for flag, value in (("--config", args.config), ("--iters", args.iters), ("--resolution", args.resolution),
                        ("--flame", args.flame), ("--flame-masks", args.flame_masks), ("--device", args.device),
                        ("--label-weight", args.label_weight), ("--seed", args.seed),
                        ("--frames-per-step", args.frames_per_step), ("--stop-at", args.stop_at),
                        ("--holdout-time", args.holdout_time)):
        if value is not None:
            out += [flag, str(value)]
    out += [flag for flag, on in (("--resume", args.resume),) if on]
    if args.finetune_flame is not None:
        out.append("--finetune-flame" if args.finetune_flame else "--no-finetune-flame")
    if args.parse_labels is not None:
        out.append("--parse-labels" if args.parse_labels else "--no-parse-labels")
    return out + ["--progress", args.progress]


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    if args.nproc < 1:
        raise CommandError(f"--nproc must be 1 or more, got {args.nproc}")
    if args.nproc > 1:
        if from_env() is not None:
            raise CommandError("--nproc launches torchrun, but this already runs under torchrun (WORLD_SIZE is set): "
                               "leave --nproc out")
        _parse_labels(args, config)  # once, before the processes start
        return _launch(args.nproc, forwarded(args) + ["--no-parse-labels"])
    _parse_labels(args, config)
    stop = threading.Event()
    with _stop_on_signals(stop), _reporter(args) as report:
        result = train(args.dataset, args.out, config, head=head_arg(args), resume=args.resume, report=report,
                       cancel=stop.is_set, stop_at=args.stop_at, time_holdout=args.holdout_time)
    if args.progress == "jsonl":
        _emit({"event": "result", "rank": result.ranks.rank, "world": result.ranks.world, "pid": os.getpid(),
               "iterations": result.iterations, "cancelled": result.cancelled, "metrics": result.metrics,
               "seconds": result.seconds, "iters_per_second": result.iters_per_second, "out": str(result.out)})
    elif result.ranks.main:
        _print_result(result)
    return 0


def _parse_labels(args: argparse.Namespace, config: TrainConfig) -> None:
    """Label maps by the chosen face parser for the frames of the dataset that have none (see --parse-labels).
    Not under torchrun with several processes: each would make them (--nproc makes them before launching)."""
    if args.parse_labels is False or (args.parse_labels is None and not config.lambda_label):
        return
    ranks = from_env()
    if ranks is not None and ranks.distributed:
        if args.parse_labels:
            raise CommandError("--parse-labels under torchrun would make the label maps in every process: make them "
                               "first (a one-process run with --parse-labels --iters 1, or --nproc, which makes them "
                               "before it launches the processes)")
        return
    from app.model_choices import current_settings, label_maps_if_needed
    from engine.data.vhap_format import DatasetError

    try:
        with progress_bar("labels") as progress:
            note = label_maps_if_needed(args.dataset, current_settings(), progress, required=bool(args.parse_labels))
    except (DatasetError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if note:
        print(f"labels: {note}", file=sys.stderr if args.progress == "jsonl" else sys.stdout)


def _launch(nproc: int, train_args: list[str]) -> int:
    """Run torchrun with `nproc` local processes; Ctrl-C reaches torchrun, which stops its processes (they
    finish the step and rank 0 saves a checkpoint)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.call(torchrun_command(nproc, train_args), env=torchrun_env())
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """The first SIGINT or SIGTERM asks training to stop after the current step (every process at the
    same step; a checkpoint and the avatar are saved); a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("stopping after this step; the checkpoint and avatar so far will be saved (again to quit now)",
              file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def _reporter(args: argparse.Namespace) -> Iterator[Callable[[TrainReport], None] | None]:
    """The report callback: a progress bar on rank 0, JSON lines on every rank, or nothing."""
    if args.progress == "jsonl":
        yield lambda r: _emit(_step_line(r, Path(args.out)))
        return
    ranks = from_env()
    if ranks is not None and ranks.rank != 0:
        yield None
        return
    with progress_bar("train") as progress:
        def report(r: TrainReport) -> None:
            message = f"it {r.step.iteration} loss {r.step.loss:.4f} psnr {r.step.psnr:.1f} n={r.step.gaussians}"
            if r.evaluation:
                message += " | " + " ".join(f"{s} {v.get('psnr', 0):.2f}dB" for s, v in r.evaluation.items() if v)
            progress(r.step.iteration / r.total, message)

        yield report


def _step_line(r: TrainReport, out: Path) -> dict:
    """One step of one process as a JSON-ready dict (rank 0 also writes its preview to OUT/preview.png)."""
    s = r.step
    line = {"event": "step", "rank": r.ranks.rank, "world": r.ranks.world, "pid": os.getpid(),
            "iteration": s.iteration, "total": r.total, "loss": s.loss, "psnr": s.psnr, "gaussians": s.gaussians,
            "frames": s.frames, "seconds": r.seconds}
    if s.rank is not None:
        line.update(rank_frames=s.rank.frames, rank_loss=s.rank.loss, compute_s=s.rank.compute_s,
                    sync_s=s.rank.sync_s)
    if r.evaluation:
        line["evaluation"] = r.evaluation
    if r.preview is not None:
        save_png(out / PREVIEW_NAME, r.preview)
        line["preview"] = str(out / PREVIEW_NAME)
    return line


def _emit(line: dict) -> None:
    """One JSON line on stdout in a single write (lines of several processes on one pipe stay whole)."""
    sys.stdout.write(json.dumps(line, allow_nan=True) + "\n")
    sys.stdout.flush()


def _print_result(result: TrainResult) -> None:
    if result.cancelled:
        print(f"stopped at iteration {result.iterations}; run again with --resume to continue")
    for split, m in result.metrics.items():
        if m:
            print(f"{split}: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f} over {int(m['frames'])} frames")
    print(f"wrote {result.out / 'avatar'} ({result.iterations} iterations, {result.iters_per_second:.2f} it/s)")
    report_head(result.head)
