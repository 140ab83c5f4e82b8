"""The native one-hot kernel is optional: pip builds neurender without a compiler, leaving it out; a server without
it (dense one-hot convolutions in the CPU graph) serves the same frames as one with it, within the CPU graph's
parity tolerance, and says in its log which path it took."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from neurender.engine_plugin.sdk.client import RenderClient
from neurender.server.onehot_lookup import KERNEL_SWITCH, native_kernel_missing
from tests.server_support import label_sequence, running_server

REPO = Path(__file__).resolve().parents[1]
FRAMES, HEIGHT, WIDTH = 6, 32, 48


def bundle_graph_frames(onnx_path, labels: list[np.ndarray], served: list[np.ndarray]) -> list[np.ndarray]:
    """The bundle's portable graph, as exported, run on ONNX Runtime step by step, each step from the history of
    the frames the server returned before it (so a rounding difference is not compounded through the warp)."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    history = session.get_inputs()[1].shape[1]
    prev_labels = np.zeros((1, history, HEIGHT, WIDTH), np.uint8)
    prev_frames = np.zeros((1, history, HEIGHT, WIDTH, 3), np.uint8)
    frames = []
    for t, frame in enumerate(labels):
        rgb, prev_labels, prev_frames = session.run(
            ["rgb", "next_prev_labels", "next_prev_frames"],
            {
                "labels": frame[None],
                "prev_labels": prev_labels,
                "prev_frames": prev_frames,
                "has_history": np.array([t > 0], np.uint8),
            },
        )
        frames.append(rgb[0])
        prev_frames[:, -1 if t else slice(None)] = served[t]  # a first frame fills the whole history with itself
    return frames


@pytest.mark.parametrize("kernel", ["native", "off"])
def test_server_frames_equal_the_bundle_graph_with_and_without_the_kernel(
    kernel, tiny_models_dir, tiny_bundle_dir, monkeypatch, caplog
):
    if kernel == "native" and native_kernel_missing():
        pytest.skip(f"the native kernel is {native_kernel_missing()}")
    monkeypatch.setenv(KERNEL_SWITCH, "off" if kernel == "off" else "on")
    labels = label_sequence(FRAMES, HEIGHT, WIDTH)
    with caplog.at_level(logging.INFO, logger="neurender.server.backends"):
        with running_server(tiny_models_dir) as server, RenderClient(server.address) as client:
            with client.session("tiny", (HEIGHT, WIDTH)) as session:
                served = [session.render(labels=frame) for frame in labels]
    paths = [r.getMessage() for r in caplog.records if "one-hot convolutions as" in r.getMessage()]
    assert paths, "the server did not log which one-hot path it took"
    expected_path = (
        "dense ONNX convolutions (the native one-hot kernel is turned off" if kernel == "off" else "1 native lookup(s)"
    )
    assert all(expected_path in message for message in paths), paths
    reference = bundle_graph_frames(tiny_bundle_dir / "generator.onnx", labels, served)
    differing = 0
    for t, (ours, want) in enumerate(zip(served, reference)):
        assert ours.shape == want.shape == (HEIGHT, WIDTH, 3)
        assert np.abs(ours.astype(int) - want.astype(int)).max() <= 1, f"frame {t}"
        differing += int((ours != want).sum())
    assert differing <= 0.001 * FRAMES * HEIGHT * WIDTH * 3


def test_without_a_compiler_neurender_builds_without_the_kernel(tmp_path):
    """pip builds the full package with CC=/bin/false (as on a machine without a C compiler): the optional
    extension is left out and the server's Python modules are in the wheel."""
    source = tmp_path / "src"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", ".cache", "build", "dist", "out", "runs", "__pycache__", "*.so", "*.egg-info", "data"
        ),
    )
    env = {**os.environ, "CC": "/bin/false", "CXX": "/bin/false", "LDSHARED": "/bin/false"}
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
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("neurender-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert not [n for n in names if "_one_hot_conv" in n]
    assert "neurender/server/onehot_lookup.py" in names and "neurender/server/cpu_graph.py" in names


def test_a_missing_kernel_is_named_and_the_cpu_graph_goes_dense(tiny_bundle_dir):
    """As on a platform where it did not build: the import fails, the reason is given, the CPU graph keeps its
    one-hot convolutions."""
    script = (
        "import sys; sys.modules['neurender.server._one_hot_conv'] = None\n"
        "from neurender.server.onehot_lookup import native_kernel_missing\n"
        "from neurender.server.backends import OrtBackend\n"
        f"backend = OrtBackend(__import__('pathlib').Path({str(tiny_bundle_dir / 'generator.onnx')!r}), ('CPUExecutionProvider',), 1)\n"
        "print(native_kernel_missing()); print(len(backend.cpu_graph.lookups))\n"
    )
    env = {key: value for key, value in os.environ.items() if key != KERNEL_SWITCH}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    reason, lookups = run.stdout.strip().splitlines()
    assert reason.startswith("not built for this platform (") and lookups == "0"
