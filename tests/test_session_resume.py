"""Resumable sessions: a session reopened with its history (OpenSession.resume) continues exactly as the original
would have; a bad history is refused naming what is wrong; the SDK reconnects within its time budget across a
real server killed and restarted, and says how long it tried when the server stays away."""

from __future__ import annotations

import re
import signal
import time

import grpc
import numpy as np
import pytest

from neurender.bench.cluster import Replica, free_port
from neurender.engine_plugin.sdk.client import RenderClient, ServerUnavailable
from neurender.engine_plugin.sdk.common import frame_inputs, open_message
from neurender.proto.neurender.v1 import render_pb2, render_pb2_grpc
from neurender.proto.tensors import to_tensor
from tests.server_support import DirectStep, label_sequence, running_server


def wait_for(predicate, timeout: float, what: str) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.parametrize("cut_after", [1, 3])
def test_an_expired_session_resumes_with_style_and_remap_bit_identical(tiny_style_models_dir, cut_after):
    """History 2: after 1 frame the server pads the state, after 3 the client sends only the last 2."""
    labels = label_sequence(5, 32, 32)
    options = dict(style_seed=7, label_remap={1: 2, 5: 0})
    with running_server(tiny_style_models_dir, idle_timeout_s=0.3) as server, RenderClient(server.address) as client:
        with client.session("tiny-style", (32, 32), **options) as session:
            expected = [session.render(labels=f) for f in labels]
        with client.session("tiny-style", (32, 32), **options) as session:
            got = [session.render(labels=f) for f in labels[:cut_after]]
            wait_for(lambda: not server.server.service.streams, timeout=10, what="the session to expire")
            got += [session.render(labels=f) for f in labels[cut_after:]]
            assert session.reconnects == 1
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


def _open(stub, resume: render_pb2.SessionState, frame: np.ndarray | None = None) -> None:
    request = render_pb2.RenderRequest(open=open_message("tiny", (32, 32)))
    request.open.resume.CopyFrom(resume)
    responses = stub.Render(iter([request, render_pb2.RenderRequest(end=render_pb2.EndSession())]))
    for _ in responses:
        pass


def _state(labels: list[np.ndarray], frames: list[np.ndarray], **extra: np.ndarray) -> render_pb2.SessionState:
    state = render_pb2.SessionState()
    for entry in labels:
        state.labels.append(frame_inputs({"labels": entry, **extra}))
    for frame in frames:
        state.frames.append(to_tensor(frame))
    return state


@pytest.mark.parametrize(
    "state, message",
    [
        (lambda l, f: _state(l[:2], f[:1]), "2 label entries and 1 frames"),
        (lambda l, f: _state(l, f), "has 3 entries; model tiny keeps a history of 2 frames"),
        (
            lambda l, f: _state(l[:1], [f[0][:16]]),
            r"open.resume.frames\[0\] is UINT8 \[16, 32, 3\], expected UINT8 \[32, 32, 3\]",
        ),
        (lambda l, f: _state(l[:1], f[:1], edges=l[0]), r"open.resume.labels\[0\] carries edges"),
        (
            lambda l, f: _state([np.full((32, 32), 40, np.uint8)], f[:1]),
            r"open.resume.labels\[0\]: labels hold class ID 40",
        ),
    ],
)
def test_a_bad_resume_state_is_refused_naming_what_is_wrong(tiny_models_dir, state, message):
    labels = label_sequence(3, 32, 32)
    frames = [np.zeros((32, 32, 3), np.uint8)] * 3
    with running_server(tiny_models_dir) as server, grpc.insecure_channel(server.address) as channel:
        stub = render_pb2_grpc.NeuralRendererStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            _open(stub, state(labels, frames))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert re.search(message, err.value.details()), err.value.details()
        with pytest.raises(grpc.RpcError, match="RenderFrame renders one frame without history"):
            request = render_pb2.RenderFrameRequest(
                session=open_message("tiny", (32, 32)), inputs=frame_inputs({"labels": labels[0]})
            )
            request.session.resume.CopyFrom(_state(labels[:1], frames[:1]))
            stub.RenderFrame(request)


def test_reconnect_backs_off_across_a_killed_and_restarted_server_then_gives_up_after_its_budget(
    tiny_models_dir, tiny_bundle_dir, tmp_path
):
    labels = label_sequence(6, 32, 32)
    direct = DirectStep(tiny_bundle_dir, threads=1)
    expected = [direct(f) for f in labels]
    address = f"127.0.0.1:{free_port()}"
    settings = "intra_op_threads: 1\n"
    first = Replica(tiny_models_dir, tmp_path, "first", settings, address)
    restarted = None
    try:
        first.wait_listening()
        with RenderClient(address) as client:
            session = client.session("tiny", (32, 32), reconnect_timeout_s=60).open()
            got = [session.render(labels=f) for f in labels[:3]]
            first.stop(signal.SIGKILL)
            restarted = Replica(tiny_models_dir, tmp_path, "restarted", settings, address)  # the outage: its start-up
            got += [session.render(labels=f) for f in labels[3:5]]
            assert session.reconnects == 1
            assert all(np.array_equal(a, b) for a, b in zip(got, expected[:5], strict=True))
            session.close()

            brief = client.session("tiny", (32, 32), reconnect_timeout_s=1.5).open()
            brief.render(labels=labels[0])
            restarted.stop(signal.SIGKILL)
            started = time.monotonic()
            with pytest.raises(
                ServerUnavailable,
                match=r"gave up reconnecting after 1\.\d s and \d+ attempt\(s\) "
                r"\(reconnect_timeout_s 1\.5\)",
            ):
                brief.render(labels=labels[1])
            assert time.monotonic() - started >= 1.5
            brief.close()
    finally:
        for replica in (first, restarted):
            if replica is not None:
                replica.stop(signal.SIGKILL, timeout=10)


def test_the_sdk_history_mirrors_resets_and_drop_stale_cuts():
    from neurender.engine_plugin.sdk.common import FrameHistory

    labels = label_sequence(4, 8, 8)

    def answered(history: FrameHistory, t: int, reset: bool = False) -> None:
        sent = render_pb2.Frame(
            frame_id=t, reset=reset, inputs=frame_inputs({"labels": labels[t], "depth": np.zeros((8, 8), np.float16)})
        )
        image = np.full((8, 8, 3), t, np.uint8)
        history.add(sent, render_pb2.RenderedFrame(frame_id=t, encoding=render_pb2.RAW, rgb=to_tensor(image)), image)

    def state(history: FrameHistory) -> render_pb2.SessionState:
        written = render_pb2.SessionState()
        history.write(written)
        return written

    history = FrameHistory()
    history.keep(2)
    for t in range(3):
        answered(history, t)
    written = state(history)
    assert [f.data[0] for f in written.frames] == [1, 2]  # the last history_length frames, oldest first
    assert all(entry.HasField("labels") and not entry.HasField("depth") for entry in written.labels)
    answered(history, 3, reset=True)
    assert len(history) == 1
    history.dropped(render_pb2.Frame(frame_id=4, reset=True))  # a DROP_STALE cut passes to the next answered frame
    answered(history, 0)
    assert [f.data[0] for f in state(history).frames] == [0]
