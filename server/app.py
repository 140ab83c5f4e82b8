"""The server process: gRPC (with health, reflection, optional token and TLS), metrics, idle expiry and drain.

    server = RenderServer(load_registry(models_dir, config), config)
    await server.start()            # listening on server.address
    await server.drain()            # what SIGTERM does: NOT_SERVING, refuse new sessions, finish frames, stop

`run(models_dir, config)` is `neurender serve`; `ServerThread` runs a server on a background event loop for
tests, benchmarks and demos that need one in-process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from neurender.proto.neurender.v1 import render_pb2, render_pb2_grpc
from neurender.server.auth import BearerTokenInterceptor
from neurender.server.batcher import Batcher
from neurender.server.config import ServerConfig
from neurender.server.metrics import Metrics, serve_metrics
from neurender.server.registry import ModelRegistry, load_registry
from neurender.server.service import RendererService

log = logging.getLogger(__name__)

SERVICE_NAME = render_pb2.DESCRIPTOR.services_by_name["NeuralRenderer"].full_name


class RenderServer:
    def __init__(self, registry: ModelRegistry, config: ServerConfig) -> None:
        self.registry = registry
        self.config = config
        self.metrics = Metrics()
        self.batcher = Batcher(config.max_batch, config.max_wait_ms / 1e3, config.workers, self.metrics)
        self.service = RendererService(registry, config, self.batcher, self.metrics)
        self.health = HealthServicer()
        self.port: int | None = None
        self.metrics_port: int | None = None
        self._grpc: grpc.aio.Server | None = None
        self._stop_metrics = None
        self._expiry: asyncio.Task | None = None
        self._stopped = asyncio.Event()

    @property
    def address(self) -> str:
        """host:port clients connect to (the bound port when the config asked for port 0)."""
        host = self.config.address.rsplit(":", 1)[0]
        return f"{'127.0.0.1' if host in ('0.0.0.0', '[::]', '') else host}:{self.port}"

    async def start(self) -> None:
        config = self.config
        token = config.token()
        options = [
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
        ]
        self._grpc = grpc.aio.server(interceptors=[BearerTokenInterceptor(token)] if token else None, options=options)
        render_pb2_grpc.add_NeuralRendererServicer_to_server(self.service, self._grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        reflection.enable_server_reflection((SERVICE_NAME, "grpc.health.v1.Health", reflection.SERVICE_NAME), self._grpc)
        if config.tls.enabled:
            self.port = self._grpc.add_secure_port(config.address, _tls_credentials(config))
        else:
            self.port = self._grpc.add_insecure_port(config.address)
        if not self.port:
            raise OSError(f"cannot listen on {config.address}")
        problem = config.oversubscription()
        if problem:
            log.warning(problem, extra={"fields": {"event": "oversubscribed"}})
        self.batcher.start()
        await self._grpc.start()
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        if config.metrics_port is not None:
            self.metrics_port, self._stop_metrics = serve_metrics(self.metrics, config.metrics_address, config.metrics_port)
        self._expiry = asyncio.create_task(self._expire_idle())
        log.info("listening on %s (%s)%s", self.address, "TLS" if config.tls.enabled else "plaintext",
                 f", metrics on {config.metrics_address}:{self.metrics_port}" if self.metrics_port else "",
                 extra={"fields": {"event": "listening", "address": self.address, "port": self.port, "tls": config.tls.enabled,
                                   "auth": bool(token), "models": self.registry.names(), "metrics_port": self.metrics_port,
                                   "workers": config.workers, "intra_op_threads": config.resolved_intra_op_threads(),
                                   "max_batch": config.max_batch}})

    async def drain(self) -> None:
        """Graceful shutdown: health NOT_SERVING, no new sessions, frames already received finish, then stop."""
        log.info("draining: refusing new sessions, finishing %d queued frame(s)", self.batcher.pending(),
                 extra={"fields": {"event": "drain", "sessions": len(self.service.streams), "pending": self.batcher.pending()}})
        await self.health.enter_graceful_shutdown()
        self.service.begin_drain()
        deadline = time.monotonic() + self.config.drain_timeout_s
        while not self.service.idle() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not self.service.idle():
            log.warning("drain timed out after %.0f s with %d frame(s) unfinished", self.config.drain_timeout_s, self.batcher.pending())
        await self.stop(grace=1.0)

    async def stop(self, grace: float | None = None) -> None:
        if self._stopped.is_set():
            return
        if self._expiry is not None:
            self._expiry.cancel()
        if self._grpc is not None:
            await self._grpc.stop(grace)
        await asyncio.to_thread(self.batcher.stop)
        self.service.shutdown()
        if self._stop_metrics is not None:
            self._stop_metrics()
        self._stopped.set()
        log.info("stopped", extra={"fields": {"event": "stopped"}})

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def _expire_idle(self) -> None:
        interval = min(max(self.config.idle_timeout_s / 4, 0.05), 30.0)
        while True:
            await asyncio.sleep(interval)
            self.service.expire_idle(time.monotonic())


def _tls_credentials(config: ServerConfig) -> grpc.ServerCredentials:
    tls = config.tls
    key, cert = Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes()
    client_ca = Path(tls.client_ca_file).read_bytes() if tls.client_ca_file else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None)


def run(models_dir: str | Path, config: ServerConfig) -> int:
    """Serve until SIGTERM or SIGINT, then drain. Returns the process exit code."""

    async def main() -> None:
        server = RenderServer(load_registry(models_dir, config), config)
        await server.start()
        loop = asyncio.get_running_loop()
        draining: list[asyncio.Task] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: draining or draining.append(asyncio.create_task(server.drain())))
        await server.wait_stopped()

    asyncio.run(main())
    return 0


class ServerThread:
    """A RenderServer on its own event loop in a background thread (tests, benchmarks, demos).

        with ServerThread(load_registry(models, config), config) as running:
            client = RenderClient(running.address)
    """

    def __init__(self, registry: ModelRegistry, config: ServerConfig) -> None:
        self._registry, self._config = registry, config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="neurender-server", daemon=True)
        self.server: RenderServer | None = None

    @property
    def address(self) -> str:
        return self.server.address

    def start(self) -> "ServerThread":
        self._thread.start()
        self.server = self.call(self._make())
        return self

    async def _make(self) -> RenderServer:
        server = RenderServer(self._registry, self._config)
        await server.start()
        return server

    def call(self, coroutine, timeout: float | None = 60.0):
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        if self.server is not None:
            self.call(self.server.stop(grace=0.5))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def local_server(models: str | Path) -> ServerThread:
    """A private server for one process's own use (the demo, dance transfer): a free 127.0.0.1 port, no metrics
    port, plain-text logs, and no batching wait (a single client has nobody to batch with). `models` is a bundle
    folder or a folder of bundles; raises RegistryError when nothing in it can be served."""
    config = ServerConfig(address="127.0.0.1:0", metrics_port=None, log_format="text", max_wait_ms=0.0)
    return ServerThread(load_registry(models, config), config)
