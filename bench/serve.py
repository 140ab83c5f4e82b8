"""Serving benchmark: frames/s and p50/p95 latency through gRPC and in-process, in one run.

    python -m neurender.bench.serve [--models DIR --model NAME] [--backend openvino] [--workers 2] [--sizes 128 256]

For each frame size it measures
  - in-process: the backend's step called directly with the sessions' histories stacked (1 session = batch 1;
    N sessions = one batch of N, the best batching can do);
  - gRPC: N concurrent sessions, each a Render stream with one frame in flight (an engine waiting for its
    frame), against a `neurender serve` subprocess with batching on (max_batch = the largest session count)
    and off (max_batch 1), raw output; and PNG/JPEG output with batching on;
and prints one table and the serving goals as measured ratios. Every measurement is split into --rounds short
runs, interleaved across all the configurations, so a change in the machine's load touches them alike; the
load average is printed too, since other processes on the cores skew every figure. Without --models it
exports the tiny preset with random weights (needs the [train] extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurender.proto.bundle import read_bundle


@dataclass
class Sample:
    """One short run: per-frame latencies (s), its wall time (s) and the batch size of each frame."""

    latencies: list[float]
    elapsed: float
    batches: list[int]


@dataclass
class Row:
    size: int
    path: str
    sessions: int
    batching: str
    encoding: str
    frames: int
    fps: float
    p50_ms: float
    p95_ms: float
    mean_batch: float


def label_frames(model, size: int, count: int = 8, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Blocky class maps that slide a pixel per frame (or pose / edge maps for those models)."""
    rng = np.random.default_rng(seed)
    name = model.label_input
    frames = []
    if name == "labels":
        base = (
            rng.integers(0, model.num_classes, (size // 8 + 1, size // 8 + 1))
            .astype(model.label_dtype)
            .repeat(8, 0)
            .repeat(8, 1)
        )
        frames = [np.ascontiguousarray(np.roll(base, t, axis=1)[:size, :size]) for t in range(count)]
    elif name == "pose_map":
        frames = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]
    else:
        frames = [(rng.random((size, size)) > 0.9).astype(np.uint8) * 255 for _ in range(count)]
    return [{name: f} for f in frames]


def in_process_sample(model, size: int, sessions: int, seconds: float) -> Sample:
    from neurender.server.session import History, SessionSpec

    spec = SessionSpec(model, size, size, 0, 90, False, None, None)
    histories = [History.empty(spec) for _ in range(sessions)]
    frames = label_frames(model, size)
    extras = {
        s.name: np.zeros(
            (sessions, size, size, 2) if s.name == "motion" else (sessions, size, size),
            np.float16 if s.name in ("depth", "motion") else np.uint16,
        )
        for s in model.optional_inputs
    }
    latencies, t = [], 0
    start = time.perf_counter()
    while t < 2 or time.perf_counter() - start < seconds:
        feeds = {
            model.label_input: np.stack([frames[t % len(frames)][model.label_input]] * sessions),
            "prev_labels": np.stack([h.prev_labels for h in histories]),
            "prev_frames": np.stack([h.prev_frames for h in histories]),
            "has_history": np.array([h.valid for h in histories], np.uint8),
            **extras,
        }
        if model.style_dim:
            feeds["style"] = np.zeros((sessions, model.num_classes, model.style_dim), np.float32)
        if t == 0:
            model.backend.run(feeds)  # warm up this shape, untimed
            start = time.perf_counter()
        step_start = time.perf_counter()
        _, next_labels, next_frames = model.backend.run(feeds)
        latencies += [time.perf_counter() - step_start] * sessions
        for i, h in enumerate(histories):
            h.prev_labels, h.prev_frames, h.valid = next_labels[i], next_frames[i], True
        t += 1
    return Sample(latencies, time.perf_counter() - start, [sessions] * len(latencies))


async def grpc_sample(
    address: str, model_name: str, model, size: int, sessions: int, encoding: str, seconds: float
) -> Sample:
    from neurender.engine_plugin.sdk.aio_client import AsyncRenderClient

    frames = label_frames(model, size)
    async with AsyncRenderClient(address) as client:
        opened = [client.session(model_name, (size, size), encoding=encoding) for _ in range(sessions)]
        await asyncio.gather(*(s.open() for s in opened))
        await asyncio.gather(*(s.render(**frames[0]) for s in opened))  # warm up: first frames, connections
        latencies: list[float] = []
        batches: list[int] = []
        start = time.perf_counter()
        finished = [start]

        async def drive(session, offset: int) -> None:
            t = 0
            while t < 2 or time.perf_counter() - start < seconds:
                result = await (await session.submit(**frames[(t + offset) % len(frames)]))
                latencies.append(result.latency_ms / 1e3)
                batches.append(result.timings.batch_size)
                finished.append(time.perf_counter())
                t += 1

        await asyncio.gather(*(drive(s, i) for i, s in enumerate(opened)))
        await asyncio.gather(*(s.close() for s in opened))
    return Sample(latencies, max(finished) - start, batches)


def merge(key: tuple, samples: list[Sample]) -> Row:
    latencies = np.array([x for s in samples for x in s.latencies]) * 1e3
    frames, elapsed = len(latencies), sum(s.elapsed for s in samples)
    return Row(
        *key,
        frames,
        frames / elapsed,
        float(np.percentile(latencies, 50)),
        float(np.percentile(latencies, 95)),
        float(np.mean([b for s in samples for b in s.batches])),
    )


class ServerProcess:
    """`neurender serve` in a subprocess with a given max_batch; logs go to a file."""

    def __init__(self, models: Path, max_batch: int, backend: str, workers: int, folder: Path) -> None:
        config = folder / f"serve-b{max_batch}.yaml"
        config.write_text(
            f"address: 127.0.0.1:0\nmetrics_port: null\nlog_format: json\nmax_batch: {max_batch}\n"
            f"backend: {backend}\nworkers: {workers}\n"
        )
        self.log = folder / f"serve-b{max_batch}.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "neurender.cli", "serve", "--models", str(models), "--config", str(config)],
            stderr=self._log_file,
            stdout=subprocess.DEVNULL,
        )
        self.address = self._wait_listening()

    def _wait_listening(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            for line in self.log.read_text().splitlines():
                if line.startswith("{") and json.loads(line).get("event") == "listening":
                    return json.loads(line)["address"]
            time.sleep(0.1)
        raise RuntimeError(f"server did not start within {timeout} s")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self._log_file.close()


def print_table(rows: list[Row]) -> None:
    header = f"{'size':>5} {'path':<10} {'sessions':>8} {'batching':<8} {'output':<6} {'frames':>6} {'frames/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'batch':>5}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.size:>5} {r.path:<10} {r.sessions:>8} {r.batching:<8} {r.encoding:<6} {r.frames:>6} {r.fps:>9.2f} "
            f"{r.p50_ms:>8.1f} {r.p95_ms:>8.1f} {r.mean_batch:>5.1f}"
        )


