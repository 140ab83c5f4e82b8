"""argparse helpers shared by every command: one spelling and one meaning for each shared option."""

from __future__ import annotations

import argparse
from pathlib import Path

from neurender.common.errors import UserError


def parse_size(text: str, min_side: int = 1) -> tuple[int, int]:
    """argparse type for frame sizes: "HEIGHTxWIDTH" (or one number for a square) -> (height, width), each side
    at least `min_side` (`type=lambda text: parse_size(text, 8)` for a larger minimum)."""
    parts = text.lower().split("x")
    try:
        height, width = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        height = width = None
    if height is None or width is None or height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected HEIGHTxWIDTH, e.g. 128x256")
    if height < min_side or width < min_side:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected at least {min_side}x{min_side}")
    return height, width


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--server, --token-file, --root-cert: where a client command renders. Without --server the command starts
    a private server on 127.0.0.1 with the model bundle --model names, and stops it at the end."""
    parser.add_argument(
        "--server",
        metavar="HOST:PORT",
        help="render through this running server (default: start a private local one with --model)",
    )
    parser.add_argument(
        "--token-file", type=Path, metavar="FILE", help="file with the server's bearer token (with --server)"
    )
    parser.add_argument("--root-cert", type=Path, metavar="PEM", help="CA certificate: connect to --server with TLS")


def add_model_option(parser: argparse.ArgumentParser, default: str | None, models_dir: Path) -> None:
    """--model: a bundle folder or the name of a bundled model; with --server, a name the server serves."""
    parser.add_argument(
        "--model",
        default=default,
        help=f"model bundle folder, or a name: one served by --server, else a bundle in {models_dir} "
        f"(default {default or 'the server’s only model'})",
    )


def add_output_options(parser: argparse.ArgumentParser, what: str, default: Path | None = None) -> None:
    """--out (required unless a default is given) and --overwrite: see neurender.common.outputs."""
    parser.add_argument(
        "--out",
        type=Path,
        required=default is None,
        default=default,
        help=f"{what}" + (f" (default {default})" if default is not None else ""),
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what an earlier run of this command wrote in --out (never other files)",
    )


def add_frames_option(parser: argparse.ArgumentParser, default: int, help_text: str) -> None:
    parser.add_argument("--frames", type=int, default=default, help=f"{help_text} (default {default})")


def read_credentials(args: argparse.Namespace) -> tuple[str | None, bytes | None]:
    """The bearer token and the TLS root certificates add_server_options asked for."""
    try:
        token = args.token_file.read_text().strip() if args.token_file else None
        roots = args.root_cert.read_bytes() if args.root_cert else None
    except OSError as err:
        raise UserError(f"{err.filename}: {err.strerror}") from None
    if args.token_file and not token:
        raise UserError(f"--token-file {args.token_file}: the file is empty; expected the server's bearer token")
    return token, roots
