"""Prometheus metrics of one server: frames, per-stage latency, queue depth, batch sizes, sessions.

Each server has its own registry (several servers can live in one process, as in the tests); `serve_metrics`
exposes it over HTTP at /metrics.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.frames = Counter(
            "neurender_frames",
            "Frames by outcome: rendered, rejected (in-band error), dropped (DROP_STALE), failed",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "neurender_frame_latency_seconds",
            "Per-frame latency by stage: queue, inference (the whole batch), encode, total",
            ["model", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge("neurender_queue_depth", "Frames waiting for or in inference", registry=self.registry)
        self.batch_size = Histogram(
            "neurender_batch_size",
            "Frames per inference step",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.sessions = Gauge("neurender_sessions", "Open Render sessions", ["model"], registry=self.registry)
        self.sessions_opened = Counter(
            "neurender_sessions_opened", "Render sessions opened", ["model"], registry=self.registry
        )


def serve_metrics(metrics: Metrics, address: str, port: int) -> tuple[int, Callable[[], None]]:
    """Serve /metrics over HTTP; returns the bound port (port 0 picks one) and a function that stops serving."""
    server, thread = start_http_server(port, addr=address, registry=metrics.registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return server.server_port, stop
