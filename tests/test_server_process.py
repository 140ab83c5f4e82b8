"""`neurender serve` as a process: startup failures are one line naming the port or file (exit 2, nothing
reported as serving first), and a drain that times out names the frames it did not deliver (exit 1)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np

from neurender.proto.neurender.v1 import render_pb2, render_pb2_grpc
from neurender.proto.tensors import to_tensor
from tests.server_support import label_sequence


def serve(models: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "neurender.cli", "serve", "--log-format", "json", "--models", str(models), *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def events(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_startup_failures_name_the_port_or_file(tiny_models_dir, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    (tmp_path / "garbage.pem").write_bytes(np.random.default_rng(0).bytes(600))
    (tmp_path / "tls.yaml").write_text(
        f"tls:\n  cert_file: {tmp_path / 'garbage.pem'}\n  key_file: {tmp_path / 'garbage.pem'}\n"
    )
    cases = [
        (
            ["--address", f"127.0.0.1:{port}", "--no-metrics"],
            f"cannot listen on 127.0.0.1:{port}: Address already in use",
        ),
        (
            ["--address", "127.0.0.1:0", "--metrics-address", f"127.0.0.1:{port}"],
            f"cannot serve metrics on 127.0.0.1:{port}: Address already in use",
        ),
        (
            ["--address", "127.0.0.1:0", "--no-metrics", "--config", str(tmp_path / "tls.yaml")],
            f"tls: {tmp_path / 'garbage.pem'} is not a PEM certificate chain",
        ),
        (["--metrics-address", "9464"], "--metrics-address '9464': expected HOST:PORT"),
    ]
    try:
        for args, phrase in cases:
            process = serve(tiny_models_dir, *args)
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 2, stderr
            lines = stderr.strip().splitlines()
            assert lines[-1].startswith("neurender serve: ") and phrase in lines[-1], stderr
            assert "Traceback" not in stderr and not any(e.get("event") == "listening" for e in events(lines)), stderr
    finally:
        busy.close()


def test_no_metrics_and_metrics_address(tiny_models_dir):
    for args, metrics in ((["--no-metrics"], False), (["--metrics-address", "127.0.0.1:0"], True)):
        process = serve(tiny_models_dir, "--address", "127.0.0.1:0", *args)
        try:
            listening = wait_listening(process)
            assert (listening["metrics_port"] is not None) == metrics
            if metrics:
                assert (
                    b"neurender_queue_depth"
                    in urllib.request.urlopen(
                        f"http://127.0.0.1:{listening['metrics_port']}/metrics", timeout=10
                    ).read()
                )
        finally:
            process.terminate()
            process.wait(timeout=60)


def wait_listening(process: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        assert line, f"the server exited with {process.wait()}"
        if line.startswith("{") and json.loads(line).get("event") == "listening":
            return json.loads(line)
    raise AssertionError("the server did not report listening within 120 s")


def test_a_timed_out_drain_names_the_undelivered_frames_and_exits_non_zero(tiny_models_dir, tmp_path):
    (tmp_path / "serve.yaml").write_text(
        "address: 127.0.0.1:0\nmetrics_port: 0\nqueue_per_session: 64\ndrain_timeout_s: 0\n"
    )
    process = serve(tiny_models_dir, "--config", str(tmp_path / "serve.yaml"))
    try:
        listening = wait_listening(process)
        frames = [
            render_pb2.RenderRequest(
                frame=render_pb2.Frame(frame_id=t, inputs=render_pb2.FrameInputs(labels=to_tensor(f)))
            )
            for t, f in enumerate(label_sequence(12, 256, 256))
        ]
        opening = render_pb2.RenderRequest(open=render_pb2.OpenSession(model="tiny", height=256, width=256))
        metrics = f"http://127.0.0.1:{listening['metrics_port']}/metrics"
        with grpc.insecure_channel(listening["address"]) as channel:
            # A client that stops reading: rendered frames cannot be delivered to it.
            call = render_pb2_grpc.NeuralRendererStub(channel).Render(iter([opening, *frames]))
            deadline = time.monotonic() + 60
            while b'outcome="rendered"} 1' not in urllib.request.urlopen(metrics, timeout=10).read():
                assert time.monotonic() < deadline, "no frame was rendered within 60 s"
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 1
            call.cancel()
        logged = events(process.stderr.read().splitlines())
        incomplete = [e for e in logged if e.get("event") == "drain_incomplete"]
        assert len(incomplete) == 1 and incomplete[0]["frames"] >= 1, logged
        assert "were not delivered" in incomplete[0]["msg"] and "session " in incomplete[0]["msg"]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
