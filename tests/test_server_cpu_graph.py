"""The CPU backend's graph rewrites and native one-hot lookup: same function as the bundle's graph, less work."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper

from neurender.server.backends import OrtBackend
from neurender.server.cpu_graph import STACKED_LABELS, rewrite_for_cpu, space_to_depth_weight
from neurender.server.onehot_lookup import KERNEL_SWITCH, OneHotConv
from neurender.server.openvino_backend import OpenVinoBackend
from neurender.server.step_state import next_state, stacked_labels
from neurender.training.model.config import PRESETS, GeneratorConfig
from neurender.training.model.generator import Vid2VidGenerator
from neurender.training.model.onnx_export import export_step_onnx
from neurender.training.model.step import example_inputs, input_names
from tests.train_support import randomise_batch_norm

CONFIGS = {
    **{name: PRESETS[name] for name in ["tiny", "tiny-2scale", "tiny-engine", "tiny-pose", "tiny-edges"]},
    "tiny-engine-bicubic": replace(PRESETS["tiny-engine"], warp_sampling="bicubic"),
    "tiny-batchnorm": replace(PRESETS["tiny"], norm="batch"),  # the export folds batch norm into the convolutions
    "uint16-style-fg": GeneratorConfig(
        ngf=16, n_blocks=2, n_scales=2, num_classes=300, style_dim=3, fg_classes=(5,), use_instances=True
    ),
}
OUTPUTS = ["rgb", "next_prev_labels", "next_prev_frames"]


def dense_one_hot_conv(labels: np.ndarray, weight: torch.Tensor, bias: torch.Tensor, classes: int) -> np.ndarray:
    """The reference: one-hot [B, T*C, H, W] (IDs >= C all zero), reflection pad, dense convolution."""
    ids = torch.from_numpy(labels.astype(np.int64))
    one_hot = (ids.unsqueeze(2) == torch.arange(classes).view(1, 1, classes, 1, 1)).float().flatten(1, 2)
    half = weight.shape[2] // 2
    return F.conv2d(F.pad(one_hot, (half,) * 4, mode="reflect"), weight, bias).numpy()


@pytest.mark.parametrize("channels", [8, 16, 32, 64, 12])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("regions", [False, True])
def test_lookup_equals_dense_convolution(channels: int, dtype, regions: bool) -> None:
    """Every specialised channel count and the generic one, both ID widths, odd sizes, unknown IDs, bias, batch;
    per-pixel noise, and regions of one class (where the kernel adds precomputed sums of a class's taps)."""
    rng = np.random.default_rng(channels)
    frames, classes, kernel = 3, 11, 7
    shape = (2, frames, 50, 101) if regions else (2, frames, 13, 21)
    labels = rng.integers(0, classes + 3, shape).astype(dtype)  # IDs >= classes select nothing
    if regions:  # squares of 24 pixels, one class each; one frame all of an unknown class
        labels = np.repeat(np.repeat(labels[:, :, ::24, ::24], 24, axis=2), 24, axis=3)[
            :, :, : shape[2], : shape[3]
        ].copy()
        labels[0, 2] = classes + 1
    weight, bias = torch.randn(channels, frames * classes, kernel, kernel), torch.randn(channels)
    lookup = OneHotConv.from_weight("x", weight.numpy(), bias.numpy(), frames)
    for threads in (1, 3):
        np.testing.assert_allclose(
            lookup(labels, threads), dense_one_hot_conv(labels, weight, bias, classes), atol=2e-4
        )


def test_lookup_refuses_what_it_cannot_compute() -> None:
    lookup = OneHotConv.from_weight("x", np.zeros((8, 6, 7, 7), np.float32), None, frames=3)
    with pytest.raises(ValueError, match=r"\[batch, 3, height, width\]"):
        lookup(np.zeros((1, 2, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="uint8 or uint16"):
        lookup(np.zeros((1, 3, 16, 16), np.int32))
    with pytest.raises(ValueError, match="reflection padding"):
        lookup(np.zeros((1, 3, 3, 16), np.uint8))


def test_folded_input_normalisation_is_the_same_convolution() -> None:
    """x / 127.5 - 1 through a reshape and a reflection pad into a biased convolution with no norm after it (in
    the generator an instance norm follows the first convolution, which would hide a wrong bias)."""
    rng = np.random.default_rng(0)
    constants = {
        "scale": np.array(127.5, np.float32),
        "shift": np.array(1.0, np.float32),
        "shape": np.array([1, 6, 10, 12], np.int64),
        "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
        "weight": rng.standard_normal((8, 6, 3, 3)).astype(np.float32),
        "bias": rng.standard_normal(8).astype(np.float32),
    }
    graph = helper.make_graph(
        [
            helper.make_node("Div", ["x", "scale"], ["scaled"]),
            helper.make_node("Sub", ["scaled", "shift"], ["normalised"]),
            helper.make_node("Reshape", ["normalised", "shape"], ["flat"]),
            helper.make_node("Pad", ["flat", "pads"], ["padded"], mode="reflect"),
            helper.make_node("Conv", ["padded", "weight", "bias"], ["y"]),
        ],
        "fold",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 3, 10, 12])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 8, 10, 12])],
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    rewritten, _ = rewrite_for_cpu(model)
    assert not {"Div", "Sub"} & {n.op_type for n in rewritten.graph.node}
    x = {"x": rng.integers(0, 256, (1, 2, 3, 10, 12)).astype(np.float32)}
    expected = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]
    folded = ort.InferenceSession(rewritten.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)[0]
    np.testing.assert_allclose(folded, expected, atol=1e-4)


