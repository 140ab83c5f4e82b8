"""The house's rooms and the one direction their imports may point, checked from the code itself.

Every import in the package counts, including the ones inside functions (they are how heavy rooms stay
optional, not a way around the rules). A room may import itself and the rooms listed for it, nothing else.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Folder of the repository -> its import name (pyproject's package-dir).
FOLDERS = {
    "neurender": "neurender",
    "proto": "neurender.proto",
    "server": "neurender.server",
    "training": "neurender.training",
    "retarget": "neurender.retarget",
    "engine_plugin": "neurender.engine_plugin",
    "bench": "neurender.bench",
}

# Room -> the module prefixes that make it up (longest prefix wins).
ROOMS: dict[str, tuple[str, ...]] = {
    "common": ("neurender.common",),
    "proto": ("neurender.proto",),
    "retarget": ("neurender.retarget",),
    "sdk": ("neurender.engine_plugin.sdk", "neurender.engine_plugin.sdk_wheel"),
    "gbuffer": ("neurender.engine_plugin.gbuffer",),
    "blender": ("neurender.engine_plugin.blender", "neurender.engine_plugin.blender_extension"),
    "gym": ("neurender.engine_plugin.gym",),
    "model": ("neurender.training.model",),
    "server": ("neurender.server",),
    "training": ("neurender.training",),
    "app": ("neurender.cli", "neurender.commands", "neurender.demo", "neurender.dance", "neurender"),
    "bench": ("neurender.bench",),
}

# Room -> the rooms it may import (besides itself). Floor first, top last.
ALLOWED: dict[str, set[str]] = {
    "common": set(),
    "proto": {"common"},
    "retarget": {"common", "proto"},
    "sdk": {"common", "proto"},
    "gbuffer": {"common", "proto", "sdk"},
    "blender": {"common", "proto", "sdk"},
    "gym": {"common", "proto", "sdk", "gbuffer"},
    "model": {"common", "proto"},
    "server": {"common", "proto", "retarget", "model"},
    "training": {"common", "proto", "retarget", "sdk", "gbuffer", "model", "server"},
    "app": {"common", "proto", "retarget", "sdk", "gbuffer", "blender", "gym", "model", "server", "training"},
    "bench": {"common", "proto", "retarget", "sdk", "gbuffer", "gym", "model", "server", "training", "app"},
}

# What the server may take from retarget: the one pose-drawing function and nothing else.
SERVER_FROM_RETARGET = {"neurender.retarget.draw"}


def room_of(module: str) -> str:
    best = max(
        (
            (prefix, room)
            for room, prefixes in ROOMS.items()
            for prefix in prefixes
            if module == prefix or module.startswith(prefix + ".")
        ),
        key=lambda pr: len(pr[0]),
    )
    return best[1]


def package_modules() -> dict[str, Path]:
    modules = {}
    for folder, name in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            if "_pb2" in path.name:
                continue
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((name, *parts))] = path
    return modules


def imports_of(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "neurender" or name.startswith("neurender.")}


def import_matrix() -> dict[tuple[str, str], list[str]]:
    """(importing room, imported room) -> the modules that make that edge, from every file of the package."""
    modules = package_modules()
    edges: dict[tuple[str, str], list[str]] = {}
    for module, path in modules.items():
        for target in imports_of(module, path):
            if target not in modules:  # `from pkg import name`: the name is not a module
                continue
            edges.setdefault((room_of(module), room_of(target)), []).append(f"{module} -> {target}")
    return edges


def test_every_file_is_in_a_room() -> None:
    assert package_modules(), "no modules found: the test looks in the wrong place"
    for module in package_modules():
        assert room_of(module) in ALLOWED


def test_imports_point_down_only() -> None:
    wrong = [
        f"{edge} ({importer} may import {sorted(ALLOWED[importer]) or 'nothing'})"
        for (importer, imported), found in import_matrix().items()
        if importer != imported and imported not in ALLOWED[importer]
        for edge in found
    ]
    assert not wrong, "imports against the house's direction:\n" + "\n".join(wrong)


def test_the_server_takes_only_the_pose_drawing_from_retarget() -> None:
    found = import_matrix().get(("server", "retarget"), [])
    assert all(edge.split(" -> ")[1] in SERVER_FROM_RETARGET for edge in found), found


def test_the_allowed_rooms_have_no_cycle() -> None:
    seen: dict[str, int] = {}

    def visit(room: str, stack: tuple[str, ...]) -> None:
        assert room not in stack, f"cycle: {' -> '.join((*stack, room))}"
        if seen.get(room):
            return
        for below in ALLOWED[room]:
            visit(below, (*stack, room))
        seen[room] = 1

    for room in ALLOWED:
        visit(room, ())


@pytest.mark.parametrize("module", ["neurender.common.errors", "neurender.proto.bundle"])
def test_the_floor_imports_nothing_of_ours_above_it(module: str) -> None:
    modules = package_modules()
    assert {room_of(t) for t in imports_of(module, modules[module]) if t in modules} <= {"common", "proto"}


if __name__ == "__main__":  # print the measured import matrix (rows import columns)
    matrix = import_matrix()
    rooms = list(ALLOWED)
    print("| imports ↓→ | " + " | ".join(rooms) + " |")
    print("|---" * (len(rooms) + 1) + "|")
    for row in rooms:
        print(
            f"| {row} | "
            + " | ".join(
                str(len(matrix.get((row, col), [])))
                if row != col and matrix.get((row, col))
                else ("·" if row != col else "=")
                for col in rooms
            )
            + " |"
        )
