"""The exported ONNX step: checker, parity with PyTorch per step and over chained steps, batch invariance."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from neurender.proto.bundle import LABEL_INPUT
from neurender.training.model.config import PRESETS, GeneratorConfig
from neurender.training.model.generator import Vid2VidGenerator
from neurender.training.model.onnx_export import OPSET, export_step_onnx
from neurender.training.model.step import GeneratorStep, example_inputs, input_names, step_arguments
from tests.train_support import randomise_batch_norm

CONFIGS = {
    **{name: PRESETS[name] for name in ["tiny", "tiny-2scale", "tiny-engine", "tiny-pose", "tiny-edges"]},
    "tiny-engine-bicubic": replace(PRESETS["tiny-engine"], warp_sampling="bicubic"),
    "tiny-batchnorm": replace(PRESETS["tiny"], norm="batch"),  # the export folds batch norm into the convolutions
    "3scale-style-fg-uint16": GeneratorConfig(
        ngf=16, n_blocks=2, n_scales=3, num_classes=300, style_dim=3, fg_classes=(5,), use_instances=True
    ),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def exported(request):
    cfg = CONFIGS[request.param]
    torch.manual_seed(0)
    generator = Vid2VidGenerator(cfg).eval()
    randomise_batch_norm(generator)
    label_dtype = torch.uint16 if cfg.num_classes > 256 else torch.uint8
    onnx_bytes = export_step_onnx(generator, label_dtype=label_dtype)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return cfg, generator, onnx_bytes, session, label_dtype


def test_checker_and_opset(exported) -> None:
    _, _, onnx_bytes, session, _ = exported
    model = onnx.load_from_string(onnx_bytes)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17 == OPSET


def test_graph_takes_raw_protocol_tensors(exported) -> None:
    cfg, _, _, session, label_dtype = exported
    types = {i.name: i.type for i in session.get_inputs()}
    label = LABEL_INPUT[cfg.modality]
    assert types[label] == ("tensor(uint16)" if label_dtype == torch.uint16 else "tensor(uint8)")
    assert types["prev_frames"] == "tensor(uint8)" and types["has_history"] == "tensor(uint8)"
    if cfg.use_motion:
        assert types["motion"] == "tensor(float16)"
    if cfg.use_instances:
        assert types["instances"] == "tensor(uint16)"
    assert [o.type for o in session.get_outputs()][0] == "tensor(uint8)"


def test_parity_per_step_and_chained(exported) -> None:
    """ORT matches PyTorch within 1e-3 at every step of a 10-step chain that feeds ORT's own state back.

    The graph returns uint8, so ORT's frame is compared with PyTorch's float frame before rounding: in [-1, 1]
    units it may differ by half a quantisation level (rounding) plus 1e-3. Two chains run apart (ORT's and
    torch's, each on its own state) are not compared: with random weights, instance norm amplifies a
    one-level difference in the history chaotically."""
    cfg, generator, _, session, label_dtype = exported
    names = input_names(cfg)
    step = GeneratorStep(generator)
    float_frames: list[torch.Tensor] = []
    hook = generator.register_forward_hook(lambda module, args, out: float_frames.append(out[-1].image))
    inputs = example_inputs(cfg, batch=2, height=32, width=64, seed=1, label_dtype=label_dtype)
    inputs["has_history"][:] = 0
    ort_state = (inputs["prev_labels"], inputs["prev_frames"])
    for t in range(10):
        frame = example_inputs(cfg, batch=2, height=32, width=64, seed=100 + t, label_dtype=label_dtype)
        frame["has_history"][:] = 0 if t == 0 else 1
        ours = dict(frame, prev_labels=ort_state[0], prev_frames=ort_state[1])
        ort_out = session.run(None, {n: ours[n].numpy() for n in names})
        with torch.no_grad():
            ref = step(**step_arguments(cfg, ours))
        torch_frame = float_frames.pop().permute(0, 2, 3, 1).numpy()  # [-1, 1]
        ort_frame = ort_out[0].astype(np.float64) / 127.5 - 1.0
        worst = float(np.abs(ort_frame - torch_frame).max())
        assert worst <= 0.5 / 127.5 + 1e-3, (
            f"step {t}: ORT differs from PyTorch by {worst:.5f} (beyond rounding + 1e-3)"
        )
        assert np.array_equal(ort_out[1], ref[1].numpy())
        ort_state = (torch.from_numpy(ort_out[1]), torch.from_numpy(ort_out[2]))
    hook.remove()


def test_ort_batch_rows_equal_single_runs(exported) -> None:
    cfg, _, _, session, label_dtype = exported
    names = input_names(cfg)
    inputs = example_inputs(cfg, batch=4, height=32, width=64, seed=7, label_dtype=label_dtype)
    inputs["has_history"][2] = 0
    batched = session.run(None, {n: inputs[n].numpy() for n in names})
    for i in range(4):
        alone = session.run(None, {n: inputs[n][i : i + 1].numpy() for n in names})
        for x, y in zip(batched, alone):
            assert np.array_equal(x[i : i + 1], y), f"row {i} differs when batched"


@pytest.mark.parametrize("training", [False, True])
def test_export_leaves_the_generator_in_its_mode(training: bool) -> None:
    """The exporter puts the module tree it is given in its own mode afterwards; a batch-norm generator left in
    training mode would use batch statistics and update its running ones."""
    generator = Vid2VidGenerator(CONFIGS["tiny-batchnorm"]).train(training)
    export_step_onnx(generator)
    assert {m.training for m in generator.modules()} == {training}
