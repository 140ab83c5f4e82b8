"""The Blender extension zips: one per platform and Blender Python, each carrying wheels that install on exactly
that platform and Python (checked against the wheel tags such a Blender accepts), the pure-Python neurender-sdk
wheel, and a manifest that names that platform and lists exactly its wheels. The wheels come from the wheelhouse
`make wheelhouse` fills (the test skips, saying so, without it)."""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging import tags
from packaging.utils import parse_wheel_filename

from neurender.engine_plugin.blender_extension import (
    BLENDER_RANGES,
    PLATFORMS,
    WHEELHOUSE,
    WheelhouseError,
    build,
    wheel_folder,
)
from neurender.engine_plugin.sdk_wheel import build as build_sdk_wheel

# What each Blender platform's Python accepts: glibc 2.28 on Linux (Blender 4.2+), macOS 11 (Blender 4.2+).
ACCEPTED_PLATFORMS = {
    "linux-x64": [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)]
    + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"],
    "macos-arm64": list(tags.mac_platforms((11, 0), "arm64")),
    "macos-x64": list(tags.mac_platforms((11, 0), "x86_64")),
    "windows-x64": ["win_amd64"],
}


def accepted_tags(python: str, platform: str) -> set[tags.Tag]:
    version = tuple(int(part) for part in python.split("."))
    platforms = ACCEPTED_PLATFORMS[platform]
    return set(tags.cpython_tags(version, platforms=platforms)) | set(
        tags.compatible_tags(version, f"cp{version[0]}{version[1]}", platforms)
    )


@pytest.fixture(scope="module")
def zips(tmp_path_factory) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("zips")
    sdk = build_sdk_wheel(tmp_path_factory.mktemp("sdk"))
    built = {}
    for python in BLENDER_RANGES:
        for platform in PLATFORMS:
            if not wheel_folder(WHEELHOUSE, python, platform).is_dir():
                pytest.skip(
                    f"no wheelhouse at {WHEELHOUSE}: run `make wheelhouse` (downloads the wheels the zips bundle)"
                )
            try:
                built[python, platform] = build(out, python, platform, wheelhouse=WHEELHOUSE, sdk=sdk)
            except WheelhouseError as err:
                pytest.skip(str(err))
    return built


def _contents(path: Path) -> tuple[dict, list[str]]:
    with zipfile.ZipFile(path) as archive:
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
        wheels = sorted(name for name in archive.namelist() if name.startswith("wheels/"))
    return manifest, wheels


def test_one_zip_per_platform_and_python(zips):
    assert sorted(path.name for path in zips.values()) == sorted(
        f"neurender-0.1.0-{platform}-py{python.replace('.', '')}.zip"
        for python in BLENDER_RANGES
        for platform in PLATFORMS
    )


def test_manifest_names_its_platform_blender_range_and_exactly_its_wheels(zips):
    for (python, platform), path in zips.items():
        manifest, wheels = _contents(path)
        assert manifest["platforms"] == [platform], path.name
        assert sorted(w.removeprefix("./") for w in manifest["wheels"]) == wheels, path.name
        for key, value in BLENDER_RANGES[python].items():
            assert manifest[key] == value, path.name
        assert ("blender_version_max" in manifest) == (python == "3.11")


def test_every_wheel_installs_on_its_zips_platform_and_python(zips):
    """Each wheel has a tag that Blender's Python on that platform accepts, and none is for another platform
    (so Blender's wheel filter drops nothing); grpcio and protobuf are binary, the SDK pure."""
    for (python, platform), path in zips.items():
        _, wheels = _contents(path)
        names = {}
        for wheel in wheels:
            name, _, _, wheel_tags = parse_wheel_filename(Path(wheel).name)
            names[str(name)] = wheel_tags
            assert wheel_tags & accepted_tags(python, platform), f"{path.name}: {wheel} does not install there"
            for other in set(PLATFORMS) - {platform}:
                if not any(t.platform == "any" for t in wheel_tags) and other.split("-")[0] != platform.split("-")[0]:
                    assert not wheel_tags & accepted_tags(python, other), f"{path.name}: {wheel} is for {other}"
        assert {"grpcio", "protobuf", "neurender-sdk"} <= set(names), path.name
        assert all(t.platform != "any" for t in names["grpcio"] | names["protobuf"])
        assert {str(t) for t in names["neurender-sdk"]} == {"py3-none-any"}


def test_sdk_wheel_holds_only_the_sdk(zips):
    """No weights, server, training, tests, bench or native code: the client SDK, protocol stubs and common floor."""
    path = zips["3.11", "linux-x64"]
    with zipfile.ZipFile(path) as archive:
        wheel = next(n for n in archive.namelist() if n.startswith("wheels/neurender_sdk-"))
        with archive.open(wheel) as handle, zipfile.ZipFile(handle) as sdk:
            files = [n for n in sdk.namelist() if ".dist-info/" not in n]
            metadata = sdk.read(next(n for n in sdk.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    folders = {str(Path(name).parent) for name in files}
    assert folders == {
        "neurender",
        "neurender/common",
        "neurender/proto",
        "neurender/proto/neurender",
        "neurender/proto/neurender/v1",
        "neurender/engine_plugin",
        "neurender/engine_plugin/sdk",
    }
    assert not [n for n in files if not n.endswith((".py", ".pyi", ".proto"))]
    required = sorted(
        line.split(":", 1)[1].split(">")[0].split("=")[0].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    )
    assert required == ["grpcio", "numpy", "protobuf"]
