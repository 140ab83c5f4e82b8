"""A bounded fuzz of every NeuralRenderer request type against a real server: random bytes, random messages
built from the descriptors (extreme numbers, NaN, unknown enum values, huge repeated fields and maps), and
Render streams of random frames after valid and random opens. No call may end UNKNOWN, and afterwards the
server still answers health checks and renders a correct frame."""

from __future__ import annotations

import os
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from neurender.engine_plugin.sdk.client import RenderClient
from neurender.proto.neurender.v1 import render_pb2, tensor_pb2
from tests.server_support import DirectStep, label_sequence, running_server

CALLS = 400  # at most this many calls ...
SECONDS = 12.0  # ... within about this long
SEED = int(os.environ.get("NEURENDER_FUZZ_SEED", "0"))
FD = descriptor.FieldDescriptor
INTS = [0, 1, 2, 3, 4, 31, 32, 255, 256, 2**15, 2**16 - 1, 2**31 - 1, 2**32 - 1, 2**62, 2**63 - 1, 2**64 - 1]
SIGNED = [-1, -(2**31), -(2**63), 2**62, 2**63 - 1]
FLOATS = [0.0, -0.0, 1.0, -1.0, 1e-45, 1e30, -1e30, 3.4e38, float("nan"), float("inf"), float("-inf")]
SIZES = [
    [32, 32],
    [32, 32, 2],
    [32, 32, 3],
    [1, 25, 3],
    [64, 64],
    [0],
    [0, 2**62],
    [2**62, 4],
    [-1, 32],
    [2**31, 2**31],
]


