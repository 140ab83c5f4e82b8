"""Hostile and careless inputs against a real server: poisoned floats, overflowing shapes, undecodable bytes,
frames after EndSession, expensive keypoint frames, the memory budget and unauthenticated payloads. Each bad
input is refused with a status or in-band error naming it; the server and other sessions keep going."""

from __future__ import annotations

import logging
import re
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from neurender.engine_plugin.sdk.client import InvalidRequest, RenderClient, ServerBusy, Unauthenticated
from neurender.proto.neurender.v1 import render_pb2, tensor_pb2
from tests.server_support import DirectStep, label_sequence, running_server
from tests.test_server_errors import exchange, frame_request, good, open_request

SIZE = 32
END = render_pb2.RenderRequest(end=render_pb2.EndSession())
OVERFLOWING = tensor_pb2.Tensor(dtype=tensor_pb2.UINT8, shape=[2**62, 4], data=b"")


@pytest.fixture(scope="module")
def server(tiny_models_dir):
    with running_server(tiny_models_dir) as running:
        yield running


def kinds(responses: list[render_pb2.RenderResponse]) -> list[str]:
    return [r.WhichOneof("kind") for r in responses]


def rgb(response: render_pb2.RenderResponse) -> np.ndarray:
    return np.frombuffer(response.frame.rgb.data, np.uint8).reshape(SIZE, SIZE, 3)


