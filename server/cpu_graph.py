"""Rewrites of a step graph for ONNX Runtime's CPU provider: the same function, less work.

The bundle's generator.onnx stays the portable graph; these rewrites happen when a CPU session is made (GPU
providers run the graph as it is, where dense convolution is cheap):

- Convolutions over the full-resolution one-hot label frames become graph inputs, computed by the native
  table lookup of onehot_lookup.py; their dense extra channels (depth, instance edges...) keep a small
  convolution of their own. Without the native kernel (`lookups=False`) they stay dense convolutions.
- A convolution over label maps normalised as x / d - s (pose and edge maps; through a reshape and a reflection
  pad) reads x itself, with its weight divided by d and s times the weight's sum taken off its bias: the same
  function without an elementwise pass over the maps (2.7 ms of a pose step at 256x256 in OpenVINO).
- Sibling convolutions that read the same tensor through the same padding (the flow and mask heads, the first
  convolutions of the image and flow decoders) become one convolution and a Split.
- Output heads (a KxK convolution to at most 4 channels at full resolution) run on a 2x2 space-to-depth view:
  a ceil(K/2)-square convolution from 4*C to 4*out channels at half resolution, then DepthToSpace. The CPU
  kernels work in blocks of 16 output channels, so a 3-channel head computes 16 and wastes 13; on the
  space-to-depth view it computes 12 of 16. Measured here: 2.2x faster per head. It needs even padded frame
  sides, which the step's frame-size rule (multiples of 2**n_downsample) guarantees.
- The session state leaves the graph: the backend stacks the label history (filled with the current map on a
  first frame) and computes next_prev_labels and next_prev_frames beside the graph, in numpy (step_state.py);
  the graph reads the stacked labels as an input. Inputs the graph no longer reads (the class IDs, once lookups
  replace their one-hot encoding) are dropped. As graph operators over broadcast uint8 tensors this work cost
  OpenVINO 4.8 ms (frames) and 4.7 ms (pose-map labels) of a step at 256x256.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from neurender.server.onehot_lookup import OneHotConv

FEATURE_INPUT = "one_hot_conv_{index}"
STATE_OUTPUTS = ("next_prev_labels", "next_prev_frames")
STACKED_LABELS = "stacked_labels"
_FOLDABLE = {"Cast", "Concat", "ConstantOfShape", "Gather", "Reshape", "Slice", "Squeeze", "Transpose", "Unsqueeze"}


def rewrite_for_cpu(model: onnx.ModelProto, lookups: bool = True) -> tuple[onnx.ModelProto, list[OneHotConv]]:
    """The rewritten model (checked) and the lookups that produce its new inputs, in order (none without
    `lookups`: the one-hot convolutions stay in the graph)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = _Graph(model.graph)
    split = split_one_hot_convs(graph) if lookups else []
    fold_input_normalisation(graph)
    merge_sibling_convs(graph)
    heads_on_space_to_depth(graph)
    history_outside_graph(graph)
    graph.prune()
    onnx.checker.check_model(model)
    return model, split


