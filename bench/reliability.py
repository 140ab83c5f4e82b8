"""Reliability benchmark: what hostile or heavy clients cost everyone else, against a `neurender serve` process.

    python -m neurender.bench.reliability [--models DIR] [--rounds 3]

Prints
  - stalls: the worst health-check latency and the worst frame latency of another (32x32) session while one
    client sends the largest frames the server will take on: keypoint frames of 60,000 people (18 MB) and of
    max_people people, and 2048x2048 label frames (8 MB, the model's largest) that fail their class check;
  - memory: the server's peak RSS while 4 clients send one 1024x1024 RenderFrame each (default budget, and a
    budget of one such frame), and while 4 clients send 60 MB RenderFrame requests without the bearer token.
Without --models it exports the tiny and tiny-pose presets with random weights (needs the [train] extra).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from neurender.proto.neurender.v1 import render_pb2, render_pb2_grpc
from neurender.proto.tensors import to_tensor

BIG = 64 << 20
CHANNEL = [("grpc.max_send_message_length", BIG), ("grpc.max_receive_message_length", BIG)]


class Server:
    """`neurender serve` with extra settings; stderr to a file; peak RSS from /proc."""

    def __init__(self, models: Path, folder: Path, settings: str = "") -> None:
        config = folder / "serve.yaml"
        config.write_text(f"address: 127.0.0.1:0\nmetrics_port: null\nlog_format: json\n{settings}")
        self.log = folder / "serve.log"
        self._log = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "neurender.cli", "serve", "--models", str(models), "--config", str(config)],
            stderr=self._log,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            for line in self.log.read_text().splitlines():
                if line.startswith("{") and json.loads(line).get("event") == "listening":
                    self.address = json.loads(line)["address"]
                    return
            time.sleep(0.1)
        raise RuntimeError("server did not start within 120 s")

    def rss_mb(self, field: str = "VmHWM") -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field} in /proc/{self.process.pid}/status")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self._log.close()


def heavy_frames(people: int) -> dict[str, list[render_pb2.RenderRequest]]:
    rng = np.random.default_rng(0)

    def keypoints(n: int) -> render_pb2.RenderRequest:
        kp = (rng.random((n, 25, 3)) * [256, 256, 1]).astype(np.float32)
        return render_pb2.RenderRequest(frame=render_pb2.Frame(inputs=render_pb2.FrameInputs(keypoints=to_tensor(kp))))

    labels = np.full((2048, 2048), 999, np.uint16)
    return {
        "keypoints, 60,000 people (18 MB)": [keypoints(60000)],
        f"keypoints, {people} people": [keypoints(people)],
        "labels 2048x2048 uint16 (8 MB), bad class": [
            render_pb2.RenderRequest(frame=render_pb2.Frame(inputs=render_pb2.FrameInputs(labels=to_tensor(labels))))
        ],
    }


def stall(
    server: Server, model: str, pose_model: str, load: list[render_pb2.RenderRequest], seconds: float
) -> tuple[float, float, int]:
    """(worst health latency ms, worst other-session frame latency ms, heavy frames sent) while one client
    streams `load` frames to a pose session (a Render stream at 2048x2048 for labels, 256x256 for keypoints)."""
    stop = threading.Event()
    health_worst, frame_worst, sent = [0.0], [0.0], [0]

    def heavy() -> None:
        with grpc.insecure_channel(server.address, options=CHANNEL) as channel:
            stub = render_pb2_grpc.NeuralRendererStub(channel)
            labels = load[0].frame.inputs.HasField("labels")
            opening = render_pb2.RenderRequest(
                open=render_pb2.OpenSession(
                    model=model if labels else pose_model, height=2048 if labels else 256, width=2048 if labels else 256
                )
            )

            def requests():
                yield opening
                frame_id = 0
                while not stop.is_set():
                    request = render_pb2.RenderRequest()
                    request.CopyFrom(load[frame_id % len(load)])
                    request.frame.frame_id = frame_id
                    yield request
                    sent[0] += 1
                    frame_id += 1
                    time.sleep(0.001)

            try:
                for _ in stub.Render(requests(), timeout=seconds + 60):
                    pass
            except grpc.RpcError:
                pass

    def health() -> None:
        with grpc.insecure_channel(server.address) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            while not stop.is_set():
                start = time.perf_counter()
                check(health_pb2.HealthCheckRequest(), timeout=60)
                health_worst[0] = max(health_worst[0], time.perf_counter() - start)
                time.sleep(0.005)

    def other() -> None:
        labels = np.zeros((32, 32), np.uint8)
        with grpc.insecure_channel(server.address) as channel:
            stub = render_pb2_grpc.NeuralRendererStub(channel)
            answered = threading.Semaphore(0)
            times: list[float] = []

            def requests():
                yield render_pb2.RenderRequest(open=render_pb2.OpenSession(model=model, height=32, width=32))
                frame_id = 0
                while not stop.is_set():
                    times.append(time.perf_counter())
                    yield render_pb2.RenderRequest(
                        frame=render_pb2.Frame(
                            frame_id=frame_id, inputs=render_pb2.FrameInputs(labels=to_tensor(labels))
                        )
                    )
                    answered.acquire()
                    frame_id += 1
                yield render_pb2.RenderRequest(end=render_pb2.EndSession())

            for response in stub.Render(requests(), timeout=seconds + 60):
                if response.WhichOneof("kind") == "frame":
                    frame_worst[0] = max(frame_worst[0], time.perf_counter() - times[response.frame.frame_id])
                    answered.release()

    threads = [threading.Thread(target=f) for f in (health, other)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # both probes running before the load starts
    loader = threading.Thread(target=heavy)
    loader.start()
    time.sleep(seconds)
    stop.set()
    for t in (*threads, loader):
        t.join(timeout=120)
    return health_worst[0] * 1e3, frame_worst[0] * 1e3, sent[0]


def peak_rss(server: Server, requests: list[bytes], token: str | None = None) -> tuple[float, float, list[str]]:
    """(RSS before, peak RSS, status codes) for these RenderFrame requests sent at once."""
    before = server.rss_mb("VmRSS")
    with grpc.insecure_channel(server.address, options=CHANNEL) as channel:
        call = channel.unary_unary(
            "/neurender.v1.NeuralRenderer/RenderFrame",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )

        def one(request: bytes) -> str:
            try:
                call(request, timeout=600, metadata=(("authorization", f"Bearer {token}"),) if token else ())
                return "OK"
            except grpc.RpcError as err:
                return err.code().name

        with ThreadPoolExecutor(len(requests)) as pool:
            codes = list(pool.map(one, requests))
    return before, server.rss_mb(), codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="a folder with the bundles 'tiny' (segmentation) and 'tiny-pose'")
    parser.add_argument("--seconds", type=float, default=8.0, help="load time per stall measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        models = args.models or export_models(folder / "models")
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
        print(f"{'stall: one client sends':<48} {'frames':>6} {'worst health ms':>16} {'worst other-session ms':>23}")
        server = Server(models, folder)
        try:
            for name, load in heavy_frames(64).items():
                health_ms, frame_ms, sent = stall(server, "tiny", "tiny-pose", load, args.seconds)
                print(f"{name:<48} {sent:>6} {health_ms:>16.1f} {frame_ms:>23.1f}")
        finally:
            server.stop()
        frame = render_pb2.RenderFrameRequest(
            session=render_pb2.OpenSession(model="tiny", height=1024, width=1024),
            inputs=render_pb2.FrameInputs(labels=to_tensor(np.zeros((1024, 1024), np.uint8))),
        )
        print(f"\n{'memory: 4 concurrent RenderFrame calls':<56} {'RSS before MB':>13} {'peak MB':>8}  codes")
        for label, settings in (
            ("1024x1024, default budget", ""),
            ("1024x1024, max_pixels_in_flight one such frame", f"max_pixels_in_flight: {1024 * 1024}\n"),
        ):
            try:
                server = Server(models, folder, settings)
            except RuntimeError:  # a server without this setting
                print(f"{label:<56} {'(setting unknown to this server)':>24}")
                continue
            try:
                before, peak, codes = peak_rss(server, [frame.SerializeToString()] * 4)
            finally:
                server.stop()
            print(f"{label:<56} {before:>13.0f} {peak:>8.0f}  {' '.join(sorted(set(codes)))}")
        (folder / "token").write_text("secret\n")
        big = render_pb2.RenderFrameRequest(
            session=render_pb2.OpenSession(model="tiny", height=4096, width=4096),
            inputs=render_pb2.FrameInputs(labels=to_tensor(np.zeros((7500, 4096), np.uint16))),
        )
        server = Server(models, folder, f"token_file: {folder / 'token'}\n")
        try:
            before, peak, codes = peak_rss(server, [big.SerializeToString()] * 4)
        finally:
            server.stop()
        print(f"{'60 MB each, no bearer token':<56} {before:>13.0f} {peak:>8.0f}  {' '.join(sorted(set(codes)))}")


def export_models(root: Path) -> Path:
    import torch

    from neurender.training.model.bundle_export import BundleInfo, export_bundle
    from neurender.training.model.config import PRESETS
    from neurender.training.model.generator import Vid2VidGenerator

    for name in ("tiny", "tiny-pose"):
        torch.manual_seed(0)
        export_bundle(Vid2VidGenerator(PRESETS[name]), root / name, BundleInfo(name=name))
    return root


if __name__ == "__main__":
    main()
