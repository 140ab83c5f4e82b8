"""Build the Blender extension zip of the add-on in engine_plugin/blender/, with the wheels it needs inside.

    python -m neurender.engine_plugin.blender_extension --out dist/            # cp311: Blender 4.2 - 5.0
    python -m neurender.engine_plugin.blender_extension --out dist/ --python 3.13   # Blender 5.1+
    make blender-extension

Blender extensions carry their Python dependencies as wheels listed in blender_manifest.toml, one per platform
for binary packages (docs.blender.org, "Python Wheels"). Each Blender release embeds one Python version, so a
build targets one: cp311 wheels serve Blender 4.2 to 5.0, cp313 wheels Blender 5.1 and later; the manifest's
version range is set to match. The wheels are grpcio and protobuf (the versions this environment runs, which
the generated stubs require) with their dependencies, downloaded unmodified from the package index for each
platform, plus a wheel of this project, which holds the protocol stubs and the client SDK the add-on uses.
--no-wheels builds the bare add-on for a Blender whose Python already has those packages (the tests do).
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

ADDON_DIR = Path(__file__).resolve().parent / "blender"
REPO_ROOT = ADDON_DIR.parents[1]
# Blender platform name -> the pip platform tag of its wheels.
PLATFORMS = {
    "linux-x64": "manylinux2014_x86_64",
    "macos-arm64": "macosx_11_0_arm64",
    "macos-x64": "macosx_11_0_x86_64",  # grpcio ships universal2 wheels for macOS 11+: both Macs take them
    "windows-x64": "win_amd64",
}
# Python version -> the Blender releases that embed it (manifest keys).
BLENDER_RANGES = {
    "3.11": {"blender_version_min": "4.2.0", "blender_version_max": "5.1.0"},
    "3.13": {"blender_version_min": "5.1.0"},
}
SKIPPED = ("__pycache__", "*.pyc")


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
            raise ValueError(f"{source}: no '{key} = ' line to set; expected one (commented out is fine) before [permissions]")
    target.write_text(text)


def download_wheels(dest: Path, python: str, platforms: list[str]) -> list[Path]:
    """grpcio and protobuf (the installed versions) with their dependencies, per platform, as binary wheels."""
    packages = [f"grpcio=={version('grpcio')}", f"protobuf=={version('protobuf')}"]
    for name in platforms:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(dest),
             "--python-version", python, "--implementation", "cp", "--platform", PLATFORMS[name], *packages],
            check=True)
    return sorted(dest.glob("*.whl"))


def project_wheel(dest: Path) -> Path:
    """A wheel of this project (its declared dependencies are not needed by the add-on and not bundled)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dest), str(REPO_ROOT)],
                   check=True)
    return next(dest.glob("neurender-*.whl"))


def build(out_dir: Path, python: str = "3.11", platforms: list[str] | None = None, wheels: bool = True) -> Path:
    """Write the extension zip into `out_dir` and return its path."""
    if python not in BLENDER_RANGES:
        raise ValueError(f"--python {python}: expected one of {', '.join(BLENDER_RANGES)} (Blender's embedded Pythons)")
    platforms = platforms or list(PLATFORMS)
    unknown = [name for name in platforms if name not in PLATFORMS]
    if unknown:
        raise ValueError(f"unknown platform(s) {', '.join(unknown)}; expected some of {', '.join(PLATFORMS)}")
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "neurender"
        shutil.copytree(ADDON_DIR, stage, ignore=shutil.ignore_patterns(*SKIPPED))
        settings: dict[str, str | list[str]] = dict(BLENDER_RANGES[python])
        suffix = "-addon-only"
        if wheels:
            wheel_dir = stage / "wheels"
            wheel_dir.mkdir()
            found = download_wheels(wheel_dir, python, platforms) + [project_wheel(wheel_dir)]
            settings["wheels"] = [f"./wheels/{path.name}" for path in found]
            settings["platforms"] = platforms
            suffix = f"-py{python.replace('.', '')}"
        write_manifest(ADDON_DIR / "blender_manifest.toml", stage / "blender_manifest.toml", settings)
        version_line = re.search(r'^version = "([^"]+)"', (stage / "blender_manifest.toml").read_text(), re.MULTILINE)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"neurender-{version_line.group(1)}{suffix}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(stage.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(stage).as_posix())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the neurender Blender extension zip (engine_plugin/blender/) "
                                                 "with its grpcio/protobuf/neurender wheels.")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist", help="output folder (default: dist/)")
    parser.add_argument("--python", default="3.11", choices=sorted(BLENDER_RANGES),
                        help="Blender's Python: 3.11 for Blender 4.2-5.0, 3.13 for 5.1+ (default 3.11)")
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS), dest="platforms",
                        help="bundle wheels for this platform only (repeatable; default: all four)")
    parser.add_argument("--no-wheels", action="store_true",
                        help="the add-on alone, for a Blender whose Python already has neurender, grpcio and protobuf")
    args = parser.parse_args(argv)
    path = build(args.out, args.python, args.platforms, wheels=not args.no_wheels)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
