"""The native one-hot kernel is optional: a server without it (dense one-hot convolutions in the CPU graph) serves
the same frames as one with it, within the CPU graph's parity tolerance, and says in its log which path it took."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
import pytest

from neurender.engine_plugin.sdk.client import RenderClient
from neurender.server.onehot_lookup import KERNEL_SWITCH, native_kernel_missing
from tests.server_support import label_sequence, running_server

FRAMES, HEIGHT, WIDTH = 6, 32, 48


def bundle_graph_frames(onnx_path, labels: list[np.ndarray], served: list[np.ndarray]) -> list[np.ndarray]:
    """The bundle's portable graph, as exported, run on ONNX Runtime step by step, each step from the history of
    the frames the server returned before it (so a rounding difference is not compounded through the warp)."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    history = session.get_inputs()[1].shape[1]
    prev_labels = np.zeros((1, history, HEIGHT, WIDTH), np.uint8)
    prev_frames = np.zeros((1, history, HEIGHT, WIDTH, 3), np.uint8)
    frames = []
    for t, frame in enumerate(labels):
        rgb, prev_labels, prev_frames = session.run(["rgb", "next_prev_labels", "next_prev_frames"], {
            "labels": frame[None], "prev_labels": prev_labels, "prev_frames": prev_frames,
            "has_history": np.array([t > 0], np.uint8)})
        frames.append(rgb[0])
        prev_frames[:, -1 if t else slice(None)] = served[t]  # a first frame fills the whole history with itself
    return frames


@pytest.mark.parametrize("kernel", ["native", "off"])
def test_server_frames_equal_the_bundle_graph_with_and_without_the_kernel(kernel, tiny_models_dir, tiny_bundle_dir,
                                                                          monkeypatch, caplog):
    if kernel == "native" and native_kernel_missing():
        pytest.skip(f"the native kernel is {native_kernel_missing()}")
    monkeypatch.setenv(KERNEL_SWITCH, "off" if kernel == "off" else "on")
    labels = label_sequence(FRAMES, HEIGHT, WIDTH)
    with caplog.at_level(logging.INFO, logger="neurender.server.backends"):
        with running_server(tiny_models_dir) as server, RenderClient(server.address) as client:
            with client.session("tiny", (HEIGHT, WIDTH)) as session:
                served = [session.render(labels=frame) for frame in labels]
    paths = [r.getMessage() for r in caplog.records if "one-hot convolutions as" in r.getMessage()]
    assert paths, "the server did not log which one-hot path it took"
    expected_path = "dense ONNX convolutions (the native one-hot kernel is turned off" if kernel == "off" else "1 native lookup(s)"
    assert all(expected_path in message for message in paths), paths
    reference = bundle_graph_frames(tiny_bundle_dir / "generator.onnx", labels, served)
    differing = 0
    for t, (ours, want) in enumerate(zip(served, reference)):
        assert ours.shape == want.shape == (HEIGHT, WIDTH, 3)
        assert np.abs(ours.astype(int) - want.astype(int)).max() <= 1, f"frame {t}"
        differing += int((ours != want).sum())
    assert differing <= 0.001 * FRAMES * HEIGHT * WIDTH * 3
