"""Every kind of bad input gets the right gRPC status or in-band error, with a message naming the problem and
what was expected, and the server keeps serving: the same session (for a bad frame) and other sessions."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from neurender.engine_plugin.sdk.client import InvalidRequest, ModelNotFound, RenderClient, ServerBusy, Unauthenticated
from neurender.engine_plugin.sdk.common import FrameInputError
from neurender.proto.neurender.v1 import render_pb2, render_pb2_grpc, tensor_pb2
from neurender.proto.tensors import to_tensor
from tests.server_support import DirectStep, label_sequence, running_server

SIZE = 32
MAX_MESSAGE = 16 * 1024


@pytest.fixture(scope="module")
def server(tiny_models_dir):
    with running_server(tiny_models_dir, max_message_bytes=MAX_MESSAGE) as running:
        yield running


@pytest.fixture(scope="module")
def witness(server, tiny_bundle_dir):
    """A session open through all the tests of this module; `check()` renders its next frame and compares it
    with the direct step, proving the server still serves it correctly."""
    labels = label_sequence(40, SIZE, SIZE, seed=9)
    direct = DirectStep(tiny_bundle_dir)
    with RenderClient(server.address) as client, client.session("tiny", (SIZE, SIZE)) as session:

        class Witness:
            t = 0

            def check(self) -> None:
                frame = labels[self.t % len(labels)]
                assert np.array_equal(session.render(labels=frame), direct(frame)), "another session was disturbed"
                self.t += 1

        witness = Witness()
        witness.check()
        yield witness


def open_request(model: str = "tiny", height: int = SIZE, width: int = SIZE, **fields) -> render_pb2.RenderRequest:
    return render_pb2.RenderRequest(open=render_pb2.OpenSession(model=model, height=height, width=width, **fields))


def frame_request(frame_id: int, **tensors: tensor_pb2.Tensor) -> render_pb2.RenderRequest:
    return render_pb2.RenderRequest(frame=render_pb2.Frame(frame_id=frame_id, inputs=render_pb2.FrameInputs(**tensors)))


def exchange(address: str, requests: list[render_pb2.RenderRequest], metadata=()) -> tuple[list, grpc.RpcError | None]:
    """Send a scripted stream; return the responses and the error status the stream ended with (or None)."""
    with grpc.insecure_channel(address) as channel:
        stub = render_pb2_grpc.NeuralRendererStub(channel)
        responses = []
        try:
            for response in stub.Render(iter(requests), metadata=metadata):
                responses.append(response)
        except grpc.RpcError as err:
            return responses, err
        return responses, None


def good(frame_id: int) -> render_pb2.RenderRequest:
    return frame_request(frame_id, labels=to_tensor(label_sequence(3, SIZE, SIZE)[frame_id % 3]))


def truncated() -> tensor_pb2.Tensor:
    tensor = to_tensor(label_sequence(1, SIZE, SIZE)[0])
    tensor.data = tensor.data[:-7]
    return tensor


BAD_FRAMES = {
    "wrong dtype": (
        dict(labels=to_tensor(np.ones((SIZE, SIZE), np.float32))),
        ["dtype is FLOAT32", "expected UINT8 or UINT16"],
    ),
    "wrong shape": (
        dict(labels=to_tensor(np.ones((SIZE, SIZE, 3), np.uint8))),
        ["shape is [32, 32, 3]", "expected [32, 32]"],
    ),
    "wrong size": (
        dict(labels=to_tensor(np.ones((2 * SIZE, SIZE), np.uint8))),
        ["shape is [64, 32]", "expected [32, 32]"],
    ),
    "class out of range": (
        dict(labels=to_tensor(np.full((SIZE, SIZE), 12, np.uint8))),
        ["class ID 12", "classes 0..11"],
    ),
    "truncated bytes": (dict(labels=truncated()), ["1017 data bytes", "expected 1024"]),
    "input the model lacks": (
        dict(labels=to_tensor(np.ones((SIZE, SIZE), np.uint8)), depth=to_tensor(np.ones((SIZE, SIZE), np.float16))),
        ["takes no 'depth'", "may carry labels"],
    ),
    "missing labels": (dict(), ["lacks labels"]),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_frame_is_rejected_in_band_and_the_session_lives_on(server, witness, tiny_bundle_dir, case):
    tensors, phrases = BAD_FRAMES[case]
    responses, error = exchange(
        server.address,
        [
            open_request(),
            good(0),
            frame_request(1, **tensors),
            good(2),
            render_pb2.RenderRequest(end=render_pb2.EndSession()),
        ],
    )
    assert error is None, error
    kinds = [r.WhichOneof("kind") for r in responses]
    assert kinds == ["opened", "frame", "error", "frame"]
    rejected = responses[2].error
    assert rejected.frame_id == 1 and rejected.error.code == "INVALID_ARGUMENT"
    for phrase in phrases:
        assert phrase in rejected.error.message
    # The rejected frame left the history alone: frame 2 follows frame 0 exactly as the direct step does.
    direct = DirectStep(tiny_bundle_dir)
    labels = label_sequence(3, SIZE, SIZE)
    direct(labels[0])
    assert np.frombuffer(responses[3].frame.rgb.data, np.uint8).tobytes() == direct(labels[2]).tobytes()
    witness.check()


BAD_OPENS = {
    "unknown model": (dict(model="nope"), grpc.StatusCode.NOT_FOUND, ["'nope' is not served", "served models: tiny"]),
    "no model": (dict(model=""), grpc.StatusCode.INVALID_ARGUMENT, ["open.model is empty"]),
    "size not a multiple": (dict(height=30), grpc.StatusCode.INVALID_ARGUMENT, ["30x32", "multiple of 4"]),
    "size too small": (dict(height=4, width=4), grpc.StatusCode.INVALID_ARGUMENT, ["outside the model's range"]),
    "no size": (dict(height=0, width=0), grpc.StatusCode.INVALID_ARGUMENT, ["must be set"]),
    "remap out of range": (dict(label_remap={3: 40}), grpc.StatusCode.INVALID_ARGUMENT, ["label_remap", "0..11"]),
    "style for a model without": (
        dict(style_codes=[render_pb2.StyleCode(class_id=0, code=[1.0])]),
        grpc.StatusCode.INVALID_ARGUMENT,
        ["takes no style"],
    ),
    "bad jpeg quality": (dict(jpeg_quality=101), grpc.StatusCode.INVALID_ARGUMENT, ["jpeg_quality is 101", "1-100"]),
}


@pytest.mark.parametrize("case", list(BAD_OPENS))
def test_bad_session_gets_a_status_naming_the_problem(server, witness, case):
    fields, code, phrases = BAD_OPENS[case]
    request = open_request(**{"model": "tiny", "height": SIZE, "width": SIZE, **fields})
    responses, error = exchange(server.address, [request, good(0)])
    assert responses == [] and error is not None
    assert error.code() == code
    for phrase in phrases:
        assert phrase in error.details()
    witness.check()


def test_frames_before_the_open_message(server, witness):
    responses, error = exchange(server.address, [good(0), open_request()])
    assert responses == [] and error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "first message" in error.details() and "'open'" in error.details() and "'frame'" in error.details()
    witness.check()


def test_second_open_ends_the_session(server, witness):
    responses, error = exchange(server.address, [open_request(), good(0), open_request()])
    assert [r.WhichOneof("kind") for r in responses] == ["opened", "frame"]
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "already open" in error.details()
    witness.check()


def test_oversized_message(server, witness):
    big = to_tensor(np.zeros((256, 256), np.uint8))  # 64 KiB > the server's 16 KiB limit
    responses, error = exchange(server.address, [open_request(), good(0), frame_request(1, labels=big)])
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in error.details().lower()
    witness.check()


def test_sdk_raises_the_matching_exceptions(server, witness):
    with RenderClient(server.address) as client:
        with pytest.raises(ModelNotFound, match="not served"):
            client.session("nope", (SIZE, SIZE)).open()
        with pytest.raises(InvalidRequest, match="multiple of 4"):
            client.session("tiny", (SIZE, 30)).open()
        with pytest.raises(ModelNotFound):
            client.get_model("nope")
        with pytest.raises(InvalidRequest, match="class ID 200"):
            client.render_frame("tiny", (SIZE, SIZE), labels=np.full((SIZE, SIZE), 200, np.uint8))
        with pytest.raises(FrameInputError, match="labels dtype is INT64, expected UINT8 or UINT16 class IDs"):
            client.render_frame("tiny", (SIZE, SIZE), labels=np.zeros((SIZE, SIZE), np.int64))
    witness.check()


@pytest.mark.parametrize(
    "name, dtype", [("labels", np.float32), ("instances", np.float32), ("depth", np.uint8), ("edges", np.uint16)]
)
def test_sdk_and_server_refuse_a_frame_input_dtype_in_the_same_words(server, witness, name, dtype):
    inputs = {"labels": np.zeros((SIZE, SIZE), np.uint8), name: np.ones((SIZE, SIZE), dtype)}
    with RenderClient(server.address) as client, pytest.raises(FrameInputError) as refused:
        client.render_frame("tiny", (SIZE, SIZE), **inputs)
    said = refused.value.args[0]
    assert said.startswith(f"{name} dtype is {np.dtype(dtype).name.upper()}, expected")
    if name == "labels":  # what the tiny model takes: the server says the same when it arrives
        responses, error = exchange(
            server.address, [open_request(), frame_request(0, labels=to_tensor(inputs["labels"]))]
        )
        assert responses[-1].error.error.message.endswith(said)
    witness.check()


def test_session_limit(tiny_models_dir):
    with running_server(tiny_models_dir, max_sessions=1) as server, RenderClient(server.address) as client:
        with client.session("tiny", (SIZE, SIZE)) as first:
            with pytest.raises(ServerBusy, match="limit of 1 open sessions"):
                client.session("tiny", (SIZE, SIZE)).open()
            first.render(labels=label_sequence(1, SIZE, SIZE)[0])


def test_bearer_token(tiny_models_dir, tmp_path):
    (tmp_path / "token").write_text("s3cret-token\n")
    with running_server(tiny_models_dir, token_file=str(tmp_path / "token")) as server:
        for token, phrase in ((None, "missing 'authorization'"), ("wrong", "token is wrong")):
            with RenderClient(server.address, token=token) as client:
                with pytest.raises(Unauthenticated, match=phrase):
                    client.list_models()
                with pytest.raises(Unauthenticated, match=phrase):
                    client.session("tiny", (SIZE, SIZE)).open()
        responses, error = exchange(
            server.address, [open_request()], metadata=(("authorization", "Basic s3cret-token"),)
        )
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "Bearer <token>" in error.details()
        with RenderClient(server.address, token="s3cret-token") as client:
            assert [m.name for m in client.list_models()] == ["tiny"]
            with client.session("tiny", (SIZE, SIZE)) as session:
                assert session.render(labels=label_sequence(1, SIZE, SIZE)[0]).shape == (SIZE, SIZE, 3)
