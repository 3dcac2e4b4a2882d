"""`dynamicavatars` command line: one subcommand per module in app/commands/.

Each module app/commands/<name>.py defines `add_arguments(parser)` and `run(args) -> int`, and a
one-line module docstring that becomes the subcommand's help. Arguments are parsed here, once.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: tuple[str, ...] = ("render", "synth", "ingest", "train", "from-video", "fit-poses", "refine", "edit", "adjust",
                              "masks", "export", "models")
"""Subcommands, in the order `--help` lists them."""

from app.errors import CommandError

__all__ = ["COMMANDS", "CommandError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dynamicavatars", description="DynamicAvatars command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"app.commands.{name.replace('-', '_')}")
        doc = (module.__doc__ or name).strip().splitlines()[0]
        p = sub.add_parser(name, help=doc, description=doc)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (CommandError, OSError, ValueError) as exc:  # OSError: files that cannot be read or written
        print(f"dynamicavatars {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dynamicavatars {args.command}: cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
