"""Real replicas (`neurender serve` processes) behind the real haproxy on 127.0.0.1: the shipped configuration
(deploy/haproxy/haproxy.cfg) with this machine's replica addresses as its server lines. Used by the
load-balancer test and bench/cluster_bench.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HAPROXY_CFG = Path(__file__).resolve().parent.parent / "deploy" / "haproxy" / "haproxy.cfg"
SERVERS_MARKER = "# One line per replica"


class Replica:
    """`neurender serve` on `address` (default: a free 127.0.0.1 port), logging JSON lines to a file."""

    def __init__(self, models: Path, folder: Path, name: str, settings: str = "", address: str = "127.0.0.1:0") -> None:
        self.name = name
        config = folder / f"{name}.yaml"
        config.write_text(f"address: {address}\nmetrics_port: null\nlog_format: json\n{settings}")
        self.log = folder / f"{name}.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "neurender.cli", "serve", "--models", str(models), "--config", str(config)],
            stderr=self._log_file,
            stdout=subprocess.DEVNULL,
        )
        self.address = ""

    def wait_listening(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"replica {self.name} exited with {self.process.returncode}: {self.log.read_text()[-2000:]}"
                )
            for event in self.events():
                if event.get("event") == "listening":
                    self.address = event["address"]
                    return self.address
            time.sleep(0.05)
        raise RuntimeError(f"replica {self.name} did not listen within {timeout} s")

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def frames_rendered(self) -> int:
        """Frames this replica answered, from its session_closed log lines (sessions closed so far)."""
        return sum(e["frames"] for e in self.events() if e.get("event") == "session_closed")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self._log_file.close()


def haproxy_config(replicas: list[str]) -> str:
    """The shipped configuration with `replicas` (host:port) as its servers."""
    text = HAPROXY_CFG.read_text()
    head = text[: text.index(SERVERS_MARKER)]
    return head + "".join(f"    server replica{i + 1} {address}\n" for i, address in enumerate(replicas))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LoadBalancer:
    """haproxy with the shipped configuration on a free 127.0.0.1 port; its log (server state changes) to a file."""

    def __init__(self, replicas: list[str], folder: Path, check_inter: str = "200ms") -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(haproxy).exists():
            raise FileNotFoundError("haproxy is not installed: apt-get install -y haproxy (Debian 12 ships 2.6)")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        config = folder / "haproxy.cfg"
        config.write_text(haproxy_config(replicas))
        self.log = folder / "haproxy.log"
        self._log_file = self.log.open("w")
        env = dict(
            os.environ,
            NEURENDER_LB_BIND=self.address,
            NEURENDER_CHECK_INTER=check_inter,
            NEURENDER_CHECK_TIMEOUT=check_inter,
        )
        self.process = subprocess.Popen(
            [haproxy, "-db", "-f", str(config)], stderr=self._log_file, stdout=self._log_file, env=env
        )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"haproxy did not listen on {self.address} within {timeout} s")

    def server_went_down(self, index: int) -> bool:
        """Whether haproxy's health check has taken replica `index` (0-based) out of rotation."""
        return f"replicas/replica{index + 1} is DOWN" in self.log.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()
