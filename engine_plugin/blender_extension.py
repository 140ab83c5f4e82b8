"""Build the Blender extension zips of the add-on in engine_plugin/blender/: one per platform and Blender Python,
each with the wheels that platform needs inside.

    python -m neurender.engine_plugin.blender_extension --fetch --out dist/   # every platform, both Pythons
    python -m neurender.engine_plugin.blender_extension --platform linux-x64 --python 3.11
    make blender-extension

Blender extensions carry their Python dependencies as wheels listed in blender_manifest.toml (docs.blender.org,
"Python Wheels"), and each Blender release embeds one Python: 3.11 in Blender 4.2 to 5.0, 3.13 from 5.1 (the
newest release, 5.3, too). So a zip is built for one platform and one Python, and its manifest names that
platform and the Blender versions of that Python. It holds grpcio and protobuf (the versions this environment
runs, which the generated stubs require) with their dependencies, unmodified binary wheels from the package
index for that platform, plus the pure-Python neurender-sdk wheel (sdk_wheel.py: the protocol stubs and client
SDK). The index wheels are downloaded once into a wheelhouse (`--fetch`, `make wheelhouse`); building a zip only
reads it, offline. --no-wheels builds the bare add-on for a Blender whose Python already has those packages.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib.metadata import version
from pathlib import Path

from neurender.engine_plugin.sdk_wheel import build as build_sdk_wheel

ADDON_DIR = Path(__file__).resolve().parent / "blender"
REPO_ROOT = ADDON_DIR.parents[1]
WHEELHOUSE = REPO_ROOT / ".cache" / "wheels"
# Blender platform name -> the pip platform tag of its wheels (pip also takes older manylinux/macOS tags, and
# universal2 on macOS, for these).
PLATFORMS = {
    "linux-x64": "manylinux2014_x86_64",
    "macos-arm64": "macosx_11_0_arm64",
    "macos-x64": "macosx_11_0_x86_64",
    "windows-x64": "win_amd64",
}
# Python version -> the Blender releases that embed it (manifest keys).
BLENDER_RANGES = {
    "3.11": {"blender_version_min": "4.2.0", "blender_version_max": "5.1.0"},
    "3.13": {"blender_version_min": "5.1.0"},
}
SKIPPED = ("__pycache__", "*.pyc")


class WheelhouseError(RuntimeError):
    """The wheelhouse lacks wheels a zip needs; the message says how to fill it."""


def _manifest_value(value: str | list[str]) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return "[\n" + "".join(f'  "{item}",\n' for item in value) + "]"


def write_manifest(source: Path, target: Path, settings: dict[str, str | list[str]]) -> None:
    """Copy the manifest, setting top-level keys (replacing the line that sets or comments out each key)."""
    text = source.read_text()
    for key, value in settings.items():
        line = f"{key} = {_manifest_value(value)}"
        pattern = re.compile(rf"^#? ?{key} = .*$", re.MULTILINE)
        text, count = pattern.subn(lambda _: line, text, count=1)
        if not count:
            raise ValueError(
                f"{source}: no '{key} = ' line to set; expected one (commented out is fine) before [permissions]"
            )
    target.write_text(text)


def requirements() -> list[str]:
    """grpcio and protobuf at the versions installed here."""
    return [f"grpcio=={version('grpcio')}", f"protobuf=={version('protobuf')}"]


def wheel_folder(wheelhouse: Path, python: str, platform: str) -> Path:
    return wheelhouse / f"cp{python.replace('.', '')}-{platform}"


def _pip_download(dest: Path, python: str, platform: str, source: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--dest",
            str(dest),
            "--python-version",
            python,
            "--implementation",
            "cp",
            "--platform",
            PLATFORMS[platform],
            *source,
            *requirements(),
        ],
        capture_output=True,
        text=True,
    )


def fetch(wheelhouse: Path, python: str, platform: str) -> Path:
    """Download the platform's wheels from the package index into the wheelhouse (kept if already there)."""
    folder = wheel_folder(wheelhouse, python, platform)
    run = _pip_download(folder, python, platform, [])
    if run.returncode != 0:
        raise WheelhouseError(
            f"pip could not download {' '.join(requirements())} for {platform}, Python {python}: "
            f"{run.stderr.strip()[-500:]}"
        )
    return folder


