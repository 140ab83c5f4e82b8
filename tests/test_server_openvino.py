"""The server on the OpenVINO backend: a real server on 127.0.0.1 streaming through real OpenVINO inference."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from neurender.engine_plugin.aio_client import AsyncRenderClient
from neurender.engine_plugin.client import RenderClient
from neurender.server.backends import BackendError
from neurender.server.openvino_backend import OpenVinoBackend
from neurender.server.app import ServerThread
from neurender.server.registry import load_registry
from tests.server_support import TEST_CONFIG, DirectStep, label_sequence


@pytest.fixture(scope="module")
def server(tiny_models_dir):
    config = replace(TEST_CONFIG, backend="openvino", max_batch=8)
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
    """Four sessions stacked into batches: each gets exactly the frames it gets alone."""
    sequences = [label_sequence(5, 32, 32, seed=s) for s in range(4)]
    expected = []
    for frames in sequences:
        direct = DirectStep(tiny_bundle_dir, backend="openvino")
        expected.append([direct(f) for f in frames])

    async def run_all():
        async with AsyncRenderClient(server.address) as client:
            sessions = [client.session("tiny", (32, 32), max_in_flight=2) for _ in sequences]
            await asyncio.gather(*(s.open() for s in sessions))
            futures = [[] for _ in sessions]
            for t in range(5):
                for s, session in enumerate(sessions):
                    futures[s].append(await session.submit(labels=sequences[s][t]))
            results = [[await f for f in fs] for fs in futures]
            await asyncio.gather(*(s.close() for s in sessions))
            return results

    results = asyncio.run(run_all())
    for s in range(4):
        for t in range(5):
            assert np.array_equal(results[s][t].image, expected[s][t]), f"session {s} frame {t} differs from it alone"
    assert max(r.timings.batch_size for rs in results for r in rs) > 1, "no frames were batched together"


def test_a_graph_openvino_cannot_read_is_refused_by_name(tmp_path):
    broken = tmp_path / "generator.onnx"
    broken.write_bytes(b"not an onnx graph")
    with pytest.raises(BackendError, match="generator.onnx"):
        OpenVinoBackend(broken, intra_op_threads=1)