def test_space_to_depth_weight_is_the_same_convolution() -> None:
    """SpaceToDepth -> folded convolution -> DepthToSpace (DCR) equals the dense convolution. torch's
    pixel_(un)shuffle order channels as (c, qy, qx), ONNX's as (qy, qx, c): the test reorders between them."""
    weight, x = torch.randn(3, 5, 7, 7), torch.randn(2, 5, 20, 26)
    dense = F.conv2d(x, weight)
    unshuffled = F.pixel_unshuffle(x, 2)
    onnx_input = unshuffled.view(2, 5, 4, 10, 13).transpose(1, 2).reshape(unshuffled.shape)
    conv = F.conv2d(onnx_input, torch.from_numpy(space_to_depth_weight(weight.numpy())))
    assert conv.shape == (2, 12, 7, 10)
    folded = F.pixel_shuffle(conv.view(2, 4, 3, 7, 10).transpose(1, 2).reshape(conv.shape), 2)
    torch.testing.assert_close(folded, dense, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module", params=list(CONFIGS))
def exported(request, tmp_path_factory):
    cfg = CONFIGS[request.param]
    torch.manual_seed(0)
    label_dtype = torch.uint16 if cfg.num_classes > 256 else torch.uint8
    generator = Vid2VidGenerator(cfg).eval()
    randomise_batch_norm(generator)
    onnx_bytes = export_step_onnx(generator, label_dtype=label_dtype)
    path = tmp_path_factory.mktemp(request.param) / "generator.onnx"
    path.write_bytes(onnx_bytes)
    return cfg, path, label_dtype


def test_rewritten_graph_has_lookups_and_fewer_dense_convs(exported) -> None:
    cfg, path, _ = exported
    original = onnx.load(str(path))
    model, lookups = rewrite_for_cpu(original)
    assert len(lookups) == (1 if cfg.modality == "segmentation" else 0)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("SpaceToDepth") >= 2  # the image head and the merged flow/mask head of the finest scale
    if cfg.modality == "segmentation" and cfg.n_scales == 1:  # the dense one-hot encoding is gone
        assert ops.count("Equal") == [n.op_type for n in original.graph.node].count("Equal") - 1
    assert [o.name for o in model.graph.output] == ["rgb"]  # the state is kept beside the graph
    inputs = {i.name for i in model.graph.input}
    assert "prev_labels" not in inputs  # the backend stacks the label history
    assert (STACKED_LABELS in inputs) == (
        cfg.modality != "segmentation" or cfg.n_scales > 1
    )  # unless lookups read it all
    folded = any(i.name.endswith("FoldedNormalisation/weight") for i in model.graph.initializer)
    assert folded == (cfg.modality != "segmentation")  # pose and edge maps' x / 127.5 - 1 is in the first weights


CPU_BACKENDS = {
    "onnxruntime": lambda path: OrtBackend(path, ("CPUExecutionProvider",), intra_op_threads=2),
    "openvino": lambda path: OpenVinoBackend(path, intra_op_threads=2),
}


def test_without_lookups_the_one_hot_convolutions_stay_dense(exported) -> None:
    cfg, path, _ = exported
    original = onnx.load(str(path))
    model, lookups = rewrite_for_cpu(original, lookups=False)
    assert lookups == [] and not any(i.name.startswith("one_hot_conv_") for i in model.graph.input)
    count = [n.op_type for n in original.graph.node].count
    assert [n.op_type for n in model.graph.node].count("Equal") == count("Equal")
    assert [o.name for o in model.graph.output] == ["rgb"]


@pytest.mark.parametrize("backend_name", list(CPU_BACKENDS))
def test_backend_equals_bundle_graph_over_chained_steps(exported, backend_name: str, monkeypatch) -> None:
    """10 steps (a first frame, then history) of two sessions in a batch: each CPU backend's frames and state are
    the bundle graph's, to within one rounding level of a frame where summation order differs."""
    cfg, path, label_dtype = exported
    monkeypatch.delenv(KERNEL_SWITCH, raising=False)
    assert_backend_equals_bundle_graph(
        cfg, path, label_dtype, backend_name, lookups=int(cfg.modality == "segmentation")
    )


@pytest.mark.parametrize(
    "config", ["tiny-engine", "uint16-style-fg"]
)  # one-hot convolutions with extras; uint16, 2 scales
@pytest.mark.parametrize("backend_name", list(CPU_BACKENDS))
def test_without_the_kernel_backend_equals_bundle_graph(config: str, backend_name: str, monkeypatch, tmp_path) -> None:
    """The same with the native one-hot kernel turned off: the CPU graph keeps its dense one-hot convolutions."""
    cfg = CONFIGS[config]
    label_dtype = torch.uint16 if cfg.num_classes > 256 else torch.uint8
    torch.manual_seed(0)
    path = tmp_path / "generator.onnx"
    path.write_bytes(export_step_onnx(Vid2VidGenerator(cfg).eval(), label_dtype=label_dtype))
    monkeypatch.setenv(KERNEL_SWITCH, "off")
    assert_backend_equals_bundle_graph(cfg, path, label_dtype, backend_name, lookups=0)


def assert_backend_equals_bundle_graph(
    cfg: GeneratorConfig, path, label_dtype, backend_name: str, lookups: int
) -> None:
    backend = CPU_BACKENDS[backend_name](path)
    assert len(backend.cpu_graph.lookups) == lookups
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert backend.input_names == tuple(input_names(cfg))
    state = None
    differing = 0
    for t in range(10):
        inputs = example_inputs(cfg, batch=2, height=32, width=48, seed=t, label_dtype=label_dtype)
        feed = {n: inputs[n].numpy() for n in input_names(cfg)}
        feed["has_history"] = np.array([t > 0, t > 3], np.uint8)
        if state is not None:
            feed["prev_labels"], feed["prev_frames"] = state
        ours, reference = backend.run(dict(feed)), session.run(OUTPUTS, feed)
        for a, b in zip(ours, reference):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert np.abs(a.astype(np.int64) - b.astype(np.int64)).max() <= 1
        np.testing.assert_array_equal(ours[1], reference[1])  # label state is exact
        differing += int((ours[0] != reference[0]).sum())
        state = reference[1], reference[2]  # both continue from the same state
    assert differing <= 0.001 * 10 * 2 * 32 * 48 * 3


def test_stacked_labels_fill_history_on_first_frames() -> None:
    labels = np.full((2, 4, 4), 7, np.uint8)
    prev = np.stack([np.full((2, 4, 4), 1, np.uint8), np.full((2, 4, 4), 2, np.uint8)], axis=1)
    stacked = stacked_labels(labels, prev, np.array([1, 0], np.uint8))
    assert stacked.shape == (2, 3, 4, 4)
    assert stacked[0, :, 0, 0].tolist() == [1, 2, 7] and stacked[1, :, 0, 0].tolist() == [7, 7, 7]


def test_next_state_shifts_history_and_fills_it_on_first_frames() -> None:
    """Pose maps ([B, H, W, 3] labels) as well as class IDs; row 1 is on its first frame."""
    labels = np.full((2, 4, 4, 3), 7, np.uint8)
    prev = np.stack([np.full((2, 4, 4, 3), 1, np.uint8), np.full((2, 4, 4, 3), 2, np.uint8)], axis=1)
    frames = np.stack([np.full((2, 4, 4, 3), 10, np.uint8), np.full((2, 4, 4, 3), 20, np.uint8)], axis=1)
    rgb = np.full((2, 4, 4, 3), 99, np.uint8)
    history = np.array([1, 0], np.uint8)
    next_labels, next_frames = next_state(stacked_labels(labels, prev, history), frames, history, rgb)
    assert next_labels.shape == prev.shape and next_frames.shape == frames.shape
    assert next_labels[0, :, 0, 0, 0].tolist() == [2, 7] and next_labels[1, :, 0, 0, 0].tolist() == [7, 7]
    assert next_frames[0, :, 0, 0, 0].tolist() == [20, 99] and next_frames[1, :, 0, 0, 0].tolist() == [99, 99]
