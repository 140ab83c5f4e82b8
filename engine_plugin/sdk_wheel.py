"""Build neurender-sdk: the client SDK as a pure-Python wheel (py3-none-any) for engines and Blender.

    python -m neurender.engine_plugin.sdk_wheel --out dist/      # dist/neurender_sdk-0.1.0-py3-none-any.whl
    make sdk-wheel

The wheel holds what a program that only streams frames imports: the client SDK (engine_plugin/sdk/), the
protocol stubs and tensor codec (proto/), and the common floor (neurender/common/), under the same import
names as in the full distribution. Its dependencies are grpcio, protobuf and numpy (the pins of pyproject.toml);
the `media` extra adds OpenCV and PyAV for PNG/JPEG frames, label images and videos (neurender.common.media).
No weights, server, training, tests or bench, and no native code.

It is a second distribution rather than an extra of `neurender` because an extra can only add dependencies:
the `neurender` wheel stays platform-specific (the optional native kernel) and carries the demo weights. Both
are built from the same source files; the full distribution contains the SDK, so install one or the other.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NAME = "neurender-sdk"
# Installed package -> its source folder in the repository, and which of its files go in (package data: none).
PACKAGES = {
    "neurender": (REPO_ROOT / "neurender", ["__init__.py"]),
    "neurender.common": (REPO_ROOT / "neurender" / "common", ["*.py"]),
    "neurender.proto": (REPO_ROOT / "proto", ["__init__.py", "tensors.py"]),
    "neurender.proto.neurender": (REPO_ROOT / "proto" / "neurender", ["__init__.py"]),
    "neurender.proto.neurender.v1": (REPO_ROOT / "proto" / "neurender" / "v1", ["*.py", "*.pyi", "*.proto"]),
    "neurender.engine_plugin": (REPO_ROOT / "engine_plugin", ["__init__.py"]),
    "neurender.engine_plugin.sdk": (REPO_ROOT / "engine_plugin" / "sdk", ["*.py"]),
}
REQUIREMENTS = ("numpy", "protobuf", "grpcio")
MEDIA_REQUIREMENTS = ("opencv-python-headless", "av")


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower()


def project_metadata() -> tuple[str, list[str], list[str]]:
    """(version, SDK dependencies, media extra) from the main pyproject.toml, so the pins live in one place."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    by_name = {_requirement_name(r): r for r in project["dependencies"]}
    return project["version"], [by_name[name] for name in REQUIREMENTS], [by_name[name] for name in MEDIA_REQUIREMENTS]


def stage(target: Path) -> None:
    """Lay out the SDK's files and a pyproject.toml for it in `target`."""
    version, requirements, media = project_metadata()
    for package, (source, patterns) in PACKAGES.items():
        folder = target.joinpath(*package.split("."))
        folder.mkdir(parents=True, exist_ok=True)
        for pattern in patterns:
            for path in sorted(source.glob(pattern)):
                shutil.copy2(path, folder / path.name)
    (target / "README.md").write_text(
        "# neurender-sdk\n\nThe neurender client SDK: stream label maps or G-buffers to a neurender server and get "
        "frames back.\n\n    from neurender.engine_plugin.sdk.client import RenderClient\n"
    )
    pyproject = f"""[build-system]
requires = ["setuptools>=74.1"]
build-backend = "setuptools.build_meta"

[project]
name = "{NAME}"
version = "{version}"
description = "Client SDK for neurender servers (gRPC): stream label maps or G-buffers, get frames back"
readme = "README.md"
requires-python = ">=3.11"
license = {{ text = "MIT" }}
dependencies = {requirements!r}

[project.optional-dependencies]
media = {media!r}

[tool.setuptools]
packages = {list(PACKAGES)!r}
package-data = {{ "neurender.proto.neurender.v1" = ["*.pyi", "*.proto"] }}
"""
    (target / "pyproject.toml").write_text(pyproject.replace("'", '"'))
    shutil.copy2(REPO_ROOT / "LICENSE", target / "LICENSE")


def build(out_dir: Path) -> Path:
    """Build the wheel into `out_dir` (with this Python's setuptools, offline) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "neurender-sdk"
        stage(source)
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--wheel-dir",
                str(out_dir),
                str(source),
            ],
            cwd=tmp,
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            raise RuntimeError(f"building the neurender-sdk wheel failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    version = project_metadata()[0]
    return out_dir / f"neurender_sdk-{version}-py3-none-any.whl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build the pure-Python neurender-sdk wheel (client SDK, protocol "
        "stubs; needs only grpcio, protobuf and numpy)."
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist", help="output folder (default: dist/)")
    args = parser.parse_args(argv)
    path = build(args.out)
    print(f"{path} ({path.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
