"""The server process: gRPC (with health, reflection, optional token and TLS), metrics, idle expiry and drain.

    server = RenderServer(load_registry(models_dir, config), config)
    await server.start()            # listening on server.address; StartupError (an OSError) names what failed
    await server.drain()            # what SIGTERM does: NOT_SERVING, refuse new sessions, finish frames, stop

`run(models_dir, config)` is `neurender serve`; `ServerThread` runs a server on a background event loop for
tests, benchmarks and demos that need one in-process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from neurender.proto.neurender.v1 import render_pb2
from neurender.server.auth import BearerTokenInterceptor
from neurender.server.batcher import Batcher
from neurender.server.config import ServerConfig
from neurender.server.metrics import Metrics, serve_metrics
from neurender.server.registry import ModelRegistry, load_registry
from neurender.server.service import RendererService
from neurender.server.wire import add_service

log = logging.getLogger(__name__)

SERVICE_NAME = render_pb2.DESCRIPTOR.services_by_name["NeuralRenderer"].full_name


class StartupError(OSError):
    """The server cannot start: a port it cannot bind, a certificate it cannot read; the message names which."""


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
        self.undelivered: dict[str, list[int]] = {}  # after a drain: session id -> frames accepted, never answered

    @property
    def address(self) -> str:
        """host:port clients connect to (the bound port when the config asked for port 0)."""
        host = self.config.address.rsplit(":", 1)[0]
        return f"{'127.0.0.1' if host in ('0.0.0.0', '[::]', '') else host}:{self.port}"

    async def start(self) -> None:
        """Bind every port, then serve: nothing reports SERVING until all of them are bound."""
        config = self.config
        token = config.token()
        credentials = _tls_credentials(config) if config.tls.enabled else None
        options = [
            ("grpc.so_reuseport", 0),  # a second server on a busy port fails instead of silently sharing it
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
        ]
        self._grpc = grpc.aio.server(interceptors=[BearerTokenInterceptor(token)] if token else None, options=options)
        add_service(self.service, self._grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        reflection.enable_server_reflection(
            (SERVICE_NAME, "grpc.health.v1.Health", reflection.SERVICE_NAME), self._grpc
        )
        try:
            self._bind(credentials)
        except StartupError:
            await self._grpc.stop(None)
            raise
        problem = config.oversubscription()
        if problem:
            log.warning(problem, extra={"fields": {"event": "oversubscribed"}})
        self.batcher.start()
        await self._grpc.start()
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._expiry = asyncio.create_task(self._expire_idle())
        log.info(
            "listening on %s (%s)%s",
            self.address,
            "TLS" if config.tls.enabled else "plaintext",
            f", metrics on {config.metrics_address}:{self.metrics_port}" if self.metrics_port else "",
            extra={
                "fields": {
                    "event": "listening",
                    "address": self.address,
                    "port": self.port,
                    "tls": config.tls.enabled,
                    "auth": bool(token),
                    "models": self.registry.names(),
                    "metrics_port": self.metrics_port,
                    "workers": config.workers,
                    "intra_op_threads": config.resolved_intra_op_threads(),
                    "max_batch": config.max_batch,
                }
            },
        )

    def _bind(self, credentials: grpc.ServerCredentials | None) -> None:
        config = self.config
        problem = _bind_problem(config.address)
        try:
            self.port = (
                0
                if problem
                else (
                    self._grpc.add_secure_port(config.address, credentials)
                    if credentials is not None
                    else self._grpc.add_insecure_port(config.address)
                )
            )
        except RuntimeError:  # grpc says only "Failed to bind to address"
            self.port = 0
        if not self.port:
            raise StartupError(
                f"cannot listen on {config.address}: {problem or 'the port is in use or the host is not this machine'}; "
                "choose another with --address HOST:PORT (port 0 picks a free one)"
            )
        if config.metrics_port is not None:
            where = f"{config.metrics_address}:{config.metrics_port}"
            try:
                self.metrics_port, self._stop_metrics = serve_metrics(
                    self.metrics, config.metrics_address, config.metrics_port
                )
            except OSError as err:
                raise StartupError(
                    f"cannot serve metrics on {where}: {err.strerror or err}; choose another with "
                    "--metrics-address HOST:PORT (port 0 picks a free one) or turn metrics off with "
                    "--no-metrics"
                ) from None

    async def drain(self) -> None:
        """Graceful shutdown: health NOT_SERVING, no new sessions, frames already received finish, then stop.
        Frames accepted but never answered (the drain timed out) are logged and kept in `undelivered`."""
        log.info(
            "draining: refusing new sessions, finishing %d queued frame(s)",
            self.batcher.pending(),
            extra={
                "fields": {"event": "drain", "sessions": len(self.service.streams), "pending": self.batcher.pending()}
            },
        )
        await self.health.enter_graceful_shutdown()
        self.service.begin_drain()
        deadline = time.monotonic() + self.config.drain_timeout_s
        while not self.service.idle() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # Timed out: stop now, as drain_timeout_s promises; otherwise the streams' last statuses get a moment.
        await self.stop(grace=1.0 if self.service.idle() else 0)
        self.undelivered = self.service.undelivered_frames()
        if self.undelivered:
            frames = sum(len(ids) for ids in self.undelivered.values())
            detail = "; ".join(f"session {sid}: frames {_ranges(ids)}" for sid, ids in self.undelivered.items())
            log.error(
                "drain timed out after %g s: %d accepted frame(s) of %d session(s) were not delivered (%s)",
                self.config.drain_timeout_s,
                frames,
                len(self.undelivered),
                detail,
                extra={"fields": {"event": "drain_incomplete", "frames": frames, "undelivered": self.undelivered}},
            )

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


def _bind_problem(address: str) -> str | None:
    """Why a listening socket cannot bind `address` (host:port), found before gRPC tries: its own failure is a
    C-level log line that names no reason. None if it can (or the port is 0, or the host does not resolve)."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return None
    try:
        candidates = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return None
    for family, kind, proto, _, where in candidates:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(where)
            except OSError as err:
                return err.strerror or str(err)
    return None


