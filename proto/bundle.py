"""The model bundle: the folder that training writes and the server loads.

    BUNDLE/
      model.json       the JSON form of neurender.v1.ModelDescription (one schema with GetModel)
      generator.onnx   the step graph (opset >= 17)
      generator.pt     optional: weights and config for the PyTorch backend

`read_bundle` parses and validates; every problem is reported with the field that is wrong and what was
expected, so a bad bundle is refused on load instead of failing on the first frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format

from neurender.common.errors import UserError
from neurender.proto.neurender.v1 import model_pb2, tensor_pb2

SCHEMA_VERSION = 1
MODEL_JSON = "model.json"
GENERATOR_ONNX = "generator.onnx"
GENERATOR_PT = "generator.pt"

# The one modality table: config/dataset names <-> the wire's enum, and the label input each modality's frames
# carry (every other input is optional).
MODALITIES = {"segmentation": model_pb2.SEGMENTATION, "pose": model_pb2.POSE, "edges": model_pb2.EDGES}
MODALITY_NAMES = {value: name for name, value in MODALITIES.items()}
REQUIRED_INPUT = {
    model_pb2.SEGMENTATION: "labels",
    model_pb2.POSE: "pose_map",
    model_pb2.EDGES: "edges",
}
LABEL_INPUT = {name: REQUIRED_INPUT[value] for name, value in MODALITIES.items()}  # by modality name
POSE_SKELETONS = ("body25", "coco18")
KNOWN_INPUTS = {
    "labels": (tensor_pb2.UINT8, tensor_pb2.UINT16),
    "instances": (tensor_pb2.UINT16,),
    "depth": (tensor_pb2.FLOAT16,),
    "motion": (tensor_pb2.FLOAT16,),
    "pose_map": (tensor_pb2.UINT8,),
    "edges": (tensor_pb2.UINT8,),
}


class BundleError(UserError, ValueError):
    """A model bundle that cannot be served; the message names the file, the field and what was expected."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    description: model_pb2.ModelDescription

    @property
    def onnx_path(self) -> Path:
        return self.path / GENERATOR_ONNX

    @property
    def torch_path(self) -> Path | None:
        pt = self.path / GENERATOR_PT
        return pt if pt.exists() else None

    @property
    def name(self) -> str:
        return self.description.name

    def input(self, name: str) -> model_pb2.InputSpec | None:
        for spec in self.description.inputs:
            if spec.name == name:
                return spec
        return None


def description_to_json(description: model_pb2.ModelDescription) -> str:
    return (
        json_format.MessageToJson(
            description, preserving_proto_field_name=True, indent=2, always_print_fields_with_no_presence=True
        )
        + "\n"
    )


def write_bundle(
    path: Path, description: model_pb2.ModelDescription, onnx_bytes: bytes, torch_payload: bytes | None = None
) -> Bundle:
    """Write a bundle folder after validating its description; files are written whole, then renamed."""
    problems = validate_description(description)
    if problems:
        raise BundleError(f"refusing to write bundle {path}: " + "; ".join(problems))
    path.mkdir(parents=True, exist_ok=True)
    files = {MODEL_JSON: description_to_json(description).encode(), GENERATOR_ONNX: onnx_bytes}
    if torch_payload is not None:
        files[GENERATOR_PT] = torch_payload
    for name, data in files.items():
        tmp = path / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(path / name)
    return Bundle(path, description)