class Fuzzer:
    def __init__(self, seed: int, models: list[str]) -> None:
        self.rng = np.random.default_rng(seed)
        self.models = models

    def pick(self, options: list):
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def scalar(self, field: descriptor.FieldDescriptor, name: str):
        t = field.type
        if t in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
            return self.pick([v for v in INTS if v < 2**32])
        if t in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
            return self.pick(INTS)
        if t in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
            return self.pick([v for v in INTS + SIGNED if -(2**31) <= v < 2**31])
        if t in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
            return self.pick([v for v in INTS + SIGNED if -(2**63) <= v < 2**63])
        if t in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
            return self.pick(FLOATS)
        if t == FD.TYPE_BOOL:
            return self.chance(0.5)
        if t == FD.TYPE_ENUM:
            return self.pick([v.number for v in field.enum_type.values] + [-1, 7, 2**31 - 1])
        if t == FD.TYPE_STRING:
            return (
                self.pick(self.models + ["", "nope", "\u00e9" * 3, "x" * 10000])
                if name == "model" or name == "name"
                else "s"
            )
        return self.rng.bytes(int(self.pick([0, 1, 7, 1024, 4096, 3072])))

    def message(self, message: Message, depth: int = 0) -> Message:
        for field in message.DESCRIPTOR.fields:
            if not self.chance(0.6) or (field.containing_oneof and message.WhichOneof(field.containing_oneof.name)):
                continue
            huge = self.chance(0.05)
            count = int(self.pick([100_000, 10_000])) if huge else int(self.rng.integers(1, 4))
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
                target = getattr(message, field.name)
                for _ in range(count):
                    target[self.scalar(key, "")] = self.scalar(value, "")
            elif field.is_repeated and field.message_type is not None:
                if depth < 3:
                    for _ in range(count if not huge else 1000):
                        self.message(getattr(message, field.name).add(), depth + 1)
            elif field.is_repeated:
                values = [self.scalar(field, field.name) for _ in range(min(count, 50))]
                getattr(message, field.name).extend((values * (count // len(values) + 1))[:count])
            elif field.message_type is not None:
                if depth < 3:
                    self.message(getattr(message, field.name), depth + 1)
                    if field.message_type.full_name == "neurender.v1.Tensor":
                        self.tensor(getattr(message, field.name))
            else:
                setattr(message, field.name, self.scalar(field, field.name))
        return message

    def tensor(self, tensor: tensor_pb2.Tensor) -> None:
        """Often a plausible tensor: a frame-sized shape with the right number of bytes, or nearly."""
        if self.chance(0.5):
            return
        tensor.dtype = self.pick(
            [tensor_pb2.UINT8, tensor_pb2.UINT16, tensor_pb2.FLOAT16, tensor_pb2.FLOAT32, tensor_pb2.INT32]
        )
        shape = self.pick(SIZES)
        tensor.ClearField("shape")
        tensor.shape.extend(shape)
        size = (
            int(np.prod(shape))
            * np.dtype({1: "u1", 2: "u2", 4: "i4", 3: "f2", 5: "f4"}.get(tensor.dtype, "u1")).itemsize
        )
        if 0 <= size <= 1 << 20:
            tensor.data = self.rng.bytes(size + self.pick([0, 0, 0, -1, 1]) if size else 0)

    def open(self) -> render_pb2.OpenSession:
        if self.chance(0.3):
            return self.message(render_pb2.OpenSession())
        return render_pb2.OpenSession(
            model=self.pick(self.models),
            height=32,
            width=32,
            encoding=self.pick([0, 1, 2]),
            drop_policy=self.pick([0, 1]),
        )

    def render_requests(self) -> list:
        if self.chance(0.1):
            return [self.rng.bytes(int(self.rng.integers(0, 200)))]
        requests = [render_pb2.RenderRequest(open=self.open()).SerializeToString()]
        for frame_id in range(int(self.rng.integers(0, 6))):
            roll = self.rng.random()
            if roll < 0.1:
                requests.append(self.rng.bytes(int(self.rng.integers(1, 100))))
            elif roll < 0.2:
                requests.append(self.message(render_pb2.RenderRequest()).SerializeToString())
            else:
                frame = render_pb2.Frame(frame_id=frame_id, reset=self.chance(0.2))
                self.message(frame.inputs)
                requests.append(render_pb2.RenderRequest(frame=frame).SerializeToString())
        if self.chance(0.5):
            requests.append(render_pb2.RenderRequest(end=render_pb2.EndSession()).SerializeToString())
        return requests


UNARY = {
    "RenderFrame": render_pb2.RenderFrameRequest,
    "ListModels": render_pb2.ListModelsRequest,
    "GetModel": render_pb2.GetModelRequest,
}


@pytest.fixture(scope="module")
def models_dir(tiny_models_dir, tiny_pose_models_dir, tiny_engine_models_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-models")
    for source in (
        tiny_models_dir / "tiny",
        tiny_pose_models_dir / "tiny-pose",
        tiny_engine_models_dir / "tiny-engine",
    ):
        (folder / source.name).symlink_to(source)
    return folder


def test_fuzz_every_request_type(models_dir, tiny_models_dir):
    fuzz = Fuzzer(SEED, ["tiny", "tiny-pose", "tiny-engine"])
    codes: dict[str, int] = {}
    unknown: list[str] = []
    with running_server(models_dir, max_message_bytes=64 << 20) as server:
        options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        with grpc.insecure_channel(server.address, options=options) as channel:
            raw = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
            deadline = time.monotonic() + SECONDS
            for call in range(CALLS):
                if time.monotonic() > deadline:
                    break
                method = fuzz.pick(["Render", "Render", *UNARY])
                path = f"/neurender.v1.NeuralRenderer/{method}"
                try:
                    if method == "Render":
                        requests = fuzz.render_requests()
                        list(channel.stream_stream(path, **raw)(iter(requests), timeout=30))
                    else:
                        request = (
                            fuzz.rng.bytes(int(fuzz.rng.integers(0, 300)))
                            if fuzz.chance(0.3)
                            else fuzz.message(UNARY[method]()).SerializeToString()
                        )
                        channel.unary_unary(path, **raw)(request, timeout=30)
                    code = "OK"
                except grpc.RpcError as err:
                    code = err.code().name
                    if err.code() == grpc.StatusCode.UNKNOWN:
                        unknown.append(f"call {call} {method}: {err.details()[:300]}")
                codes[code] = codes.get(code, 0) + 1
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        labels = label_sequence(2, 32, 32)
        with RenderClient(server.address) as client, client.session("tiny", (32, 32)) as session:
            direct = DirectStep(tiny_models_dir / "tiny")
            for frame in labels:
                assert np.array_equal(session.render(labels=frame), direct(frame))
    assert sum(codes.values()) >= 50, codes
    assert not unknown, f"seed {SEED}: {len(unknown)} UNKNOWN of {codes}: {unknown[:3]}"
    print(f"fuzz seed {SEED}: {codes}")
