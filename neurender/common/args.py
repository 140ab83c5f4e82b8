"""argparse helpers shared by every command."""

from __future__ import annotations

import argparse


def parse_size(text: str) -> tuple[int, int]:
    """argparse type for frame sizes: "HEIGHTxWIDTH" (or one number for a square) -> (height, width)."""
    parts = text.lower().split("x")
    try:
        height, width = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        height = width = None
    if height is None or width is None or height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected HEIGHTxWIDTH, e.g. 128x256")
    return height, width
