"""The `neurender` command: one subcommand per job.

Each job's subcommands live in a module of neurender.commands (or the demo and dance modules) with
`register(subparsers) -> None`; heavy imports (torch, pyrender, grpc) happen inside the handlers so
`neurender --help` stays fast and a serving install without torch still starts.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from neurender.common.errors import UserError

# One line per module that contributes subcommands.
COMMAND_MODULES: tuple[str, ...] = (
    "neurender.demo",
    "neurender.dance",
    "neurender.commands.serve",
    "neurender.commands.render_video",
    "neurender.commands.retarget",
    "neurender.commands.train",
    "neurender.commands.dataset",
    "neurender.commands.render_scene",
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


if __name__ == "__main__":
    sys.exit(main())
