"""Session and process lifecycle: vanished clients, idle expiry, SIGTERM drain, health, reflection, metrics,
TLS, and the ONNX Runtime path staying free of torch."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from neurender.engine_plugin.sdk.client import RenderClient, ServerUnavailable, SessionExpired
from tests.server_support import DirectStep, label_sequence, running_server


def wait_for(condition, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def test_vanished_client_frees_its_session(tiny_models_dir):
    with running_server(tiny_models_dir) as server:
        script = textwrap.dedent(f"""
            import sys, time, numpy as np
            from neurender.engine_plugin.sdk.client import RenderClient
            client = RenderClient({server.address!r})
            session = client.session("tiny", (32, 32)).open()
            session.render(labels=np.zeros((32, 32), np.uint8))
            print("ready", flush=True)
            time.sleep(60)
        """)
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            streams = server.server.service.streams
            assert len(streams) == 1
            session = next(iter(streams.values())).session
            child.kill()  # no EndSession, no half-close: the process is gone
            wait_for(lambda: not streams, what="the server to drop the vanished client's session")
            assert session.closed and session.history.prev_frames is None
        finally:
            child.kill()
            child.wait()
        with RenderClient(server.address) as client:  # and the server still serves
            assert client.render_frame("tiny", (32, 32), labels=np.zeros((32, 32), np.uint8)).shape == (32, 32, 3)


def test_idle_sessions_expire_and_the_sdk_resumes_them(tiny_models_dir, tiny_bundle_dir):
    labels = label_sequence(3, 32, 32)
    direct = DirectStep(tiny_bundle_dir)
    with running_server(tiny_models_dir, idle_timeout_s=0.3) as server, RenderClient(server.address) as client:
        with (
            client.session("tiny", (32, 32)) as session,
            client.session("tiny", (32, 32), reconnect_timeout_s=0) as fragile,
        ):
            session.render(labels=labels[0])
            fragile.render(labels=labels[0])
            streams = server.server.service.streams
            wait_for(lambda: not streams, timeout=10, what="idle sessions to expire")
            # The history went with the server's session; the SDK reopens with the history it kept.
            direct(labels[0])
            assert np.array_equal(session.render(labels=labels[1]), direct(labels[1]))
            assert session.reconnects == 1
            with pytest.raises(SessionExpired, match="expired after .* without frames"):
                fragile.render(labels=labels[1])


def test_health_and_reflection(tiny_models_dir):
    with running_server(tiny_models_dir) as server, grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "neurender.v1.NeuralRenderer"):
            assert (
                health.Check(health_pb2.HealthCheckRequest(service=service)).status
                == health_pb2.HealthCheckResponse.SERVING
            )
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
        assert "neurender.v1.NeuralRenderer" in services and "grpc.health.v1.Health" in services


def test_metrics_endpoint(tiny_models_dir):
    with running_server(tiny_models_dir, metrics_port=0) as server, RenderClient(server.address) as client:
        with client.session("tiny", (32, 32)) as session:
            for frame in label_sequence(3, 32, 32):
                session.render(labels=frame)
            with pytest.raises(Exception):
                session.render(labels=np.full((32, 32), 99, np.uint8))
            text = (
                urllib.request.urlopen(f"http://127.0.0.1:{server.server.metrics_port}/metrics", timeout=10)
                .read()
                .decode()
            )
            assert 'neurender_sessions{model="tiny"} 1.0' in text
        samples = _samples(text)
        assert samples['neurender_frames_total{model="tiny",outcome="rendered"}'] == 3
        assert samples['neurender_frames_total{model="tiny",outcome="rejected"}'] == 1
        assert samples['neurender_batch_size_count{model="tiny"}'] == 3
        assert samples['neurender_frame_latency_seconds_count{model="tiny",stage="total"}'] == 3
        assert "neurender_queue_depth" in samples


def _samples(text: str) -> dict[str, float]:
    """Prometheus text format -> {series: value}."""
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and line[0] != "#"
    }


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls(tiny_models_dir, tmp_path):
    from neurender.server.config import TlsConfig

    key, cert = _self_signed(tmp_path)
    with running_server(tiny_models_dir, tls=TlsConfig(cert_file=str(cert), key_file=str(key))) as server:
        with RenderClient(server.address, root_certificates=cert.read_bytes()) as client:
            assert [m.name for m in client.list_models()] == ["tiny"]
        with RenderClient(server.address) as plaintext:
            with pytest.raises(ServerUnavailable):
                plaintext.list_models()


def test_the_onnx_runtime_path_imports_neither_torch_nor_training(tiny_models_dir):
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from neurender.server.config import ServerConfig
        from neurender.server.registry import load_registry
        from neurender.server.app import ServerThread
        from neurender.engine_plugin.sdk.client import RenderClient
        config = ServerConfig(address="127.0.0.1:0", metrics_port=0)
        with ServerThread(load_registry({str(tiny_models_dir)!r}, config), config) as server:
            with RenderClient(server.address) as client, client.session("tiny", (32, 32)) as session:
                session.render(labels=np.zeros((32, 32), np.uint8))
        print(sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "neurender.training"))))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_sigterm_drains_in_flight_frames_then_exits(tiny_models_dir, tmp_path):
    config = tmp_path / "serve.yaml"
    config.write_text("address: 127.0.0.1:0\nmetrics_port: 0\nqueue_per_session: 64\nlog_format: json\n")
    server = subprocess.Popen(
        [sys.executable, "-m", "neurender.cli", "serve", "--models", str(tiny_models_dir), "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        events = []
        while not any(e.get("event") == "listening" for e in events):
            line = server.stderr.readline()
            assert line, f"server exited early with {server.wait()}"
            if line.startswith("{"):  # log lines are JSON; libraries may print other lines
                events.append(json.loads(line))
        listening = next(e for e in events if e.get("event") == "listening")
        address, metrics = listening["address"], f"http://127.0.0.1:{listening['metrics_port']}/metrics"

        def received() -> int:  # frames the server has read: rendered or still queued
            samples = _samples(urllib.request.urlopen(metrics, timeout=10).read().decode())
            return int(
                samples.get('neurender_frames_total{model="tiny",outcome="rendered"}', 0)
                + samples["neurender_queue_depth"]
            )

        labels = label_sequence(30, 64, 64)
        with RenderClient(address) as client, grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            session = client.session("tiny", (64, 64), max_in_flight=30).open()
            futures = [session.submit(labels=frame) for frame in labels]
            futures[0].result(timeout=60)
            wait_for(lambda: received() == 30, what="the server to read all 30 frames")
            server.send_signal(signal.SIGTERM)
            status = health.Check(health_pb2.HealthCheckRequest()).status
            assert not all(f.done() for f in futures), "the frames finished before the drain could be seen"
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(ServerUnavailable):
                client.session("tiny", (64, 64)).open()
            results = [f.result(timeout=60) for f in futures]
            assert [r.frame_id for r in results] == list(range(30))
            session.close()
        assert server.wait(timeout=60) == 0
        rest = [json.loads(line) for line in server.stderr.read().splitlines() if line.startswith("{")]
        assert [e["event"] for e in rest if e.get("event") in ("drain", "stopped")] == ["drain", "stopped"]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