def _ranges(ids: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9"."""
    spans: list[list[int]] = []
    for i in ids:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _tls_credentials(config: ServerConfig) -> grpc.ServerCredentials:
    """The server's TLS credentials, with each file checked first: gRPC reports any bad one as a failed bind."""
    tls = config.tls
    check = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    steps = [
        (tls.cert_file, "a PEM certificate chain", lambda: check.load_verify_locations(cafile=tls.cert_file)),
        (
            tls.key_file,
            f"the PEM private key of {tls.cert_file}",
            lambda: check.load_cert_chain(tls.cert_file, tls.key_file),
        ),
    ]
    if tls.client_ca_file:
        steps.append(
            (tls.client_ca_file, "PEM CA certificates", lambda: check.load_verify_locations(cafile=tls.client_ca_file))
        )
    for path, expected, load in steps:
        try:
            load()
        except ssl.SSLError as err:
            raise StartupError(f"tls: {path} is not {expected} ({err.reason or err})") from None
        except OSError as err:
            raise StartupError(f"tls: {path}: {err.strerror or err}") from None
    key, cert = Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes()
    client_ca = Path(tls.client_ca_file).read_bytes() if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def run(models_dir: str | Path, config: ServerConfig) -> int:
    """Serve until SIGTERM or SIGINT, then drain. Returns the process exit code: 1 if the drain left accepted
    frames undelivered."""

    async def main() -> int:
        server = RenderServer(load_registry(models_dir, config), config)
        await server.start()
        loop = asyncio.get_running_loop()
        draining: list[asyncio.Task] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: draining or draining.append(asyncio.create_task(server.drain())))
        await server.wait_stopped()
        return 1 if server.undelivered else 0

    return asyncio.run(main())


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

    def start(self) -> ServerThread:
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

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def local_server(models: str | Path) -> ServerThread:
    """A private server for one process's own use (the demo, dance transfer): a free 127.0.0.1 port, no metrics
    port, plain-text logs, and no batching wait (a single client has nobody to batch with). `models` is a bundle
    folder or a folder of bundles; raises RegistryError when nothing in it can be served."""
    config = ServerConfig(address="127.0.0.1:0", metrics_port=None, log_format="text", max_wait_ms=0.0)
    return ServerThread(load_registry(models, config), config)
