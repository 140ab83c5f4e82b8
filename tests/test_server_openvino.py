"""The server on the OpenVINO backend: a real server on 127.0.0.1 streaming through real OpenVINO inference."""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

from neurender.engine_plugin.sdk.client import RenderClient
from neurender.server.app import ServerThread
from neurender.server.backends import BackendError
from neurender.server.openvino_backend import OpenVinoBackend
from neurender.server.registry import load_registry
from tests.server_support import TEST_CONFIG, DirectStep, assert_interleaved_sessions_equal_each_alone, label_sequence


@pytest.fixture(scope="module")
def server(tiny_models_dir):
    config = replace(TEST_CONFIG, backend="openvino", intra_op_threads=2, max_batch=8)
    registry = load_registry(tiny_models_dir, config)
    assert {registry.get(name).backend.name for name in registry.names()} == {"openvino"}
    with ServerThread(registry, config) as running:
        yield running


def test_streamed_frames_equal_direct_openvino_steps(server, tiny_bundle_dir):
    labels = label_sequence(12, 64, 64)
    direct = DirectStep(tiny_bundle_dir, backend="openvino")
    expected = [direct(frame) for frame in labels]
    with RenderClient(server.address) as client:
        with client.session("tiny", (64, 64), max_in_flight=3) as session:
            results = [f.result() for f in [session.submit(labels=frame) for frame in labels]]
    for t, (result, want) in enumerate(zip(results, expected)):
        assert np.array_equal(result.image, want), f"frame {t} differs from the direct OpenVINO step"


def test_batched_sessions_equal_each_alone(server, tiny_bundle_dir):
    assert_interleaved_sessions_equal_each_alone(
        server.address, tiny_bundle_dir, sessions=4, frames=5, backend="openvino"
    )


def test_two_workers_step_sessions_at_once_each_as_alone(tiny_models_dir, tiny_bundle_dir):
    """Two inference workers share one compiled model, each on its own infer request, stepping at the same time.
    OpenVINO's frames depend on its thread count at the rounding level, so the direct steps use the workers' one."""
    config = replace(TEST_CONFIG, backend="openvino", workers=2, intra_op_threads=1, max_batch=1)
    with ServerThread(load_registry(tiny_models_dir, config), config) as running:
        assert_interleaved_sessions_equal_each_alone(
            running.address, tiny_bundle_dir, sessions=4, frames=5, backend="openvino", threads=1, expect_batches=False
        )


def test_a_graph_openvino_cannot_read_is_refused_by_name(tmp_path):
    broken = tmp_path / "generator.onnx"
    broken.write_bytes(b"not an onnx graph")
    with pytest.raises(BackendError, match="generator.onnx"):
        OpenVinoBackend(broken, intra_op_threads=1)


def test_a_missing_openvino_package_is_named_with_its_install_command(tiny_bundle_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # what `import openvino` meets when it is not installed
    with pytest.raises(BackendError, match=r"openvino package is not installed.*neurender\[openvino\]"):
        OpenVinoBackend(tiny_bundle_dir / "generator.onnx", intra_op_threads=1)
