"""Training recipes shipped in the package (training/configs/*.yaml): `neurender train --config NAME`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neurender.common.errors import UserError

RECIPES_DIR = Path(__file__).resolve().parent / "configs"


class RecipeError(UserError, FileNotFoundError):
    """--config names neither a file nor a shipped recipe."""


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    summary: str  # the file's first comment line
    commands: tuple[str, ...]  # the neurender commands its comments show, in order (data, train, export, ...)


def read_recipe(path: Path) -> Recipe:
    comments = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        comments.append(line.lstrip("#").strip())
    commands = tuple(c for c in comments if c.startswith(("neurender ", "torchrun ")))
    summary = next((c for c in comments if c and c not in commands), "")
    return Recipe(path.stem, path, summary, commands)


def recipes() -> list[Recipe]:
    return [read_recipe(p) for p in sorted(RECIPES_DIR.glob("*.yaml"))]


def recipe_path(config: str | Path) -> Path:
    """A config file path, or the file of the shipped recipe named `config`."""
    path = Path(config)
    if path.is_file():
        return path
    shipped = RECIPES_DIR / f"{config}.yaml"
    if shipped.is_file() and path.parent == Path("."):
        return shipped
    names = ", ".join(r.name for r in recipes())
    raise RecipeError(f"--config {config}: no such file, and not a shipped recipe ({names}; see `neurender recipes`)")


def data_command(config: str | Path) -> str | None:
    """The `neurender dataset ...` command a shipped recipe's comments give for making its data, if any."""
    try:
        recipe = read_recipe(recipe_path(config))
    except (RecipeError, OSError):
        return None
    return next((c for c in recipe.commands if c.startswith("neurender dataset ")), None)
