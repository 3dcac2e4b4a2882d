"""Subcommands of `dynamicavatars` (see app/cli.py), and the argument handling they share."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.avatar.avatar import Avatar


def load_avatar_arg(args: argparse.Namespace) -> Avatar:
    """The avatar named by args.avatar (a folder, a point_cloud.ply, or 'demo'), with args.flame's head."""
    from engine.avatar.demo import load_demo_avatar
    from engine.avatar.files import load_avatar

    return load_demo_avatar() if args.avatar == "demo" else load_avatar(args.avatar, head=args.flame)


def component_names(items: list[str] | None) -> list[str]:
    """Component or group names from --components values, each comma or space separated."""
    return [n for item in items or [] for n in item.split(",") if n]
