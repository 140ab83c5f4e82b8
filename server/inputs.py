"""Decode and check one frame's tensors against its session, producing the step's per-frame inputs.

Everything a client can get wrong in a frame is caught here, before the frame is queued, and reported in-band
(FrameRejected) with what was wrong and what was expected; the session lives on. Class IDs are range-checked
and passed through the session's label_remap table; keypoints are drawn with the project's one pose-drawing
function; optional inputs the frame omits are zeros (no instance edges, zero depth, no motion).

Float inputs must be finite: one NaN would turn the frame, and through the history the frames after it, black.
Finite values beyond float16's range, which the step takes, saturate at +-65504 instead of becoming infinite.
"""

from __future__ import annotations

import numpy as np

from neurender.proto.neurender.v1 import render_pb2
from neurender.proto.tensors import TensorError, frame_input_problem, from_tensor
from neurender.retarget.draw import draw_pose_map, pose_layout
from neurender.server.session import SessionSpec

FIELDS = ("labels", "instances", "depth", "motion", "keypoints", "pose_map", "edges")

# The dtype the step graph takes (what may arrive is proto.tensors.FRAME_INPUT_DTYPES).
_GRAPH_DTYPE = {
    "instances": np.uint16,
    "depth": np.float16,
    "motion": np.float16,
    "pose_map": np.uint8,
    "edges": np.uint8,
}
FLOAT16_MAX = float(np.finfo(np.float16).max)


class FrameError(ValueError):
    """A frame the session cannot render; `code` is a gRPC status name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> FrameError:
    return FrameError("INVALID_ARGUMENT", message)


def accepted_fields(spec: SessionSpec) -> list[str]:
    """The FrameInputs fields a frame of this session may carry."""
    model = spec.model
    names = [model.label_input] + [s.name for s in model.optional_inputs]
    if model.label_input == "pose_map":
        names.insert(1, "keypoints")
    return names


def decode_frame(spec: SessionSpec, inputs: render_pb2.FrameInputs, max_people: int) -> dict[str, np.ndarray]:
    """The step's per-frame inputs (no batch axis, graph dtypes) from a frame's tensors; raise FrameError.
    Runs off the event loop: drawing keypoints and checking a large frame take a while."""
    model = spec.model
    present = [name for name in FIELDS if inputs.HasField(name)]
    allowed = accepted_fields(spec)
    extra = [name for name in present if name not in allowed]
    if extra:
        raise _invalid(
            f"model {model.name} takes no {', '.join(repr(n) for n in extra)}; a frame may carry {', '.join(allowed)}"
        )
    arrays = {name: _decode(spec, name, getattr(inputs, name)) for name in present}
    label = model.label_input
    if label == "pose_map":
        if "keypoints" in arrays and "pose_map" in arrays:
            raise _invalid("frame carries both keypoints and pose_map; expected one of them")
        if "keypoints" in arrays:
            arrays["pose_map"] = _draw(spec, arrays.pop("keypoints"), max_people)
    if label not in arrays:
        wanted = "keypoints or pose_map" if label == "pose_map" else label
        raise _invalid(f"frame lacks {wanted}, which model {model.name} requires")
    if label == "labels":
        arrays["labels"] = _class_ids(spec, arrays["labels"])
    for spec_input in model.optional_inputs:
        if spec_input.name not in arrays:
            arrays[spec_input.name] = _zeros(spec, spec_input.name)
    return arrays


def _expected_shape(spec: SessionSpec, name: str) -> tuple[int, ...] | None:
    h, w = spec.height, spec.width
    return {"motion": (h, w, 2), "pose_map": (h, w, 3), "keypoints": None}.get(name, (h, w))


def _decode(spec: SessionSpec, name: str, tensor) -> np.ndarray:
    try:
        array = from_tensor(tensor, name)
    except TensorError as err:
        raise _invalid(str(err)) from None
    problem = frame_input_problem(name, array.dtype)
    if problem:
        raise _invalid(problem)
    shape = _expected_shape(spec, name)
    if shape is not None and array.shape != shape:
        raise _invalid(
            f"{name} shape is {list(array.shape)}, expected {list(shape)} for this session's "
            f"{spec.height}x{spec.width} (HxW) frames"
        )
    if array.dtype.kind == "f" and name != "keypoints":  # keypoints: after their (cheaper) bounds, in _draw
        array = _finite(name, array)
    graph_dtype = _GRAPH_DTYPE.get(name)
    return array.astype(graph_dtype, copy=False) if graph_dtype is not None else array


def _finite(name: str, array: np.ndarray) -> np.ndarray:
    """The array if every value is finite, clamped to float16's range; else FrameError counting the others."""
    bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    if bad:
        raise _invalid(f"{name} has {bad} non-finite value(s) (NaN or +-inf) of {array.size}; expected finite values")
    if array.dtype == np.float16 or not array.size or FLOAT16_MAX >= max(-float(array.min()), float(array.max())):
        return array
    return np.clip(array, -FLOAT16_MAX, FLOAT16_MAX)


def _class_ids(spec: SessionSpec, labels: np.ndarray) -> np.ndarray:
    """Class IDs through the session's label_remap; IDs it cannot render are refused by value, never drawn as
    another class."""
    lut = spec.label_lut
    top = int(labels.max()) if labels.size else 0
    if top >= len(lut):
        lut = np.pad(lut, (0, top + 1 - len(lut)), constant_values=-1)
    mapped = np.take(lut, labels)
    refused = mapped < 0
    if refused.any():
        ids = np.unique(labels[refused])
        shown = ", ".join(str(int(i)) for i in ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
        n = spec.model.num_classes
        raise _invalid(
            f"labels hold class ID{'s' if len(ids) > 1 else ''} {shown} ({int(refused.sum())} pixels) that "
            f"model {spec.model.name} was not trained on (classes 0..{n - 1}, less any unused_*); "
            "map them onto its classes with the session's label_remap"
        )
    return mapped.astype(spec.model.label_dtype)


def _draw(spec: SessionSpec, keypoints: np.ndarray, max_people: int) -> np.ndarray:
    convention = spec.model.description.pose
    if not convention.skeleton:
        raise FrameError(
            "FAILED_PRECONDITION",
            f"model {spec.model.name} has no pose convention in its bundle to draw "
            "keypoints with; send pose_map instead",
        )
    size = pose_layout(convention).size
    if keypoints.ndim not in (2, 3) or keypoints.shape[-2:] != (size, 3):
        raise _invalid(
            f"keypoints shape is {list(keypoints.shape)}, expected [people, {size}, 3] (x, y, confidence) "
            f"for model {spec.model.name}'s {convention.skeleton} convention"
        )
    people = keypoints.shape[0] if keypoints.ndim == 3 else 1
    if people > max_people:
        raise _invalid(
            f"keypoints hold {people} people, more than this server's max_people {max_people}; "
            "send fewer people or a pose_map"
        )
    keypoints = _finite("keypoints", keypoints)
    try:
        return draw_pose_map(keypoints, spec.height, spec.width, convention)
    except ValueError as err:
        raise _invalid(f"keypoints: {err}") from None


def _zeros(spec: SessionSpec, name: str) -> np.ndarray:
    return np.zeros(_expected_shape(spec, name), _GRAPH_DTYPE[name])