def test_a_shape_whose_size_overflows_is_a_bad_frame(server, tiny_bundle_dir):
    responses, error = exchange(
        server.address, [open_request(), good(0), frame_request(1, labels=OVERFLOWING), good(2), END]
    )
    assert error is None, error
    assert kinds(responses) == ["opened", "frame", "error", "frame"]
    assert responses[2].error.error.code == "INVALID_ARGUMENT"
    assert "0 data bytes for shape [4611686018427387904, 4]" in responses[2].error.error.message
    direct = DirectStep(tiny_bundle_dir)
    labels = label_sequence(3, SIZE, SIZE)
    direct(labels[0])
    assert np.array_equal(rgb(responses[3]), direct(labels[2])), "the bad frame touched the session's history"
    with grpc.insecure_channel(server.address) as channel:
        render_frame = channel.unary_unary(
            "/neurender.v1.NeuralRenderer/RenderFrame",
            request_serializer=render_pb2.RenderFrameRequest.SerializeToString,
            response_deserializer=render_pb2.RenderFrameResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as err:
            render_frame(
                render_pb2.RenderFrameRequest(
                    session=open_request().open, inputs=render_pb2.FrameInputs(labels=OVERFLOWING)
                ),
                timeout=30,
            )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "0 data bytes" in err.value.details()


@pytest.mark.parametrize(
    "method, request_type",
    [
        ("Render", "RenderRequest"),
        ("RenderFrame", "RenderFrameRequest"),
        ("ListModels", "ListModelsRequest"),
        ("GetModel", "GetModelRequest"),
    ],
)
def test_undecodable_bytes_get_invalid_argument_and_one_log_line(server, caplog, method, request_type):
    caplog.set_level(logging.INFO)
    with grpc.insecure_channel(server.address) as channel:
        path = f"/neurender.v1.NeuralRenderer/{method}"
        raw = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as err:
                if method == "Render":
                    list(channel.stream_stream(path, **raw)(iter([b"\xff\xff\xff"]), timeout=30))
                else:
                    channel.unary_unary(path, **raw)(b"\xff\xff\xff", timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert f"not a valid neurender.v1.{request_type} protobuf message" in err.value.details()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert len([r for r in caplog.records if "not a valid" in r.getMessage()]) <= 1, "not rate-limited"


def test_frames_after_end_session_are_answered_with_an_error(server):
    responses, error = exchange(server.address, [open_request(), good(0), END, good(1), good(2)])
    assert error is None, error
    assert kinds(responses) == ["opened", "frame", "error", "error"]
    for frame_id, response in zip((1, 2), responses[2:]):
        assert response.error.frame_id == frame_id and response.error.error.code == "FAILED_PRECONDITION"
        assert "after EndSession" in response.error.error.message


def engine_inputs(t: int, **overrides: np.ndarray) -> dict[str, np.ndarray]:
    labels = label_sequence(t + 1, SIZE, SIZE, seed=3)[t]
    depth = np.linspace(1.0, 50.0, SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE)
    motion = np.full((SIZE, SIZE, 2), 1.0, np.float32)
    return {"labels": labels, "instances": labels.astype(np.uint16), "depth": depth, "motion": motion, **overrides}


POISONED = {
    "NaN depth": (
        "depth",
        lambda a: np.where(np.arange(a.size).reshape(a.shape) % 100 == 0, np.nan, a).astype(np.float32),
        11,
    ),
    "inf motion": ("motion", lambda a: np.full_like(a, np.inf), SIZE * SIZE * 2),
    "-inf motion in float16": ("motion", lambda a: np.where(a > 0, -np.inf, a).astype(np.float16), SIZE * SIZE * 2),
}


@pytest.mark.parametrize("case", list(POISONED))
def test_non_finite_floats_are_rejected_and_leave_the_history_alone(tiny_engine_models_dir, case):
    name, poison, count = POISONED[case]
    with running_server(tiny_engine_models_dir) as server, RenderClient(server.address) as client:
        with (
            client.session("tiny-engine", (SIZE, SIZE), max_in_flight=4) as poisoned,
            client.session("tiny-engine", (SIZE, SIZE)) as clean,
        ):
            first = [poisoned.submit(**engine_inputs(0)), clean.submit(**engine_inputs(0))]
            bad = poisoned.submit(**engine_inputs(1, **{name: poison(engine_inputs(1)[name])}))
            after = [poisoned.render(**engine_inputs(t)) for t in (1, 2, 3)]
            with pytest.raises(Exception) as err:
                bad.result()
            assert getattr(err.value, "code", None) == "INVALID_ARGUMENT"
            assert f"{name} has {count} non-finite value(s)" in str(err.value)
            assert np.array_equal(first[0].result().image, first[1].result().image)
            for t, image in zip((1, 2, 3), after):
                assert np.array_equal(image, clean.render(**engine_inputs(t))), (
                    f"frame {t} differs from a clean session's"
                )


def test_finite_extreme_floats_saturate_instead_of_blacking_out(tiny_engine_models_dir):
    extreme = {"depth": np.full((SIZE, SIZE), 1e30, np.float32), "motion": np.full((SIZE, SIZE, 2), -1e30, np.float32)}
    saturated = {
        "depth": np.full((SIZE, SIZE), 65504, np.float16),
        "motion": np.full((SIZE, SIZE, 2), -65504, np.float16),
    }
    with running_server(tiny_engine_models_dir) as server, RenderClient(server.address) as client:
        with client.session("tiny-engine", (SIZE, SIZE)) as a, client.session("tiny-engine", (SIZE, SIZE)) as b:
            frames_a = [
                a.render(**engine_inputs(0)),
                a.render(**engine_inputs(1, **extreme)),
                a.render(**engine_inputs(2)),
            ]
            frames_b = [
                b.render(**engine_inputs(0)),
                b.render(**engine_inputs(1, **saturated)),
                b.render(**engine_inputs(2)),
            ]
    for t, (x, y) in enumerate(zip(frames_a, frames_b)):
        assert x.std() > 1.0, f"frame {t} is flat (black): the extreme values were not clamped"
        assert np.array_equal(x, y), f"frame {t}: 1e30 did not act as float16's largest value"


def test_keypoint_frames_are_bounded_and_drawn_off_the_event_loop(tiny_pose_models_dir):
    """A frame whose keypoints take long to draw must not stall health checks: the longest gap between health
    answers while it is drawn stays well below the drawing time (it was all of it, on the event loop)."""
    rng = np.random.default_rng(0)
    heavy = (rng.random((10000, 25, 3)) * [256, 256, 1]).astype(np.float32)
    with running_server(tiny_pose_models_dir, max_people=heavy.shape[0], max_message_bytes=64 << 20) as server:
        gaps: list[float] = []
        stop = threading.Event()

        def probe() -> None:
            with grpc.insecure_channel(server.address) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                last = time.perf_counter()
                while not stop.is_set():
                    health.Check(health_pb2.HealthCheckRequest(), timeout=60)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

        with RenderClient(server.address) as client, client.session("tiny-pose", (256, 256)) as session:
            session.render(keypoints=heavy[:1])
            prober = threading.Thread(target=probe)
            prober.start()
            time.sleep(0.2)
            started = time.perf_counter()
            session.render(keypoints=heavy)
            drawing = time.perf_counter() - started
            stop.set()
            prober.join(timeout=60)
    assert len(gaps) > 3 and max(gaps[2:]) < drawing / 2, (max(gaps), drawing)


def test_keypoints_beyond_the_bounds_are_rejected_in_band(tiny_pose_models_dir):
    with running_server(tiny_pose_models_dir, max_people=4) as server, RenderClient(server.address) as client:
        with client.session("tiny-pose", (64, 64)) as session:
            for keypoints, phrase in (
                (np.ones((5, 25, 3), np.float32), "hold 5 people, more than this server's max_people 4"),
                (np.ones((2, 26, 3), np.float32), "keypoints shape is [2, 26, 3], expected [people, 25, 3]"),
                (np.full((1, 25, 3), np.nan, np.float32), "keypoints has 75 non-finite value(s)"),
            ):
                with pytest.raises(Exception, match=re.escape(phrase)):
                    session.render(keypoints=keypoints)
            assert session.render(keypoints=np.ones((4, 25, 3), np.float32)).shape == (64, 64, 3)


def test_memory_budget_admits_queues_and_refuses(tiny_models_dir, tiny_bundle_dir):
    """A budget of one 32x32 frame: larger sessions and RenderFrame calls are refused naming it; four sessions
    streaming at once are admitted one frame at a time (never batched), and each still gets its own frames."""
    with (
        running_server(tiny_models_dir, max_pixels_in_flight=SIZE * SIZE, max_batch=8) as server,
        RenderClient(server.address) as client,
    ):
        with pytest.raises(
            ServerBusy,
            match=r"64x64: a frame of 4096 pixels is more than this server's whole memory budget "
            r"of 1024 pixels in flight \(max_pixels_in_flight\)",
        ):
            client.session("tiny", (64, 64)).open()
        with pytest.raises(ServerBusy, match="max_pixels_in_flight"):
            client.render_frame("tiny", (64, 64), labels=np.zeros((64, 64), np.uint8))
        sequences = [label_sequence(6, SIZE, SIZE, seed=s) for s in range(4)]
        sessions = [client.session("tiny", (SIZE, SIZE), max_in_flight=3).open() for _ in sequences]
        futures = [[s.submit(labels=f) for f in seq] for s, seq in zip(sessions, sequences)]
        results = [[f.result(timeout=120) for f in fs] for fs in futures]
        for session in sessions:
            session.close()
    assert {r.timings.batch_size for rs in results for r in rs} == {1}
    for seq, rs in zip(sequences, results):
        direct = DirectStep(tiny_bundle_dir)
        assert all(np.array_equal(r.image, direct(f)) for r, f in zip(rs, seq))


def test_render_frame_calls_count_against_max_sessions(tiny_models_dir):
    with running_server(tiny_models_dir, max_sessions=1) as server, RenderClient(server.address) as client:
        labels = label_sequence(1, SIZE, SIZE)[0]
        assert client.render_frame("tiny", (SIZE, SIZE), labels=labels).shape == (SIZE, SIZE, 3)
        with client.session("tiny", (SIZE, SIZE)) as session:
            with pytest.raises(ServerBusy, match="limit of 1 open sessions and RenderFrame calls"):
                client.render_frame("tiny", (SIZE, SIZE), labels=labels)
            session.render(labels=labels)


def test_unauthenticated_payloads_are_refused_before_they_are_read(tiny_models_dir, tmp_path):
    (tmp_path / "token").write_text("s3cret\n")
    big = np.zeros((2048, 2048), np.uint8)
    with running_server(tiny_models_dir, token_file=str(tmp_path / "token")) as server:
        with RenderClient(server.address) as client:
            for _ in range(3):
                with pytest.raises(Unauthenticated, match="missing 'authorization'"):
                    client.render_frame("tiny", (2048, 2048), labels=big)
        with grpc.insecure_channel(server.address) as channel:  # not even parsed: bytes that are no message
            with pytest.raises(grpc.RpcError) as err:
                channel.unary_unary("/neurender.v1.NeuralRenderer/RenderFrame")(b"\xff" * 100, timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with RenderClient(server.address, token="s3cret") as client:
            with pytest.raises(InvalidRequest, match="class ID 200"):
                client.render_frame("tiny", (SIZE, SIZE), labels=np.full((SIZE, SIZE), 200, np.uint8))