def platform_wheels(wheelhouse: Path, python: str, platform: str, dest: Path) -> list[Path]:
    """Copy the platform's wheels from the wheelhouse into `dest`, resolved offline (so a stale or partial
    wheelhouse fails here rather than in Blender)."""
    folder = wheel_folder(wheelhouse, python, platform)
    dest.mkdir(parents=True, exist_ok=True)
    run = _pip_download(dest, python, platform, ["--no-index", "--find-links", str(folder)])
    if run.returncode != 0:
        raise WheelhouseError(
            f"{folder} lacks wheels of {' '.join(requirements())} for {platform}, Python {python}; "
            "fill it with `make wheelhouse` (or --fetch)"
        )
    return sorted(dest.glob("*.whl"))


def build(
    out_dir: Path,
    python: str = "3.11",
    platform: str = "linux-x64",
    wheels: bool = True,
    wheelhouse: Path = WHEELHOUSE,
    sdk: Path | None = None,
) -> Path:
    """Write the extension zip for one platform and Blender Python into `out_dir` and return its path. `sdk`: a
    neurender-sdk wheel already built (else one is built)."""
    if python not in BLENDER_RANGES:
        raise ValueError(f"--python {python}: expected one of {', '.join(BLENDER_RANGES)} (Blender's embedded Pythons)")
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform}; expected one of {', '.join(PLATFORMS)}")
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "neurender"
        shutil.copytree(ADDON_DIR, stage, ignore=shutil.ignore_patterns(*SKIPPED))
        settings: dict[str, str | list[str]] = dict(BLENDER_RANGES[python])
        suffix = "addon-only"
        if wheels:
            wheel_dir = stage / "wheels"
            found = platform_wheels(wheelhouse, python, platform, wheel_dir)
            if sdk is None:
                found.append(build_sdk_wheel(wheel_dir))
            else:
                found.append(Path(shutil.copy2(sdk, wheel_dir / sdk.name)))
            settings["wheels"] = [f"./wheels/{path.name}" for path in sorted(found)]
            settings["platforms"] = [platform]
            suffix = f"{platform}-py{python.replace('.', '')}"
        write_manifest(ADDON_DIR / "blender_manifest.toml", stage / "blender_manifest.toml", settings)
        version_line = re.search(r'^version = "([^"]+)"', (stage / "blender_manifest.toml").read_text(), re.MULTILINE)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"neurender-{version_line.group(1)}-{suffix}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(stage.rglob("*")):
                if path.is_file():  # wheels are zips already
                    compression = zipfile.ZIP_STORED if path.suffix == ".whl" else zipfile.ZIP_DEFLATED
                    archive.write(path, path.relative_to(stage).as_posix(), compress_type=compression)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build the neurender Blender extension zips (engine_plugin/blender/), "
        "one per platform and Blender Python, with their wheels."
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist", help="output folder (default: dist/)")
    parser.add_argument(
        "--python",
        action="append",
        choices=sorted(BLENDER_RANGES),
        dest="pythons",
        help="Blender's Python: 3.11 for Blender 4.2-5.0, 3.13 for 5.1+ (repeatable; default: both)",
    )
    parser.add_argument(
        "--platform",
        action="append",
        choices=sorted(PLATFORMS),
        dest="platforms",
        help="build for this platform (repeatable; default: all four)",
    )
    parser.add_argument("--wheelhouse", type=Path, default=WHEELHOUSE, help=f"wheel cache (default: {WHEELHOUSE})")
    parser.add_argument("--fetch", action="store_true", help="download the wheels into the wheelhouse first (network)")
    parser.add_argument("--fetch-only", action="store_true", help="only fill the wheelhouse, build nothing")
    parser.add_argument(
        "--no-wheels",
        action="store_true",
        help="the add-on alone, for a Blender whose Python already has neurender, grpcio and protobuf",
    )
    args = parser.parse_args(argv)
    pythons, platforms = args.pythons or list(BLENDER_RANGES), args.platforms or list(PLATFORMS)
    try:
        if args.fetch or args.fetch_only:
            for python in pythons:
                for platform in platforms:
                    fetch(args.wheelhouse, python, platform)
        if args.fetch_only:
            return 0
        if args.no_wheels:
            targets = [(pythons[0], platforms[0])]
        else:
            targets = [(python, platform) for python in pythons for platform in platforms]
        with tempfile.TemporaryDirectory() as tmp:
            sdk = None if args.no_wheels else build_sdk_wheel(Path(tmp))
            for python, platform in targets:
                path = build(args.out, python, platform, not args.no_wheels, args.wheelhouse, sdk)
                print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    except WheelhouseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
