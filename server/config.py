"""The server's settings: defaults here, overridden by a YAML file (`neurender serve --config FILE`).

server/serve.yaml lists every setting with its default and what it does; a test keeps the two in step.
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from neurender.common.typed_config import ConfigError, check

BACKENDS = ("onnxruntime", "openvino", "torch")
LOG_FORMATS = ("json", "text")
DEFAULT_CONFIG_FILE = Path(__file__).with_name("serve.yaml")


@dataclass(frozen=True)
class TlsConfig:
    cert_file: str | None = None  # PEM certificate chain; TLS is on when cert_file and key_file are set
    key_file: str | None = None  # PEM private key
    client_ca_file: str | None = None  # PEM CA bundle: when set, clients must present a certificate it signed

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file and self.key_file)


@dataclass(frozen=True)
class ServerConfig:
    address: str = "127.0.0.1:50051"
    backend: str = "onnxruntime"
    providers: tuple[str, ...] = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    workers: int = 1
    intra_op_threads: int = 0
    max_batch: int = 8
    max_wait_ms: float = 2.0
    max_sessions: int = 64
    queue_per_session: int = 4
    idle_timeout_s: float = 600.0
    max_message_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    max_pixels_in_flight: int = 0
    max_people: int = 64
    frame_threads: int = 1
    token_file: str | None = None
    tls: TlsConfig = field(default_factory=TlsConfig)
    metrics_port: int | None = 9464
    metrics_address: str = "127.0.0.1"
    log_format: str = "text"
    drain_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        problems = []
        if self.backend not in BACKENDS:
            problems.append(f"backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")
        if not self.providers:
            problems.append("providers is empty: expected at least CPUExecutionProvider")
        for name in (
            "workers",
            "max_batch",
            "max_sessions",
            "queue_per_session",
            "frame_threads",
            "max_message_bytes",
            "max_pixels",
            "max_people",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} is {getattr(self, name)}: expected at least 1")
        for name in ("intra_op_threads", "max_pixels_in_flight"):
            if getattr(self, name) < 0:
                problems.append(f"{name} is {getattr(self, name)}: expected 0 (auto) or more")
        for name in ("max_wait_ms", "drain_timeout_s"):
            if getattr(self, name) < 0:
                problems.append(f"{name} is {getattr(self, name)}: expected 0 or more")
        if self.idle_timeout_s <= 0:
            problems.append(f"idle_timeout_s is {self.idle_timeout_s}: expected more than 0")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            problems.append(f"metrics_port is {self.metrics_port}: expected 0-65535, or null to turn metrics off")
        if self.log_format not in LOG_FORMATS:
            problems.append(f"log_format {self.log_format!r}: expected one of {', '.join(LOG_FORMATS)}")
        if bool(self.tls.cert_file) != bool(self.tls.key_file):
            problems.append("tls needs both cert_file and key_file, or neither")
        if self.tls.client_ca_file and not self.tls.enabled:
            problems.append("tls.client_ca_file needs tls.cert_file and tls.key_file")
        if problems:
            raise ConfigError("; ".join(problems))

    def resolved_intra_op_threads(self) -> int:
        """Threads per inference run: the cores this process may use, shared out between the workers."""
        if self.intra_op_threads:
            return self.intra_op_threads
        return max(1, available_cores() // self.workers)

    def oversubscription(self) -> str | None:
        """None if workers x intra-op threads fit the cores, else a warning saying by how much they do not."""
        cores, threads = available_cores(), self.resolved_intra_op_threads()
        if self.workers * threads <= cores:
            return None
        return (
            f"workers {self.workers} x intra_op_threads {threads} = {self.workers * threads} threads on {cores} cores: "
            f"inference threads will compete; use intra_op_threads: 0 (auto) or fewer workers"
        )

    def token(self) -> str | None:
        """The bearer token clients must send, read from token_file (surrounding whitespace stripped)."""
        if not self.token_file:
            return None
        try:
            token = Path(self.token_file).read_text().strip()
        except OSError as err:
            raise ConfigError(f"token_file {self.token_file}: {err.strerror}") from None
        if not token:
            raise ConfigError(f"token_file {self.token_file} is empty: expected the bearer token")
        return token


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine_memory_bytes() -> int:
    """The memory this process may use: the machine's, or its cgroup's limit when that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def config_from_dict(raw: dict[str, Any], source: str = "config") -> ServerConfig:
    """Settings from a parsed YAML mapping; unknown keys and wrong types are errors naming the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of settings, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {f.name for f in fields(ServerConfig)})
    if unknown:
        raise ConfigError(
            f"{source}: unknown setting(s) {unknown}; known: {sorted(f.name for f in fields(ServerConfig))}"
        )
    hints = typing.get_type_hints(ServerConfig)
    try:
        return replace(ServerConfig(), **{key: check(hints[key], value, key) for key, value in raw.items()})
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def load_config(path: str | Path | None) -> ServerConfig:
    """The defaults, overridden by the YAML file at `path` if given."""
    if path is None:
        return ServerConfig()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    return config_from_dict(raw or {}, str(path))
