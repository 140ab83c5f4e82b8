"""The client SDK against a real server: pipelining, in-band errors, reconnecting, and `neurender render-video`."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest

from neurender.engine_plugin.sdk.aio_client import AsyncRenderClient
from neurender.engine_plugin.sdk.client import FrameRejected, RenderClient, ServerUnavailable
from neurender.engine_plugin.sdk.label_images import LabelImageError, read_label_image
from neurender.proto.neurender.v1 import model_pb2
from tests.server_support import DirectStep, label_sequence, running_server


@pytest.fixture(scope="module")
def server(tiny_models_dir):
    with running_server(tiny_models_dir) as running:
        yield running


def test_pipelining_keeps_at_most_max_in_flight_frames(server):
    labels = label_sequence(8, 32, 32)

    async def run():
        async with AsyncRenderClient(server.address) as client:
            async with client.session("tiny", (32, 32), max_in_flight=3) as session:
                futures = [await session.submit(labels=f) for f in labels[:3]]
                assert not all(f.done() for f in futures)
                for frame in labels[3:]:
                    futures.append(await session.submit(labels=frame))
                    assert sum(not f.done() for f in futures) <= 3
                return [(await f).frame_id for f in futures]

    assert asyncio.run(run()) == list(range(8))


def test_rejected_frame_raises_and_the_session_goes_on(server, tiny_bundle_dir):
    labels = label_sequence(2, 32, 32)
    direct = DirectStep(tiny_bundle_dir)
    with RenderClient(server.address) as client, client.session("tiny", (32, 32), max_in_flight=3) as session:
        first = session.submit(labels=labels[0])
        bad = session.submit(labels=np.full((32, 32), 50, np.uint8))
        second = session.submit(labels=labels[1])
        with pytest.raises(FrameRejected, match="class ID 50") as err:
            bad.result()
        assert err.value.frame_id == 1 and err.value.code == "INVALID_ARGUMENT"
        assert np.array_equal(first.result().image, direct(labels[0]))
        assert np.array_equal(second.result().image, direct(labels[1]))
        assert session.info.model.name == "tiny" and len(session.info.session_id) == 16


def test_session_resumes_its_history_when_the_server_restarts(tiny_models_dir, tiny_bundle_dir):
    labels = label_sequence(3, 32, 32)
    direct = DirectStep(tiny_bundle_dir)
    expected = [direct(frame) for frame in labels]
    with running_server(tiny_models_dir) as first:
        port = first.server.port
        client = RenderClient(first.address)
        session = client.session("tiny", (32, 32), reconnect_timeout_s=1).open()
        session.render(labels=labels[0])
        session.render(labels=labels[1])
    try:
        with running_server(tiny_models_dir, address=f"127.0.0.1:{port}"):
            assert np.array_equal(session.render(labels=labels[2]), expected[2])  # as if the server had stayed up
            assert session.reconnects == 1
        with pytest.raises(ServerUnavailable):  # and gives up when the server stays away
            session.render(labels=labels[0])
    finally:
        client.close()


def test_render_video_cli(server, tmp_path):
    frames = label_sequence(6, 32, 32)
    (tmp_path / "labels").mkdir()
    for t, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / "labels" / f"{t:04d}.png"), frame)
    out = tmp_path / "out.mp4"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "neurender.cli",
            "render-video",
            "--labels",
            str(tmp_path / "labels"),
            "--out",
            str(out),
            "--server",
            server.address,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 6 frames (32x32)" in result.stdout
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 6 and decoded[0].shape == (32, 32, 3)
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "neurender.cli",
            "render-video",
            "--labels",
            str(tmp_path / "labels"),
            "--out",
            str(out),
            "--overwrite",
            "--server",
            server.address,
            "--model",
            "nope",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "'nope' is not served" in missing.stderr


def test_colour_label_images_map_back_to_class_ids(tmp_path):
    model = model_pb2.ModelDescription(name="m", modality=model_pb2.SEGMENTATION)
    colours = [(0, 0, 0), (255, 0, 0), (0, 128, 255)]
    for i, colour in enumerate(colours):
        model.classes.add(id=i, name=f"c{i}", color=colour)
    ids = np.random.default_rng(0).integers(0, 3, (8, 12)).astype(np.uint8)
    painted = np.array(colours, np.uint8)[ids]
    cv2.imwrite(str(tmp_path / "painted.png"), cv2.cvtColor(painted, cv2.COLOR_RGB2BGR))
    assert np.array_equal(read_label_image(tmp_path / "painted.png", model)["labels"], ids)
    painted[0, 0] = (1, 2, 3)
    cv2.imwrite(str(tmp_path / "off.png"), cv2.cvtColor(painted, cv2.COLOR_RGB2BGR))
    with pytest.raises(LabelImageError, match=r"colours \(1, 2, 3\) are not class colours"):
        read_label_image(tmp_path / "off.png", model)
