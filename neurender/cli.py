"""The `neurender` command: one subcommand per job.

Each package contributes its subcommands through a `commands.py` module with
`register(subparsers) -> None`; heavy imports (torch, pyrender, grpc) happen inside the handlers so
`neurender --help` stays fast and a serving install without torch still starts.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# One line per package that contributes subcommands.
COMMAND_MODULES: tuple[str, ...] = (
    "neurender.demo",
    "neurender.dance",
    "neurender.server.commands",
    "neurender.engine_plugin.client_commands",
    "neurender.retarget.commands",
    "neurender.training.train_commands",
    "neurender.training.dataset_commands",
    "neurender.engine_plugin.scene_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurender",
        description="Neural rendering for game and VFX engines: label frames in, temporally coherent video out.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except UserError as err:
        print(f"neurender {args.command}: {err}", file=sys.stderr)
        return 2


class UserError(Exception):
    """A problem with what the user asked for (bad file, bad option); printed without a traceback."""


def parse_size(text: str) -> tuple[int, int]:
    """argparse type for frame sizes: "HEIGHTxWIDTH" (or one number for a square) -> (height, width)."""
    parts = text.lower().split("x")
    try:
        height, width = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        height = width = None
    if height is None or height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected HEIGHTxWIDTH, e.g. 128x256")
    return height, width


if __name__ == "__main__":
    # `python -m neurender.cli`: run the imported module's main, whose UserError is the one commands raise.
    from neurender.cli import main as package_main

    sys.exit(package_main())