def print_goals(rows: list[Row], sizes: list[int], sessions: list[int]) -> None:
    def find(size, path, n, batching="on", encoding="raw"):
        for r in rows:
            if (r.size, r.path, r.sessions) == (size, path, n) and (
                path == "in-process" or (r.batching, r.encoding) == (batching, encoding)
            ):
                return r
        return None

    print("\ngoals (measured ratios; >= 0.95 / >= 1.0 meets the goal):")
    for size in sizes:
        alone = find(size, "in-process", 1)
        one = find(size, "gRPC", 1)
        if alone and one:
            print(f"  {size}px  1 session gRPC / in-process frames/s:            {one.fps / alone.fps:.3f}")
        many = find(size, "gRPC", max(sessions))
        if alone and many:
            print(
                f"  {size}px  {max(sessions)} sessions gRPC total / 1 in-process frames/s:  {many.fps / alone.fps:.3f}"
            )
        for n in sessions:
            on, off = find(size, "gRPC", n, "on"), find(size, "gRPC", n, "off")
            if on and off:
                print(f"  {size}px  {n:>2} sessions batching on / off frames/s:          {on.fps / off.fps:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", type=Path, help="a models folder (default: the tiny preset, exported with random weights)"
    )
    parser.add_argument("--model", help="the model to use (default: the folder's first)")
    parser.add_argument(
        "--backend", default="onnxruntime", choices=["onnxruntime", "openvino"], help="the servers' inference backend"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="the servers' inference workers (threads are shared out between them)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument(
        "--encodings", nargs="*", default=["png", "jpeg"], help="outputs besides raw (batching on); none: raw only"
    )
    parser.add_argument("--seconds", type=float, default=1.5, help="time per run (at least 2 frames per session)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per configuration")
    args = parser.parse_args(argv)

    from neurender.server.config import ServerConfig
    from neurender.server.registry import load_registry

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = args.models
        if models is None:
            models = folder / "models"
            export_tiny(models / "tiny")
        config = ServerConfig(backend=args.backend, workers=args.workers)
        registry = load_registry(models, config)
        name = args.model or registry.names()[0]
        model = registry.get(name)
        print(
            f"model {name} ({read_bundle(model.bundle.path).description.provenance.get('parameters', '?')} parameters), "
            f"{os.cpu_count()} cores, backend {config.backend}, {config.workers} worker x {config.resolved_intra_op_threads()} intra-op threads; "
            f"load average before: {os.getloadavg()[0]:.2f}"
        )
        servers = {
            "on": ServerProcess(models, max(args.sessions), config.backend, config.workers, folder),
            "off": ServerProcess(models, 1, config.backend, config.workers, folder),
        }
        try:
            runs: list[tuple[tuple, Callable[[], Sample]]] = []
            for size in args.sizes:
                for n in args.sessions:
                    runs.append(
                        (
                            (size, "in-process", n, "stacked" if n > 1 else "-", "-"),
                            lambda size=size, n=n: in_process_sample(model, size, n, args.seconds),
                        )
                    )
                outputs = [("on", "raw", n) for n in args.sessions] + [("off", "raw", n) for n in args.sessions]
                outputs += [("on", e, n) for e in args.encodings for n in sorted({1, max(args.sessions)})]
                for batching, encoding, n in outputs:
                    address = servers[batching].address
                    runs.append(
                        (
                            (size, "gRPC", n, batching, encoding),
                            lambda a=address, size=size, n=n, e=encoding: asyncio.run(
                                grpc_sample(a, name, model, size, n, e, args.seconds)
                            ),
                        )
                    )
            samples: dict[tuple, list[Sample]] = defaultdict(list)
            for r in range(args.rounds):
                for key, run in runs if r % 2 == 0 else runs[::-1]:  # alternate the order: drift cancels out
                    samples[key].append(run())
        finally:
            for server in servers.values():
                server.stop()
        rows = [merge(key, samples[key]) for key, _ in runs]
        print()
        print_table(rows)
        print_goals(rows, args.sizes, args.sessions)
        print(f"\nload average after: {os.getloadavg()[0]:.2f} (1 min)")
    return 0


def export_tiny(path: Path) -> None:
    import torch

    from neurender.training.model.bundle_export import BundleInfo, export_bundle
    from neurender.training.model.config import PRESETS
    from neurender.training.model.generator import Vid2VidGenerator

    torch.manual_seed(0)
    export_bundle(Vid2VidGenerator(PRESETS["tiny"]), path, BundleInfo(name="tiny"))


if __name__ == "__main__":
    sys.exit(main())
