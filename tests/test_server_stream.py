"""Render streams against a real server on 127.0.0.1 with real ONNX Runtime: exactness, history, batching."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from neurender.engine_plugin.sdk.client import FrameDropped, RenderClient
from neurender.proto.neurender.v1 import model_pb2
from neurender.retarget.draw import draw_pose_map, pose_layout
from tests.server_support import (
    DirectStep,
    assert_interleaved_sessions_equal_each_alone,
    label_sequence,
    running_server,
)


@pytest.fixture(scope="module")
def server(tiny_models_dir):
    with running_server(tiny_models_dir, max_batch=8) as running:
        yield running


@pytest.fixture
def client(server):
    with RenderClient(server.address) as c:
        yield c


def test_thirty_streamed_frames_equal_direct_steps_bit_for_bit(client, tiny_bundle_dir):
    labels = label_sequence(30, 64, 64)
    direct = DirectStep(tiny_bundle_dir)
    expected = [direct(frame) for frame in labels]
    with client.session("tiny", (64, 64), max_in_flight=4) as session:
        futures = [session.submit(labels=frame) for frame in labels]
        results = [f.result() for f in futures]
    assert [r.frame_id for r in results] == list(range(30))
    for t, (result, want) in enumerate(zip(results, expected)):
        assert result.image.dtype == np.uint8 and result.image.shape == (64, 64, 3)
        assert np.array_equal(result.image, want), f"frame {t} differs from the direct step"
    assert all(r.timings.inference_ms > 0 and r.timings.total_ms >= r.timings.inference_ms for r in results)


def test_history_changes_frames_and_reset_equals_a_fresh_session(client):
    labels = label_sequence(6, 32, 32)
    with client.session("tiny", (32, 32)) as fresh:
        alone = fresh.render(labels=labels[5])
    with client.session("tiny", (32, 32)) as session:
        for frame in labels[:5]:
            session.render(labels=frame)
        continued = session.render(labels=labels[5])
        for frame in labels[:5]:
            session.render(labels=frame)
        after_flag = session.render(labels=labels[5], reset=True)
        for frame in labels[:5]:
            session.render(labels=frame)
        session.reset()
        after_method = session.render(labels=labels[5])
    assert not np.array_equal(continued, alone), "the frame did not depend on the frames before it"
    assert np.array_equal(after_flag, alone)
    assert np.array_equal(after_method, alone)


def test_eight_interleaved_sessions_equal_each_alone(server, tiny_bundle_dir):
    assert_interleaved_sessions_equal_each_alone(server.address, tiny_bundle_dir, sessions=8, frames=6)


def test_label_remap_renders_one_class_as_another(client, tiny_bundle_dir):
    labels = label_sequence(3, 32, 32)
    remap = {1: 2, 3: 2, 7: 0}
    lut = np.arange(12, dtype=np.uint8)
    for a, b in remap.items():
        lut[a] = b
    direct = DirectStep(tiny_bundle_dir)
    expected = [direct(lut[f]) for f in labels]
    with client.session("tiny", (32, 32), label_remap=remap) as session:
        got = [session.render(labels=f) for f in labels]
    assert all(np.array_equal(g, e) for g, e in zip(got, expected))


def test_png_is_lossless_and_jpeg_close(client):
    labels = label_sequence(1, 64, 64)[0]
    with client.session("tiny", (64, 64)) as session:
        raw = session.render(labels=labels)
    with client.session("tiny", (64, 64), encoding="png") as session:
        png = session.submit(labels=labels).result()
    with client.session("tiny", (64, 64), encoding="jpeg", jpeg_quality=95) as session:
        jpeg = session.submit(labels=labels).result()
    assert png.encoded.startswith(b"\x89PNG") and np.array_equal(png.image, raw)
    assert jpeg.encoded.startswith(b"\xff\xd8")
    # JPEG's loss is what OpenCV's own JPEG round trip of the same image loses.
    _, own = cv2.imencode(".jpg", cv2.cvtColor(raw, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert np.array_equal(jpeg.image, cv2.cvtColor(cv2.imdecode(own, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


def test_render_frame_is_a_fresh_sessions_first_frame(client, tiny_bundle_dir):
    labels = label_sequence(1, 32, 32, seed=3)[0]
    assert np.array_equal(client.render_frame("tiny", (32, 32), labels=labels), DirectStep(tiny_bundle_dir)(labels))


def test_drop_stale_skips_waiting_frames_and_counts_them(client):
    labels = label_sequence(12, 64, 64)
    with client.session("tiny", (64, 64), drop_stale=True, max_in_flight=12) as session:
        futures = [session.submit(labels=f) for f in labels]
        rendered, dropped = [], []
        for f in futures:
            try:
                rendered.append(f.result())
            except FrameDropped as err:
                dropped.append(err.frame_id)
    assert rendered[-1].frame_id == 11, "the newest frame must always be rendered"
    assert dropped, "12 frames sent at once were all rendered; nothing was dropped"
    assert rendered[-1].dropped == len(dropped)
    assert sorted(dropped + [r.frame_id for r in rendered]) == list(range(12))


def test_list_and_get_model(client):
    assert [m.name for m in client.list_models()] == ["tiny"]
    description = client.get_model("tiny")
    assert description.modality == model_pb2.SEGMENTATION and len(description.classes) == 12
    assert description.history_length == 2


def test_keypoints_are_drawn_as_the_pose_map(tiny_pose_models_dir):
    with running_server(tiny_pose_models_dir) as server, RenderClient(server.address) as client:
        convention = client.get_model("tiny-pose").pose
        rng = np.random.default_rng(0)
        keypoints = np.concatenate(
            [rng.uniform(2, 30, (1, pose_layout(convention).size, 2)), np.ones((1, pose_layout(convention).size, 1))],
            axis=-1,
        ).astype(np.float32)
        pose_map = draw_pose_map(keypoints, 32, 32, convention)
        with client.session("tiny-pose", (32, 32)) as a, client.session("tiny-pose", (32, 32)) as b:
            for _ in range(2):
                assert np.array_equal(a.render(keypoints=keypoints), b.render(pose_map=pose_map))


def test_style_seed_and_codes(tiny_style_models_dir):
    labels = label_sequence(1, 32, 32)[0]
    with running_server(tiny_style_models_dir) as server, RenderClient(server.address) as client:

        def first_frame(**style):
            with client.session("tiny-style", (32, 32), **style) as session:
                return session.render(labels=labels)

        seed_a = first_frame(style_seed=1)
        assert np.array_equal(first_frame(style_seed=1), seed_a)
        codes = {c: np.full(4, 3.0 * (c % 2) - 1.5, np.float32) for c in range(12)}
        assert not np.array_equal(first_frame(style_seed=1, style_codes=codes), seed_a)
        assert not np.array_equal(
            first_frame(style_codes=codes), first_frame(style_codes={c: -v for c, v in codes.items()})
        )
