"""Directly adjust selected facial components (tint, brightness, opacity, hide, move) and save the avatar."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

import torch

from app.cli import CommandError
from app.commands import add_head_arguments, component_names, load_avatar_arg

if TYPE_CHECKING:
    from engine.edit.adjust import AdjustParams

_GRADES = ("brightness", "contrast", "saturation", "temperature")


def _triple(text: str, what: str) -> tuple[float, float, float]:
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise CommandError(f"{what} must be three numbers like 0.1,0.3,0.9, got {text!r}") from None
    if len(values) != 3:
        raise CommandError(f"{what} must be three numbers like 0.1,0.3,0.9, got {text!r}")
    return values  # type: ignore[return-value]


def parse_colour(text: str) -> tuple[float, float, float]:
    """A colour from 'R,G,B' in [0, 1], '#rrggbb', or a colour name ('navy blue') -> sRGB in [0, 1]."""
    from engine.prompting.colours import colour_from_text, hex_to_rgb

    if "," in text:
        rgb = _triple(text, "--tint")
        if not all(0.0 <= c <= 1.0 for c in rgb):
            raise CommandError(f"--tint values must be in [0, 1], got {text!r}")
        return rgb
    named = hex_to_rgb(text) or colour_from_text(text)
    if named is None:
        raise CommandError(f"--tint: {text!r} is neither R,G,B, #rrggbb nor a colour name")
    return (named[0] / 255.0, named[1] / 255.0, named[2] / 255.0)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("avatar", metavar="AVATAR", help="avatar folder, point_cloud.ply, or 'demo'")
    add_head_arguments(p)
    p.add_argument("--components", nargs="+", required=True, metavar="NAME",
                   help="components or groups to change, e.g. lips, hair, brows, ears (comma or space separated)")
    p.add_argument("--tint", default=None, metavar="COLOUR", help="target colour: R,G,B in [0,1], #rrggbb or a name")
    p.add_argument("--strength", type=float, default=None, help="how far toward --tint, 0..1 (default 0.5)")
    for name in _GRADES:
        p.add_argument(f"--{name}", type=float, default=0.0, help=f"{name} change in [-1, 1]")
    p.add_argument("--black-point", type=float, default=0.0, help="input level that becomes black, 0..1")
    p.add_argument("--white-point", type=float, default=1.0, help="input level that becomes white, 0..1")
    p.add_argument("--opacity", type=float, default=1.0, help="opacity multiplier, 0..4")
    p.add_argument("--hide", action="store_true", help="remove the selected components")
    p.add_argument("--offset", default="0,0,0", metavar="X,Y,Z", help="move by X,Y,Z metres (head space, first frame)")
    p.add_argument("--rotate", default="0,0,0", metavar="X,Y,Z", help="rotate by degrees about x, y, z (centroid)")
    p.add_argument("--scale", type=float, default=1.0, help="uniform scale about the selection's centroid")
    p.add_argument("--out", required=True, help="folder to write the adjusted avatar to")


def build_params(args: argparse.Namespace) -> AdjustParams:
    """AdjustParams from parsed arguments (CommandError on bad values)."""
    from engine.edit.adjust import AdjustParams

    tint = parse_colour(args.tint) if args.tint else (1.0, 1.0, 1.0)
    strength = args.strength if args.strength is not None else (0.5 if args.tint else 0.0)
    if args.strength is not None and not args.tint:
        raise CommandError("--strength needs --tint")
    try:
        return AdjustParams(
            tint=tint, strength=strength, black_point=args.black_point, white_point=args.white_point,
            opacity=args.opacity, hide=args.hide, offset=_triple(args.offset, "--offset"),
            rotation=_triple(args.rotate, "--rotate"), scale=args.scale,
            **{name: getattr(args, name) for name in _GRADES},
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from engine.avatar.avatar import Avatar
    from engine.avatar.files import save_avatar
    from engine.edit.adjust import adjust_layer, reference_frames, selection_from_components
    from engine.edit.layers import compose

    params = build_params(args)
    names = component_names(args.components)
    start = time.perf_counter()
    avatar = load_avatar_arg(args)
    try:
        selection = selection_from_components(avatar.gaussians, names)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not bool(selection.any()):
        raise CommandError(f"avatar {avatar.name!r} has no Gaussians labelled {', '.join(names)}")
    with torch.no_grad():
        frames = reference_frames(avatar) if params.changes_geometry else None
        layer = adjust_layer(avatar.gaussians, selection, params, frames, f"{params.describe()} {' '.join(names)}",
                             {"components": names})
        adjusted = compose(avatar.gaussians, [layer])
    out = save_avatar(Avatar(avatar.head, adjusted, avatar.params, avatar.name, dataset=avatar.dataset), args.out)
    print(f"wrote {out} ({layer.name}: {int(selection.sum())} Gaussians selected, {layer.indices.numel()} changed, "
          f"{layer.hidden.numel()} hidden; {1000 * (time.perf_counter() - start):.0f} ms)")
    return 0
