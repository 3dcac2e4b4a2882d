"""Subcommands of `dynamicavatars` (see app/cli.py), and the argument handling they share."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.avatar.avatar import Avatar
    from engine.head.model import HeadModel


def add_head_arguments(p: argparse.ArgumentParser, device: bool = False) -> None:
    """--flame and --flame-masks (the user's FLAME model and its masks file), and --device when asked."""
    p.add_argument("--flame", default=None,
                   help="your FLAME model file or folder (generic_model.pkl, flame2023.pkl, FLAME_NEUTRAL.*): needed "
                        "for GaussianAvatars avatars and VHAP datasets (default: the one the avatar names, "
                        "DYNAMICAVATARS_FLAME, or the demo head)")
    p.add_argument("--flame-masks", default=None, metavar="FILE",
                   help="FLAME_masks.pkl giving component labels (default: the one beside the FLAME model)")
    if device:
        p.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda (gsplat; needs a GPU)")


def head_arg(args: argparse.Namespace) -> HeadModel | str | None:
    """The head --flame / --flame-masks name: a path (or None) for the loaders, or a loaded head with masks."""
    check_head_paths(args)
    masks = getattr(args, "flame_masks", None)
    if masks is None:
        return args.flame
    from engine.head.model import load_head

    return load_head(args.flame or "flame", masks=masks)


def check_head_paths(args: argparse.Namespace) -> None:
    """A --flame or --flame-masks path that does not exist is an error naming it as typed (also where the
    avatar would not use it, so a typo is never silently ignored)."""
    from pathlib import Path

    from app.errors import CommandError

    for flag, value in (("--flame", getattr(args, "flame", None)), ("--flame-masks", getattr(args, "flame_masks", None))):
        if value and value != "flame" and not Path(value).exists():
            raise CommandError(f"{value}: no such file or folder (given with {flag})")


def report_head(head: HeadModel) -> None:
    """Say on stderr where a FLAME head's components and named expressions came from (or what is missing)."""
    if head.is_flame:
        teeth = ", with GaussianAvatars' teeth" if head.has_teeth else ""
        print(f"FLAME head {head.name} ({head.n_verts} vertices{teeth}): components from {head.notes.components}; "
              f"{head.notes.expressions}", file=sys.stderr)


def load_avatar_arg(args: argparse.Namespace) -> Avatar:
    """The avatar named by args.avatar (a folder, a point_cloud.ply, a GaussianAvatars output folder or
    'demo'), with the head --flame / --flame-masks name."""
    from engine.avatar.demo import load_demo_avatar
    from engine.avatar.files import load_avatar

    if args.avatar == "demo":
        check_head_paths(args)
        return load_demo_avatar()
    avatar = load_avatar(args.avatar, head=head_arg(args))
    report_head(avatar.head)
    return avatar


def component_names(items: list[str] | None) -> list[str]:
    """Component or group names from --components values, each comma or space separated."""
    return [n for item in items or [] for n in item.split(",") if n]
