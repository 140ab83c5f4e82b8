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
from neurender.server.logs import configure_logging

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

LOG_FORMATS = ("text", "json")
LOG_FORMAT_HELP = (
    "log lines as text (the default) or as JSON objects, one a line, for a log collector (serve: "
    "overrides its config's log_format)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurender",
        description="Neural rendering for game and VFX engines: label frames in, temporally coherent video out.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default=None, help=LOG_FORMAT_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for command in subparsers.choices.values():  # also after the command: `neurender serve --log-format json`
        command.add_argument("--log-format", choices=LOG_FORMATS, default=argparse.SUPPRESS, help=LOG_FORMAT_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_format or "text", logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except UserError as err:
        print(f"neurender {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