def read_bundle(path: str | Path) -> Bundle:
    """Read and validate a bundle folder; raise BundleError naming every problem found."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"{path}: not a folder; a model bundle is a folder with {MODEL_JSON} and {GENERATOR_ONNX}")
    model_json = path / MODEL_JSON
    if not model_json.exists():
        raise BundleError(f"{path}: missing {MODEL_JSON}")
    try:
        raw = json.loads(model_json.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{model_json}: not valid JSON ({err})") from None
    description = model_pb2.ModelDescription()
    try:
        json_format.ParseDict(raw, description)
    except json_format.ParseError as err:
        raise BundleError(f"{model_json}: {err}") from None
    problems = validate_description(description)
    onnx = path / GENERATOR_ONNX
    if not onnx.exists():
        problems.append(f"missing {GENERATOR_ONNX}")
    elif onnx.stat().st_size == 0:
        problems.append(f"{GENERATOR_ONNX} is empty")
    if problems:
        raise BundleError(f"{path}: " + "; ".join(problems))
    return Bundle(path, description)


def validate_description(d: model_pb2.ModelDescription) -> list[str]:
    """Every problem with a model description, each naming the field and what was expected."""
    problems: list[str] = []
    if d.schema_version != SCHEMA_VERSION:
        problems.append(f"schema_version is {d.schema_version}, expected {SCHEMA_VERSION}")
    if not d.name or not all(c.isalnum() or c in "-_." for c in d.name):
        problems.append(f"name {d.name!r} must be non-empty letters, digits, '-', '_' or '.'")
    if d.modality == model_pb2.MODALITY_UNSPECIFIED:
        problems.append("modality is unset, expected SEGMENTATION, POSE or EDGES")
    if d.modality == model_pb2.SEGMENTATION:
        if not d.classes:
            problems.append("classes is empty, a SEGMENTATION model needs its class table")
        ids = [c.id for c in d.classes]
        if ids != list(range(len(ids))):
            problems.append(
                f"classes ids must be 0..{len(ids) - 1} in order, got {ids[:8]}{'...' if len(ids) > 8 else ''}"
            )
    for c in d.classes:
        if len(c.color) != 3 or any(v > 255 for v in c.color):
            problems.append(f"classes[{c.id}].color must be 3 values in 0-255, got {list(c.color)}")
    names = [s.name for s in d.inputs]
    if len(set(names)) != len(names):
        problems.append(f"inputs has duplicate names: {names}")
    for spec in d.inputs:
        allowed = KNOWN_INPUTS.get(spec.name)
        if allowed is None:
            problems.append(f"inputs: unknown input {spec.name!r}, expected one of {sorted(KNOWN_INPUTS)}")
        elif spec.dtype not in allowed:
            problems.append(
                f"inputs[{spec.name}].dtype is {tensor_pb2.DType.Name(spec.dtype)}, expected "
                + " or ".join(tensor_pb2.DType.Name(a) for a in allowed)
            )
    required = REQUIRED_INPUT.get(d.modality)
    if required and required not in names:
        problems.append(f"inputs lacks {required!r}, which a {model_pb2.Modality.Name(d.modality)} model requires")
    if d.motion_vectors and "motion" not in names:
        problems.append("motion_vectors is true but inputs lacks 'motion'")
    if d.history_length < 1:
        problems.append(f"history_length is {d.history_length}, expected at least 1")
    fs = d.frame_size
    if fs.multiple_of < 1:
        problems.append(f"frame_size.multiple_of is {fs.multiple_of}, expected at least 1")
    if not (0 < fs.min_height <= fs.max_height and 0 < fs.min_width <= fs.max_width):
        problems.append(
            f"frame_size needs 0 < min <= max, got height {fs.min_height}-{fs.max_height}, width {fs.min_width}-{fs.max_width}"
        )
    if d.colour_space != "sRGB":
        problems.append(f"colour_space is {d.colour_space!r}, expected 'sRGB'")
    if d.style.style_dim:
        class_ids = {c.id for c in d.classes}
        for cluster in d.style.clusters:
            if cluster.class_id not in class_ids:
                problems.append(f"style.clusters: class_id {cluster.class_id} is not in classes")
            if len(cluster.centres) != cluster.n_clusters * d.style.style_dim:
                problems.append(
                    f"style.clusters[class {cluster.class_id}].centres has {len(cluster.centres)} values, "
                    f"expected n_clusters x style_dim = {cluster.n_clusters * d.style.style_dim}"
                )
    if d.modality == model_pb2.POSE:
        if d.pose.skeleton not in POSE_SKELETONS:
            problems.append(f"pose.skeleton is {d.pose.skeleton!r}, expected one of {', '.join(POSE_SKELETONS)}")
        if d.pose.limb_width < 1:
            problems.append(f"pose.limb_width is {d.pose.limb_width}, expected at least 1 pixel")
    if "depth" in names and d.max_depth <= 0:
        problems.append("max_depth must be positive when the model takes depth")
    return problems


def check_frame_size(d: model_pb2.ModelDescription, height: int, width: int) -> str | None:
    """None if the model can render frames of this size, else what was wrong and what is expected."""
    fs = d.frame_size
    if not (fs.min_height <= height <= fs.max_height and fs.min_width <= width <= fs.max_width):
        return (
            f"frame size {height}x{width} (HxW) is outside the model's range "
            f"{fs.min_height}-{fs.max_height} x {fs.min_width}-{fs.max_width}"
        )
    if height % fs.multiple_of or width % fs.multiple_of:
        return f"frame size {height}x{width} (HxW) must have both sides a multiple of {fs.multiple_of}"
    return None
