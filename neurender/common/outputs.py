"""The one rule for every command that writes a folder: old and new outputs are never mixed, nothing is replaced
without being asked.

A command names what it writes in its output folder (files and sub-folders). If the folder already holds any of
them, the command refuses unless the user passed --overwrite, which removes exactly those names first; files the
command does not write are never touched.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from neurender.common.errors import UserError


class OutputExistsError(UserError):
    """The output folder holds an earlier run's files and --overwrite was not given."""


def prepare_output(out: Path, owned: Iterable[str], overwrite: bool) -> None:
    """Make `out` ready for a command writing the names in `owned` (see the module docstring); the command creates
    the folder itself when it writes, so a run refused later leaves nothing behind."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    present = sorted(name for name in owned if (out / name).exists())
    if present and not overwrite:
        raise OutputExistsError(
            f"--out {out} already holds {', '.join(present)} from an earlier run; choose a new "
            "--out folder, or pass --overwrite to replace them"
        )
    for name in present:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def prepare_output_file(path: Path, overwrite: bool) -> None:
    """The same rule for a command writing one file: an existing one is replaced only with --overwrite (by the
    write itself, so a run that fails first leaves it as it was)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"--out {path} exists from an earlier run; choose a new --out, or pass --overwrite to replace it"
        )
