"""Export the generator step to one ONNX graph with a dynamic batch of sessions and dynamic frame size."""

from __future__ import annotations

import io
import warnings

import onnx
import torch

from neurender.training.model.config import GeneratorConfig
from neurender.training.model.generator import Vid2VidGenerator
from neurender.training.model.step import OUTPUTS, GeneratorStep, example_inputs, input_names, step_arguments

OPSET = 17


def dynamic_axes(cfg: GeneratorConfig) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for name in input_names(cfg) + list(OUTPUTS):
        if name in ("has_history",):
            axes[name] = {0: "batch"}
        elif name == "style":
            axes[name] = {0: "batch"}
        elif name in ("prev_labels", "prev_frames", "next_prev_labels", "next_prev_frames"):
            axes[name] = {0: "batch", 2: "height", 3: "width"}
        else:
            axes[name] = {0: "batch", 1: "height", 2: "width"}
    return axes


def export_step_onnx(generator: Vid2VidGenerator, label_dtype: torch.dtype = torch.uint8) -> bytes:
    """The step graph as ONNX bytes. The generator is exported in eval mode (norms use running statistics).

    It is traced on a small non-square frame valid for the config (sides multiples of its multiple_of, e.g.
    32x48, or 64x96 for the paper's street preset); height and width stay dynamic in the graph.

    The TorchScript exporter (fast, and exact for this graph) cannot trace uint16 tensors, so uint16 inputs
    are traced as int32 and their declared type is set back to uint16 afterwards; that is sound because each
    such input only feeds Cast nodes, and each uint16 output comes straight from a Cast (both checked).
    """
    cfg = generator.cfg
    was_training = generator.training
    step = _PositionalStep(GeneratorStep(generator), input_names(cfg)).eval()
    m = cfg.multiple_of
    inputs = example_inputs(
        cfg, batch=2, height=m * max(2, 32 // m), width=m * max(3, 48 // m), label_dtype=label_dtype
    )
    names = input_names(cfg)
    uint16_inputs = {n for n, t in inputs.items() if t.dtype == torch.uint16}
    traced = {n: t.to(torch.int32) if n in uint16_inputs else t for n, t in inputs.items()}
    buffer = io.BytesIO()
    # The exporter leaves the module tree in the mode of the module it was given; the caller's generator gets
    # its own mode back (a batch norm left in training mode would go on updating its running statistics).
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                step,
                tuple(traced[n] for n in names),
                buffer,
                input_names=names,
                output_names=list(OUTPUTS),
                dynamic_axes=dynamic_axes(cfg),
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        generator.train(was_training)
    model = onnx.load_from_string(buffer.getvalue())
    uint16_outputs = {"next_prev_labels"} if "prev_labels" in uint16_inputs else set()
    _retype_int32_as_uint16(model, uint16_inputs, uint16_outputs)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


class _PositionalStep(torch.nn.Module):
    """The step with its inputs in graph order (the exporter passes them positionally)."""

    def __init__(self, step: GeneratorStep, names: list[str]) -> None:
        super().__init__()
        self.step = step
        self.names = names

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.step(**step_arguments(self.step.cfg, dict(zip(self.names, args))))


def _retype_int32_as_uint16(model: onnx.ModelProto, inputs: set[str], outputs: set[str]) -> None:
    graph = model.graph
    for value in graph.input:
        if value.name in inputs:
            consumers = [n for n in graph.node if value.name in n.input]
            if any(n.op_type not in ("Cast", "Shape") for n in consumers):
                raise RuntimeError(
                    f"uint16 input {value.name!r} feeds {[n.op_type for n in consumers]}, expected only Cast or Shape"
                )
            value.type.tensor_type.elem_type = onnx.TensorProto.UINT16
    for value in graph.output:
        if value.name in outputs:
            producer = next(n for n in graph.node if value.name in n.output)
            if producer.op_type != "Cast":
                raise RuntimeError(f"uint16 output {value.name!r} comes from {producer.op_type}, expected Cast")
            for attr in producer.attribute:
                if attr.name == "to":
                    attr.i = onnx.TensorProto.UINT16
            value.type.tensor_type.elem_type = onnx.TensorProto.UINT16
