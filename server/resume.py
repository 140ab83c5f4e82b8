"""A session's history rebuilt from the state its client carried over (OpenSession.resume).

The step's history after k frames since a reset (k < L) is those k frames with the oldest repeated in front
(training/step.py: a first frame fills every slot with itself), so the client sends at most L entries and the
rest are filled here. Each entry's labels go through the same checks as a frame's (decode_frame), so a resumed
history holds exactly what the original session's did: class IDs through the label remap, keypoints drawn.
"""

from __future__ import annotations

import grpc
import numpy as np

from neurender.proto.neurender.v1 import render_pb2
from neurender.proto.tensors import TensorError, from_tensor
from neurender.server.inputs import FIELDS, FrameError, accepted_fields, decode_frame
from neurender.server.session import History, RequestError, SessionSpec

LABEL_FIELDS = ("labels", "keypoints", "pose_map", "edges")


def resumed_history(spec: SessionSpec, state: render_pb2.SessionState, max_people: int) -> History | None:
    """The history `state` describes for a session of `spec`, or None for an empty state; raise RequestError.
    Runs off the event loop, as decode_frame does."""
    INVALID = grpc.StatusCode.INVALID_ARGUMENT
    count, length = len(state.labels), spec.model.description.history_length
    if not count and not state.frames:
        return None
    if len(state.frames) != count:
        raise RequestError(
            INVALID,
            f"open.resume has {count} label entries and {len(state.frames)} frames; "
            "expected one generated frame per label entry",
        )
    if count > length:
        raise RequestError(
            INVALID,
            f"open.resume has {count} entries; model {spec.model.name} keeps a history of "
            f"{length} frames, so at most {length}",
        )
    labels = [_labels(spec, i, inputs, max_people) for i, inputs in enumerate(state.labels)]
    frames = [_frame(spec, i, tensor) for i, tensor in enumerate(state.frames)]
    pad = length - count
    return History(
        prev_labels=np.stack([labels[0]] * pad + labels), prev_frames=np.stack([frames[0]] * pad + frames), valid=True
    )


def _labels(spec: SessionSpec, index: int, inputs: render_pb2.FrameInputs, max_people: int) -> np.ndarray:
    label_fields = [name for name in accepted_fields(spec) if name in LABEL_FIELDS]
    extra = [name for name in FIELDS if inputs.HasField(name) and name not in label_fields]
    if extra:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"open.resume.labels[{index}] carries {', '.join(extra)}; a resume entry carries only the "
            f"label input of model {spec.model.name} ({' or '.join(label_fields)})",
        )
    try:
        return decode_frame(spec, inputs, max_people)[spec.model.label_input]
    except FrameError as err:
        raise RequestError(grpc.StatusCode[err.code], f"open.resume.labels[{index}]: {err.message}") from None


def _frame(spec: SessionSpec, index: int, tensor) -> np.ndarray:
    name = f"open.resume.frames[{index}]"
    try:
        frame = from_tensor(tensor, name)
    except TensorError as err:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from None
    shape = (spec.height, spec.width, 3)
    if frame.dtype != np.uint8 or frame.shape != shape:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{name} is {frame.dtype.name.upper()} {list(frame.shape)}, expected UINT8 {list(shape)} "
            "(the RGB frame the server sent)",
        )
    return frame
