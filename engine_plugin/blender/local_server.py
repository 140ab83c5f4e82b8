# SPDX-License-Identifier: GPL-3.0-or-later
"""`neurender serve` as a child process of Blender, for artists without a terminal. No bpy here.

The server runs from a Python environment that has neurender installed (a venv folder or its python executable,
set in the add-on preferences). Its output is read on a thread into a short tail (shown in the panel) and a log
file; the port it listens on is read from its "listening on HOST:PORT" line, so port 0 lets it pick a free one.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

LISTENING = re.compile(r"listening on (\S+):(\d+)")
TAIL_LINES = 200


class LocalServerError(Exception):
    """The server cannot be started as configured; the message says what to set."""


def server_python(environment: str) -> Path:
    """The Python executable of `environment`: a venv (or conda) folder, or the executable itself."""
    path = Path(os.path.expanduser(environment.strip()))
    if not environment.strip():
        raise LocalServerError(
            "No server environment: set the Python environment with neurender installed in the "
            "neurender add-on preferences (a venv folder or its python executable)."
        )
    if path.is_dir():
        for candidate in (
            path / "bin" / "python",
            path / "Scripts" / "python.exe",
            path / "python.exe",
            path / "python",
        ):
            if candidate.is_file():
                return candidate
        raise LocalServerError(
            f"{path} holds no bin/python or Scripts/python.exe: expected a Python environment "
            "with neurender installed (`pip install neurender`)"
        )
    if not path.is_file():
        raise LocalServerError(f"{path} does not exist: expected a Python environment with neurender installed")
    return path


def installed_models(python: Path) -> Path:
    """The model bundles installed with neurender in that environment (the demo models)."""
    probe = subprocess.run(
        [str(python), "-c", "import neurender, pathlib; print(pathlib.Path(neurender.__file__).parent / 'models')"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        raise LocalServerError(
            f"{python} cannot import neurender ({probe.stderr.strip().splitlines()[-1:] or ['?']}): "
            "install it there with `pip install neurender`, or pick another environment"
        )
    return Path(probe.stdout.strip())


class LocalServer:
    """One `neurender serve` child process: start, state, log tail, stop."""

    def __init__(self, python: Path, models: Path, port: int, log_path: Path) -> None:
        self.command = [
            str(python),
            "-m",
            "neurender.cli",
            "serve",
            "--models",
            str(models),
            "--address",
            f"127.0.0.1:{port}",
            "--no-metrics",
        ]  # an artist's server needs no Prometheus port (and another may hold it)
        self.log_path = log_path
        self.port: int | None = None  # known once the server says it listens
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._stopped_by_us = False

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        flags = subprocess.CREATE_NEW_PROCESS_GROUP if sys.platform == "win32" else 0
        try:
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                creationflags=flags,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        except OSError as err:
            raise LocalServerError(f"cannot run {self.command[0]}: {err}") from None
        self._reader = threading.Thread(target=self._read, name="neurender-local-server", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            for line in self._process.stdout:
                log.write(line)
                log.flush()
                line = line.rstrip()
                with self._lock:
                    self._tail.append(line)
                    found = LISTENING.search(line)
                    if found and self.port is None:
                        self.port = int(found.group(2))

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def address(self) -> str | None:
        return f"127.0.0.1:{self.port}" if self.port is not None and self.running else None

    def ended(self, address: str) -> bool:
        """Whether this server listened on `address` and has exited since (not stopped by us)."""
        return (
            self.port is not None
            and address == f"127.0.0.1:{self.port}"
            and not self.running
            and not self._stopped_by_us
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def state(self) -> str:
        """starting, running (listening), stopped (by Stop) or exited with its code."""
        if self._process is None:
            return "not started"
        code = self._process.poll()
        if code is None:
            return f"running on 127.0.0.1:{self.port}" if self.port is not None else "starting"
        return "stopped" if self._stopped_by_us else f"exited with code {code}"

    def tail(self, lines: int) -> list[str]:
        with self._lock:
            return list(self._tail)[-lines:]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it (SIGTERM drains its sessions), killing it if it does not end within `timeout`."""
        if self._process is None or self._process.poll() is not None:
            return
        self._stopped_by_us = True
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