class _Graph:
    """A GraphProto with its producers and constants (folded on demand), edited in place."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.proto = graph
        self.constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.reindex()

    def reindex(self) -> None:
        self.producers = {out: node for node in self.proto.node for out in node.output}

    def producer(self, name: str, op_type: str) -> onnx.NodeProto | None:
        node = self.producers.get(name)
        return node if node is not None and node.op_type == op_type else None

    def constant(self, name: str) -> np.ndarray | None:
        """The value of a tensor computed from constants only (the exporter builds Pad's pads with a few ops)."""
        if name not in self.constants:
            node = self.producers.get(name)
            if node is None or node.op_type not in _FOLDABLE:
                return None
            values = {i: self.constant(i) for i in node.input if i}
            if any(v is None for v in values.values()):
                return None
            self.constants.update(zip(node.output, ReferenceEvaluator(node).run(None, values)))
        return self.constants[name]

    def replace_nodes(self, nodes: list[onnx.NodeProto]) -> None:
        del self.proto.node[:]
        self.proto.node.extend(nodes)
        self.reindex()

    def add_initializer(self, name: str, value: np.ndarray) -> None:
        self.proto.initializer.append(
            numpy_helper.from_array(np.array(value, order="C"), name)
        )  # ascontiguousarray makes 0-d 1-d
        self.constants[name] = value

    def prune(self) -> None:
        """Drop the nodes and initializers no graph output depends on any more."""
        needed: set[str] = set()
        stack = [o.name for o in self.proto.output]
        while stack:
            name = stack.pop()
            if name not in needed:
                needed.add(name)
                node = self.producers.get(name)
                if node is not None:
                    stack.extend(i for i in node.input if i)
        self.replace_nodes([n for n in self.proto.node if any(o in needed for o in n.output)])
        initializers = [i for i in self.proto.initializer if i.name in needed]
        del self.proto.initializer[:]
        self.proto.initializer.extend(initializers)
        inputs = [i for i in self.proto.input if i.name in needed]
        del self.proto.input[:]
        self.proto.input.extend(inputs)


def history_outside_graph(graph: _Graph) -> None:
    """The stacked label history becomes the input STACKED_LABELS ([B, L+1, ...] in the label input's dtype, cast
    to the graph's integer type here as the step does), and the state outputs are dropped."""
    name = "next_prev_labels"  # = Cast(stacked[:, 1:]), perhaps through more casts
    while (node := graph.producers.get(name)) is not None and node.op_type in ("Cast", "Slice"):
        name = node.input[0]
    stacked = graph.producer(name, "Concat")
    prev_labels = next((i for i in graph.proto.input if i.name == "prev_labels"), None)
    label_input = graph.proto.input[0].name
    widen = next((n for n in graph.proto.node if n.op_type == "Cast" and list(n.input) == [label_input]), None)
    if stacked is not None and prev_labels is not None and widen is not None:
        stacked_input = onnx.ValueInfoProto()
        stacked_input.CopyFrom(prev_labels)
        stacked_input.name = STACKED_LABELS
        frames = stacked_input.type.tensor_type.shape.dim[1]  # L + 1 label maps
        if frames.HasField("dim_value"):
            frames.dim_value += 1
        else:
            frames.dim_param = f"{STACKED_LABELS}_frames"
        graph.proto.input.append(stacked_input)
        cast = helper.make_node(
            "Cast",
            [STACKED_LABELS],
            [stacked.output[0]],
            name=f"{stacked.name}/StackedLabels",
            to=_attributes(widen)["to"],
        )
        graph.replace_nodes([cast if node is stacked else node for node in graph.proto.node])
    outputs = [o for o in graph.proto.output if o.name not in STATE_OUTPUTS]
    del graph.proto.output[:]
    graph.proto.output.extend(outputs)


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _reflect_pad(graph: _Graph, name: str, half: int) -> onnx.NodeProto | None:
    """The Pad node producing `name` if it reflects H and W by `half` on each side."""
    pad = graph.producer(name, "Pad")
    if pad is None or _attributes(pad).get("mode") != b"reflect" or len(pad.input) != 2:
        return None
    pads = graph.constant(pad.input[1])
    return pad if pads is not None and pads.tolist() == [0, 0, half, half, 0, 0, half, half] else None


def _plain_conv(graph: _Graph, conv: onnx.NodeProto) -> np.ndarray | None:
    """The weight of a unit-stride, undilated, ungrouped, unpadded Conv with a constant weight, else None."""
    if conv.op_type != "Conv" or graph.constant(conv.input[1]) is None:
        return None
    attrs = _attributes(conv)
    if (
        any(v != 1 for v in attrs.get("strides", []) + attrs.get("dilations", []))
        or attrs.get("group", 1) != 1
        or any(attrs.get("pads", []))
    ):
        return None
    return graph.constant(conv.input[1])


def _bias(graph: _Graph, conv: onnx.NodeProto) -> np.ndarray | None:
    return graph.constant(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else None


def split_one_hot_convs(graph: _Graph) -> list[OneHotConv]:
    """Replace each convolution over the full-resolution one-hot label frames by a new graph input.

    Matched: Conv(Pad(reflect, K//2)(Concat(Reshape(Cast(Equal(ids, arange(C)))), extras...))). Coarser scales
    read average-pooled labels (no longer one-hot) and stay dense; pose and edge maps are images and have no
    class-ID frames (no lookups).
    """
    prev_labels = next((i for i in graph.proto.input if i.name == "prev_labels"), None)
    if prev_labels is None or len(prev_labels.type.tensor_type.shape.dim) != 4:
        return []
    frames = prev_labels.type.tensor_type.shape.dim[1].dim_value + 1
    lookups: list[OneHotConv] = []
    nodes: list[onnx.NodeProto] = []
    for node in graph.proto.node:
        match = _one_hot_conv(graph, node, frames)
        if match is None:
            nodes.append(node)
            continue
        pad, parts, weight, one_hot_channels = match
        feature_input = FEATURE_INPUT.format(index=len(lookups))
        lookups.append(OneHotConv.from_weight(feature_input, weight[:, :one_hot_channels], _bias(graph, node), frames))
        graph.proto.input.append(
            helper.make_tensor_value_info(
                feature_input, onnx.TensorProto.FLOAT, ["batch", weight.shape[0], "height", "width"]
            )
        )
        nodes.extend(_lookup_plus_extras(graph, node, pad, parts[1:], weight[:, one_hot_channels:], feature_input))
    graph.replace_nodes(nodes)
    return lookups


def _one_hot_conv(graph: _Graph, conv: onnx.NodeProto, frames: int):
    """(pad, concatenated parts, weight, one-hot channels) if `conv` reads one-hot label frames, else None."""
    weight = _plain_conv(graph, conv)
    if weight is None or weight.shape[2] != weight.shape[3] or weight.shape[2] % 2 == 0:
        return None
    pad = _reflect_pad(graph, conv.input[0], weight.shape[2] // 2)
    if pad is None:
        return None
    concat = graph.producer(pad.input[0], "Concat")
    parts = list(concat.input) if concat is not None and _attributes(concat)["axis"] == 1 else [pad.input[0]]
    reshape = graph.producer(parts[0], "Reshape")
    cast = graph.producer(reshape.input[0], "Cast") if reshape is not None else None
    equal = graph.producer(cast.input[0], "Equal") if cast is not None else None
    classes = graph.constant(equal.input[1]) if equal is not None else None
    if classes is None or classes.reshape(-1).tolist() != list(range(classes.size)):
        return None
    one_hot_channels = frames * classes.size
    return (pad, parts, weight, one_hot_channels) if weight.shape[1] >= one_hot_channels else None


def _lookup_plus_extras(
    graph: _Graph,
    conv: onnx.NodeProto,
    pad: onnx.NodeProto,
    extras: list[str],
    extra_weight: np.ndarray,
    feature_input: str,
) -> list[onnx.NodeProto]:
    """Nodes that give the convolution's output: the looked-up features, plus a convolution over the extras."""
    output = conv.output[0]
    if not extras:
        return [helper.make_node("Identity", [feature_input], [output], name=f"{conv.name}/OneHotLookup")]
    prefix = f"{conv.name}/Extras"
    nodes = []
    extras_input = extras[0]
    if len(extras) > 1:
        extras_input = f"{prefix}/Concat_output"
        nodes.append(helper.make_node("Concat", extras, [extras_input], name=f"{prefix}/Concat", axis=1))
    graph.add_initializer(f"{prefix}/weight", extra_weight)
    return nodes + [
        helper.make_node(
            "Pad", [extras_input, pad.input[1]], [f"{prefix}/Pad_output"], name=f"{prefix}/Pad", mode="reflect"
        ),
        helper.make_node(
            "Conv", [f"{prefix}/Pad_output", f"{prefix}/weight"], [f"{prefix}/Conv_output"], name=f"{prefix}/Conv"
        ),
        helper.make_node("Add", [feature_input, f"{prefix}/Conv_output"], [output], name=f"{conv.name}/OneHotLookup"),
    ]


def fold_input_normalisation(graph: _Graph) -> None:
    """Conv(Pad(Reshape(x / d - s))) -> Conv'(Pad(Reshape(x))) with weight / d and bias - s * sum(weight), for
    scalar constants d and s and tensors whose values nothing else reads (a reflection pad repeats values, so it
    commutes with the affine map; Shape nodes read x's shape instead, which is the same)."""
    readers: dict[str, int] = {}
    shapes: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.proto.node:
        for name in node.input:
            if node.op_type == "Shape":
                shapes.setdefault(name, []).append(node)
            else:
                readers[name] = readers.get(name, 0) + 1
    for conv in graph.proto.node:
        weight = _plain_conv(graph, conv)
        half = weight.shape[2] // 2 if weight is not None else 0
        pad = _reflect_pad(graph, conv.input[0], half) if half else None
        reshape = graph.producer(pad.input[0], "Reshape") if pad is not None else None
        sub = graph.producer(reshape.input[0], "Sub") if reshape is not None else None
        div = graph.producer(sub.input[0], "Div") if sub is not None else None
        if div is None:
            continue
        scale, shift = graph.constant(div.input[1]), graph.constant(sub.input[1])
        if scale is None or shift is None or scale.size != 1 or shift.size != 1:
            continue
        if any(readers.get(node.output[0]) != 1 for node in (div, sub, reshape, pad)):
            continue
        bias = _bias(graph, conv)
        bias = np.zeros(weight.shape[0], np.float32) if bias is None else bias
        name = f"{conv.name}/FoldedNormalisation"
        graph.add_initializer(f"{name}/weight", (weight / scale.item()).astype(np.float32))
        graph.add_initializer(f"{name}/bias", (bias - shift.item() * weight.sum(axis=(1, 2, 3))).astype(np.float32))
        reshape.input[0] = div.input[0]
        for shape in shapes.get(div.output[0], []) + shapes.get(sub.output[0], []):
            shape.input[0] = div.input[0]
        del conv.input[1:]
        conv.input.extend([f"{name}/weight", f"{name}/bias"])


def merge_sibling_convs(graph: _Graph) -> None:
    """One Conv + Split for convolutions of equal kernel size that read the same tensor (directly, or through
    identical reflection pads)."""
    groups: dict[tuple, list[onnx.NodeProto]] = {}
    for node in graph.proto.node:
        weight = _plain_conv(graph, node)
        if weight is None:
            continue
        half = weight.shape[2] // 2
        pad = _reflect_pad(graph, node.input[0], half) if weight.shape[2] == weight.shape[3] and half else None
        source = ("pad", pad.input[0], half) if pad is not None else ("tensor", node.input[0])
        groups.setdefault((source, weight.shape[1:]), []).append(node)
    merged = {id(group[0]): group for group in groups.values() if len(group) > 1}
    absorbed = {id(node) for group in merged.values() for node in group[1:]}
    nodes: list[onnx.NodeProto] = []
    for node in graph.proto.node:
        if id(node) in merged:
            nodes.extend(_merged(graph, merged[id(node)]))
        elif id(node) not in absorbed:
            nodes.append(node)
    graph.replace_nodes(nodes)


def _merged(graph: _Graph, convs: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    weights = [graph.constant(c.input[1]) for c in convs]
    biases = [_bias(graph, c) for c in convs]
    name = f"{convs[0].name}/Merged"
    graph.add_initializer(f"{name}/weight", np.concatenate(weights))
    graph.add_initializer(f"{name}/split", np.array([w.shape[0] for w in weights], np.int64))
    inputs = [convs[0].input[0], f"{name}/weight"]
    if any(b is not None for b in biases):
        graph.add_initializer(
            f"{name}/bias",
            np.concatenate([np.zeros(w.shape[0], w.dtype) if b is None else b for w, b in zip(weights, biases)]),
        )
        inputs.append(f"{name}/bias")
    return [
        helper.make_node("Conv", inputs, [f"{name}/output"], name=f"{name}/Conv"),
        helper.make_node(
            "Split", [f"{name}/output", f"{name}/split"], [c.output[0] for c in convs], name=f"{name}/Split", axis=1
        ),
    ]


THIN_HEAD_CHANNELS = 4


def heads_on_space_to_depth(graph: _Graph) -> None:
    """Rewrite each reflection-padded KxK convolution with at most THIN_HEAD_CHANNELS outputs on a 2x2
    space-to-depth view (see the module docstring)."""
    nodes: list[onnx.NodeProto] = []
    for node in graph.proto.node:
        weight = _plain_conv(graph, node)
        thin = weight is not None and weight.shape[0] <= THIN_HEAD_CHANNELS and weight.shape[2] == weight.shape[3] > 1
        if not thin or _reflect_pad(graph, node.input[0], weight.shape[2] // 2) is None:
            nodes.append(node)
            continue
        name = f"{node.name}/SpaceToDepth"
        graph.add_initializer(f"{name}/weight", space_to_depth_weight(weight))
        inputs = [f"{name}/output", f"{name}/weight"]
        bias = _bias(graph, node)
        if bias is not None:
            graph.add_initializer(f"{name}/bias", np.tile(bias, 4))
            inputs.append(f"{name}/bias")
        nodes += [
            helper.make_node("SpaceToDepth", [node.input[0]], [f"{name}/output"], name=name, blocksize=2),
            helper.make_node("Conv", inputs, [f"{name}/Conv_output"], name=f"{name}/Conv"),
            helper.make_node(
                "DepthToSpace",
                [f"{name}/Conv_output"],
                [node.output[0]],
                name=f"{name}/DepthToSpace",
                blocksize=2,
                mode="DCR",
            ),
        ]
    graph.replace_nodes(nodes)


def space_to_depth_weight(weight: np.ndarray) -> np.ndarray:
    """[O, C, K, K] -> [4*O, 4*C, ceil(K/2), ceil(K/2)] for the same convolution on 2x2 space-to-depth input.

    Output pixel (2Y+py, 2X+px) of the valid convolution reads input (2Y+py+ky, 2X+px+kx), which is block
    (Y+a, X+b), phase (qy, qx) with ky = 2a+qy-py and kx = 2b+qx-px. SpaceToDepth puts phase (qy, qx) of channel
    c at (qy*2+qx)*C + c, and DepthToSpace (DCR) reads phase (py, px) of output o from (py*2+px)*O + o.
    """
    out_ch, in_ch, k, _ = weight.shape
    half = (k + 1) // 2
    result = np.zeros((4 * out_ch, 4 * in_ch, half, half), weight.dtype)
    for py in range(2):
        for px in range(2):
            for qy in range(2):
                for qx in range(2):
                    for a in range(half):
                        for b in range(half):
                            ky, kx = 2 * a + qy - py, 2 * b + qx - px
                            if 0 <= ky < k and 0 <= kx < k:
                                rows = slice((py * 2 + px) * out_ch, (py * 2 + px + 1) * out_ch)
                                cols = slice((qy * 2 + qx) * in_ch, (qy * 2 + qx + 1) * in_ch)
                                result[rows, cols, a, b] = weight[:, :, ky, kx]
    return result
