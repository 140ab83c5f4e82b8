"""The add-on's bpy-free pass conversion (engine_plugin/blender/passes.py, exr.py), without Blender.

The add-on's package imports bpy, so its pure modules are loaded from their files. Real Cycles passes are
checked in tests/test_blender_addon.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ADDON = Path(__file__).resolve().parents[1] / "engine_plugin" / "blender"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"neurender_blender_addon_{name}", ADDON / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


passes = _load("passes")
exr = _load("exr")


def _channels(layer: str, names: tuple[str, str], object_index: np.ndarray) -> dict[str, np.ndarray]:
    h, w = object_index.shape
    depth = np.full((h, w), 5.0, np.float32)
    depth[0, 0] = 1e10  # Cycles' "no surface"
    vector = {c: np.zeros((h, w), np.float32) for c in "XYZW"}
    vector["X"][:], vector["Y"][:] = 3.0, 2.0
    return {
        f"{layer}.{names[0]}.X": object_index.astype(np.float32),
        f"{layer}.{names[1]}.X": np.zeros((h, w), np.float32),
        f"{layer}.Depth.Z": depth,
        **{f"{layer}.Vector.{c}": plane for c, plane in vector.items()},
    }


@pytest.mark.parametrize("names", [("Object Index", "Material Index"), ("IndexOB", "IndexMA")])  # Blender 5.x, 4.x
def test_passes_from_channels(names):
    index = np.array([[0, 1, 2], [3, 1, 0]])
    got = passes.passes_from_channels(_channels("Layer", names, index), "Layer")
    assert got.object_index.dtype == np.uint16
    np.testing.assert_array_equal(got.object_index, index)
    assert np.isinf(got.depth[0, 0]) and np.all(got.depth.ravel()[1:] == 5.0)
    assert got.motion.shape == (2, 3, 2) and np.all(got.motion == (3.0, -2.0))  # Blender's y points up


def test_missing_pass_names_what_was_expected():
    channels = _channels("Layer", ("Object Index", "Material Index"), np.zeros((2, 2)))
    del channels["Layer.Vector.X"]
    with pytest.raises(passes.PassError, match=r"no Layer\.Vector\.X channel .*expected the view layer's"):
        passes.passes_from_channels(channels, "Layer")
    with pytest.raises(passes.PassError, match="no Other.Depth.Z channel"):
        passes.passes_from_channels(channels, "Other")


def test_class_ids_map_listed_indices_and_keep_the_rest():
    indices = np.array([[0, 1, 7], [7, 2, 1]], np.uint16)
    labels = passes.class_ids(indices, {7: 4, 2: 9}, num_classes=12)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, [[0, 1, 4], [4, 9, 1]])
    assert passes.class_ids(indices, {}, num_classes=300).dtype == np.uint16


def test_class_ids_outside_the_model_are_refused_by_index():
    indices = np.array([[0, 40, 3]], np.uint16)
    with pytest.raises(
        passes.PassError,
        match=r"material pass index 3 -> class 20, material pass index 40 -> class 40: "
        r"the model has classes 0\.\.11",
    ):
        passes.class_ids(indices, {3: 20}, num_classes=12, what="material pass index")


def test_frame_arrays_carry_only_what_the_model_takes():
    index = np.array([[0, 1], [2, 1]])
    got = passes.passes_from_channels(_channels("L", ("Object Index", "Material Index"), index), "L")
    only_labels = passes.frame_arrays(got, "OBJECT", {}, 12, {"labels"})
    assert list(only_labels) == ["labels"]
    every = passes.frame_arrays(got, "MATERIAL", {}, 12, {"labels", "instances", "depth", "motion"}, max_depth=50.0)
    assert {k: v.dtype for k, v in every.items()} == {
        "labels": np.uint8,
        "instances": np.uint16,
        "depth": np.float16,
        "motion": np.float16,
    }
    assert np.isinf(got.depth).any() and np.all(every["depth"][np.isinf(got.depth)] == 50.0)  # no surface: max_depth
    np.testing.assert_array_equal(every["labels"], 0)  # no material has a pass index
    np.testing.assert_array_equal(every["instances"], index)
    with pytest.raises(passes.PassError, match="not class labels; expected a segmentation model"):
        passes.frame_arrays(got, "OBJECT", {}, 12, {"pose_map"})
    with pytest.raises(passes.PassError, match="class source 'WORLD'"):
        passes.frame_arrays(got, "WORLD", {}, 12, {"labels"})


def test_exr_reader_refuses_what_it_cannot_read(tmp_path):
    not_exr = tmp_path / "frame.png"
    not_exr.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    with pytest.raises(exr.ExrError, match="not an OpenEXR file"):
        exr.read_exr(not_exr)
    multipart = tmp_path / "multipart.exr"
    multipart.write_bytes(np.array([exr.MAGIC, 2 | 0x1000], "<i4").tobytes() + b"\0")
    with pytest.raises(exr.ExrError, match="multi-part EXR .* expected a single-part scanline file"):
        exr.read_exr(multipart)
