"""Helpers for the server and client tests: a real server on 127.0.0.1, label sequences, and the step run
directly on ONNX Runtime (the reference the server must reproduce bit for bit)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from neurender.engine_plugin.sdk.aio_client import AsyncRenderClient
from neurender.server.app import ServerThread
from neurender.server.config import ServerConfig
from neurender.server.registry import load_registry
from neurender.server.step_runner import SessionRunner

TEST_CONFIG = ServerConfig(address="127.0.0.1:0", metrics_port=None, log_format="text", max_wait_ms=5.0)


@contextlib.contextmanager
def running_server(models_dir: Path, **settings: object) -> Iterator[ServerThread]:
    """A real gRPC server on a free 127.0.0.1 port, in this process, stopped on exit."""
    config = replace(TEST_CONFIG, **settings)
    with ServerThread(load_registry(models_dir, config), config) as server:
        yield server


def label_sequence(frames: int, height: int, width: int, classes: int = 12, seed: int = 0) -> list[np.ndarray]:
    """Class-ID maps of a scene that moves: blocks of classes sliding by a pixel per frame."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, classes, (height // 4 + 1, width // 4 + 1), dtype=np.uint8).repeat(4, 0).repeat(4, 1)
    return [np.ascontiguousarray(np.roll(base, t, axis=1)[:height, :width]) for t in range(frames)]


class DirectStep:
    """A session of the server's own step runner, opened at the first frame's size: what a served session
    must return frame for frame (test_server_cpu_graph checks the backends against the bundle's graph itself)."""

    def __init__(self, bundle_dir: Path, backend: str = "onnxruntime", threads: int = 2) -> None:
        self.bundle_dir, self.backend, self.threads = bundle_dir, backend, threads
        self.runner: SessionRunner | None = None

    def __call__(self, labels: np.ndarray, reset: bool = False) -> np.ndarray:
        if self.runner is None:
            self.runner = SessionRunner.open(
                self.bundle_dir, *labels.shape[:2], backend=self.backend, threads=self.threads
            )
        return self.runner.step(labels=labels, reset=reset)


def assert_interleaved_sessions_equal_each_alone(
    address: str,
    bundle_dir: Path,
    sessions: int,
    frames: int,
    backend: str = "onnxruntime",
    threads: int = 2,
    expect_batches: bool = True,
) -> None:
    """`sessions` sessions of the model "tiny" streamed at once, frame t of every session out before frame t + 1 of
    any: each gets exactly the frames it gets alone (direct steps on `backend` with the server's `threads`), and
    (if `expect_batches`) some frames were batched."""
    sequences = [label_sequence(frames, 32, 32, seed=s) for s in range(sessions)]
    expected = []
    for sequence in sequences:
        direct = DirectStep(bundle_dir, backend=backend, threads=threads)
        expected.append([direct(f) for f in sequence])

    async def run_all():
        async with AsyncRenderClient(address) as client:
            streams = [client.session("tiny", (32, 32), max_in_flight=2) for _ in sequences]
            await asyncio.gather(*(s.open() for s in streams))
            futures = [[] for _ in streams]
            for t in range(frames):
                for s, stream in enumerate(streams):
                    futures[s].append(await stream.submit(labels=sequences[s][t]))
            results = [[await f for f in fs] for fs in futures]
            await asyncio.gather(*(s.close() for s in streams))
            return results

    results = asyncio.run(run_all())
    for s in range(sessions):
        for t in range(frames):
            assert np.array_equal(results[s][t].image, expected[s][t]), f"session {s} frame {t} differs from it alone"
    if expect_batches:
        assert max(r.timings.batch_size for rs in results for r in rs) > 1, "no frames were batched together"
