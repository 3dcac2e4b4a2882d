"""Train an animatable Gaussian avatar from a dataset of frames with FLAME tracking."""

from __future__ import annotations

import argparse

from app.commands import add_head_arguments, head_arg, report_head
from app.errors import CommandError
from app.progress import progress_bar
from engine.train.config import TrainConfig
from engine.train.run import TrainReport, train


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("dataset", help="dataset folder (VHAP / GaussianAvatars layout, or `dynamicavatars synth` output)")
    p.add_argument("--out", required=True, help="output folder (avatar/, checkpoint.pt, metrics.json)")
    p.add_argument("--iters", type=int, default=d.iters, help="optimisation steps")
    p.add_argument("--resolution", type=int, default=d.resolution, help="longer image side used for training")
    add_head_arguments(p, device=True)
    p.add_argument("--finetune-flame", action="store_true", help="also refine per-frame FLAME parameters")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--label-weight", type=float, default=d.lambda_label,
                   help="weight of the label loss that draws part outlines where the dataset's label maps put them "
                        "(0 = off; needs label maps)")
    p.add_argument("--parse-labels", action=argparse.BooleanOptionalAction, default=None,
                   help="make label maps for frames that have none with the face parser chosen in the model "
                        "settings (default: when the label loss is on and a parser is set)")
    p.add_argument("--seed", type=int, default=d.seed)


def run(args: argparse.Namespace) -> int:
    if not args.label_weight >= 0:
        raise CommandError(f"--label-weight must be 0 or more, got {args.label_weight:g}")
    config = TrainConfig(iters=args.iters, resolution=args.resolution, device=args.device,
                         finetune_flame=args.finetune_flame, seed=args.seed,
                         lambda_label=args.label_weight)
    _parse_labels(args)
    with progress_bar("train") as progress:
        def report(r: TrainReport) -> None:
            message = f"it {r.step.iteration} loss {r.step.loss:.4f} psnr {r.step.psnr:.1f} n={r.step.gaussians}"
            if r.evaluation:
                message += " | " + " ".join(f"{s} {v.get('psnr', 0):.2f}dB" for s, v in r.evaluation.items() if v)
            progress(r.step.iteration / r.total, message)

        try:
            result = train(args.dataset, args.out, config, head=head_arg(args), resume=args.resume, report=report)
        except KeyboardInterrupt:
            print("interrupted; run again with --resume to continue from the last checkpoint")
            return 130
    for split, m in result.metrics.items():
        if m:
            print(f"{split}: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f} over {int(m['frames'])} frames")
    print(f"wrote {result.out / 'avatar'} ({result.iterations} iterations, {result.iters_per_second:.2f} it/s)")
    report_head(result.head)
    return 0


def _parse_labels(args: argparse.Namespace) -> None:
    """Label maps by the chosen face parser for the frames of the dataset that have none (see --parse-labels)."""
    if args.parse_labels is False or (args.parse_labels is None and not args.label_weight):
        return
    from app.model_choices import current_settings, label_maps_if_needed
    from engine.data.vhap_format import DatasetError

    try:
        with progress_bar("labels") as progress:
            note = label_maps_if_needed(args.dataset, current_settings(), progress, required=bool(args.parse_labels))
    except (DatasetError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if note:
        print(f"labels: {note}")
