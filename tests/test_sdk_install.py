"""The pure-Python SDK (neurender-sdk) installs into a fresh virtual environment with no C compiler, from local
wheels only (the SDK built here, grpcio/protobuf/numpy from the wheelhouse `make wheelhouse` fills), pulls in
nothing but grpcio, protobuf and numpy, and renders through a real server exactly what the server renders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurender.engine_plugin.blender_extension import WHEELHOUSE
from neurender.engine_plugin.sdk.client import RenderClient
from neurender.engine_plugin.sdk_wheel import build as build_sdk_wheel
from tests.server_support import label_sequence, running_server

HOST_WHEELS = WHEELHOUSE / "host"
FRAMES, HEIGHT, WIDTH = 3, 32, 48

CLIENT_SCRIPT = """
import json, sys
import numpy as np
from neurender.engine_plugin.sdk.client import RenderClient
labels = np.load(sys.argv[2])
with RenderClient(sys.argv[1]) as client:
    names = [m.name for m in client.list_models()]
    with client.session("tiny", labels.shape[1:]) as session:
        frames = [session.render(labels=frame) for frame in labels]
np.save(sys.argv[3], np.stack(frames))
try:
    import neurender.server
    server = True
except ImportError:
    server = False
print(json.dumps({"models": names, "server_importable": server}))
"""


@pytest.fixture(scope="module")
def sdk_venv(tmp_path_factory) -> Path:
    if not HOST_WHEELS.is_dir():
        pytest.skip(
            f"no wheelhouse at {HOST_WHEELS}: run `make wheelhouse` (downloads grpcio, protobuf and numpy wheels)"
        )
    tmp = tmp_path_factory.mktemp("sdk-install")
    wheel = build_sdk_wheel(tmp / "dist")
    assert wheel.name == "neurender_sdk-0.1.0-py3-none-any.whl"
    venv = tmp / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {**os.environ, "CC": "/bin/false", "CXX": "/bin/false", "PIP_CONFIG_FILE": os.devnull}
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--only-binary=:all:",
            "--find-links",
            str(wheel.parent),
            "--find-links",
            str(HOST_WHEELS),
            "neurender-sdk",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert install.returncode == 0, install.stderr
    return python


def test_installs_only_grpcio_protobuf_numpy(sdk_venv):
    listed = subprocess.run(
        [str(sdk_venv), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    names = {item["name"].lower().replace("_", "-") for item in json.loads(listed.stdout)} - {"pip", "setuptools"}
    assert names == {
        "neurender-sdk",
        "grpcio",
        "protobuf",
        "numpy",
        "typing-extensions",
    }  # grpcio needs typing-extensions


def test_renders_through_a_real_server(sdk_venv, tiny_models_dir, tmp_path):
    labels = np.stack(label_sequence(FRAMES, HEIGHT, WIDTH))
    np.save(tmp_path / "labels.npy", labels)
    with running_server(tiny_models_dir) as server:
        run = subprocess.run(
            [
                str(sdk_venv),
                "-c",
                CLIENT_SCRIPT,
                server.address,
                str(tmp_path / "labels.npy"),
                str(tmp_path / "frames.npy"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": ""},
        )
        assert run.returncode == 0, run.stderr
        with RenderClient(server.address) as client, client.session("tiny", (HEIGHT, WIDTH)) as session:
            expected = [session.render(labels=frame) for frame in labels]
    result = json.loads(run.stdout)
    assert result == {"models": ["tiny"], "server_importable": False}
    np.testing.assert_array_equal(np.load(tmp_path / "frames.npy"), np.stack(expected))
