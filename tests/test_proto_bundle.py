"""The model bundle: write, read, and every validation error names its field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurender.proto.bundle import (
    BundleError,
    check_frame_size,
    description_to_json,
    read_bundle,
    validate_description,
    write_bundle,
)
from neurender.proto.neurender.v1 import model_pb2, tensor_pb2


def description() -> model_pb2.ModelDescription:
    d = model_pb2.ModelDescription(
        schema_version=1, name="street-tiny", modality=model_pb2.SEGMENTATION, history_length=2, colour_space="sRGB"
    )
    for i, name in enumerate(["sky", "road", "car"]):
        d.classes.add(id=i, name=name, color=[i * 40, 100, 200])
    d.inputs.add(name="labels", dtype=tensor_pb2.UINT8, shape=[-1, -1], required=True)
    d.frame_size.CopyFrom(
        model_pb2.FrameSizeRule(min_height=8, min_width=8, max_height=512, max_width=512, multiple_of=4)
    )
    return d


def test_round_trip(tmp_path: Path) -> None:
    written = write_bundle(tmp_path / "b", description(), b"onnx-bytes", b"pt-bytes")
    bundle = read_bundle(tmp_path / "b")
    assert bundle.description == written.description == description()
    assert bundle.onnx_path.read_bytes() == b"onnx-bytes" and bundle.torch_path is not None
    assert bundle.input("labels").dtype == tensor_pb2.UINT8 and bundle.input("depth") is None
    assert not list((tmp_path / "b").glob(".*.tmp")), "temporary files must be renamed into place"


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: setattr(d, "schema_version", 9), "schema_version"),
        (lambda d: setattr(d, "name", "bad name/"), "name"),
        (lambda d: setattr(d, "modality", model_pb2.MODALITY_UNSPECIFIED), "modality"),
        (lambda d: d.classes[1].__setattr__("id", 7), "classes ids"),
        (lambda d: d.classes[0].color.append(3), "classes[0].color"),
        (lambda d: d.inputs.add(name="normals", dtype=tensor_pb2.FLOAT16), "unknown input 'normals'"),
        (lambda d: d.inputs[0].__setattr__("dtype", tensor_pb2.FLOAT32), "inputs[labels].dtype"),
        (lambda d: setattr(d, "motion_vectors", True), "motion_vectors"),
        (lambda d: setattr(d, "history_length", 0), "history_length"),
        (lambda d: d.frame_size.__setattr__("multiple_of", 0), "frame_size.multiple_of"),
        (lambda d: d.frame_size.__setattr__("min_height", 1024), "frame_size"),
        (lambda d: setattr(d, "colour_space", "linear"), "colour_space"),
        (lambda d: d.inputs.add(name="depth", dtype=tensor_pb2.FLOAT16), "max_depth"),
    ],
)
def test_each_validation_error_names_its_field(tmp_path: Path, mutate, field: str) -> None:
    d = description()
    mutate(d)
    problems = validate_description(d)
    assert any(field in p for p in problems), problems
    path = tmp_path / "bad"
    path.mkdir()
    (path / "model.json").write_text(description_to_json(d))
    (path / "generator.onnx").write_bytes(b"x")
    with pytest.raises(BundleError, match=field.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        read_bundle(path)


def test_pose_models_need_a_known_drawing_convention() -> None:
    d = description()
    d.modality = model_pb2.POSE
    del d.classes[:]
    d.inputs[0].name, d.inputs[0].shape[:] = "pose_map", [-1, -1, 3]
    problems = " ".join(validate_description(d))
    assert "pose.skeleton is ''" in problems and "pose.limb_width is 0" in problems
    d.pose.skeleton, d.pose.limb_width = "body25", 3
    assert validate_description(d) == []


def test_style_table_checks_centre_count() -> None:
    d = description()
    d.style.style_dim = 4
    d.style.clusters.add(class_id=1, n_clusters=2, centres=[0.0] * 7)
    d.style.clusters.add(class_id=9, n_clusters=1, centres=[0.0] * 4)
    problems = " ".join(validate_description(d))
    assert "expected n_clusters x style_dim = 8" in problems and "class_id 9 is not in classes" in problems


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a folder"):
        read_bundle(tmp_path / "nope")
    (tmp_path / "a").mkdir()
    with pytest.raises(BundleError, match="missing model.json"):
        read_bundle(tmp_path / "a")
    (tmp_path / "a" / "model.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(tmp_path / "a")
    (tmp_path / "a" / "model.json").write_text(json.dumps({"name": "x", "nonsense": 1}))
    with pytest.raises(BundleError, match="nonsense"):
        read_bundle(tmp_path / "a")
    (tmp_path / "a" / "model.json").write_text(description_to_json(description()))
    with pytest.raises(BundleError, match="missing generator.onnx"):
        read_bundle(tmp_path / "a")


def test_write_refuses_invalid_description(tmp_path: Path) -> None:
    d = description()
    d.colour_space = ""
    with pytest.raises(BundleError, match="colour_space"):
        write_bundle(tmp_path / "b", d, b"x")
    assert not (tmp_path / "b").exists()


def test_frame_size_rule() -> None:
    d = description()
    assert check_frame_size(d, 64, 128) is None
    assert "multiple of 4" in check_frame_size(d, 66, 128)
    assert "outside the model's range" in check_frame_size(d, 1024, 128)
