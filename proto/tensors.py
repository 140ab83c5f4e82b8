"""numpy arrays <-> the wire's `Tensor` message (dtype, shape, little-endian C-order bytes).

Both ends use this one codec: the client SDK to send G-buffers and read RAW frames, the server to decode and
check what arrives. Decoding checks everything a peer can get wrong and says what was expected.
"""

from __future__ import annotations

import math

import numpy as np

from neurender.proto.neurender.v1 import tensor_pb2

NUMPY_DTYPES: dict[int, np.dtype] = {
    tensor_pb2.UINT8: np.dtype("<u1"),
    tensor_pb2.UINT16: np.dtype("<u2"),
    tensor_pb2.INT32: np.dtype("<i4"),
    tensor_pb2.FLOAT16: np.dtype("<f2"),
    tensor_pb2.FLOAT32: np.dtype("<f4"),
}
_WIRE_DTYPES = {dtype.newbyteorder("="): wire for wire, dtype in NUMPY_DTYPES.items()}


# The one rule for what each frame input may be on the wire: the client SDK refuses anything else before sending,
# the server refuses it on arrival, with the same words. Name -> (accepted dtypes, what the refusal says).
FRAME_INPUT_DTYPES: dict[str, tuple[tuple[np.dtype, ...], str]] = {
    "labels": ((np.dtype(np.uint8), np.dtype(np.uint16)), "UINT8 or UINT16 class IDs"),
    "instances": ((np.dtype(np.uint8), np.dtype(np.uint16)), "UINT16 (or UINT8) instance IDs"),
    "depth": ((np.dtype(np.float16), np.dtype(np.float32)), "FLOAT16 or FLOAT32 depth"),
    "motion": ((np.dtype(np.float16), np.dtype(np.float32)), "FLOAT16 or FLOAT32 motion vectors"),
    "keypoints": ((np.dtype(np.float16), np.dtype(np.float32)), "FLOAT32 (x, y, confidence) keypoints"),
    "pose_map": ((np.dtype(np.uint8),), "UINT8 RGB pose map"),
    "edges": ((np.dtype(np.uint8),), "UINT8 edge map"),
}


def frame_input_problem(name: str, dtype: np.dtype) -> str | None:
    """None if frame input `name` may travel as `dtype`, else what is wrong and what is expected."""
    if name not in FRAME_INPUT_DTYPES:
        return f"unknown frame input {name!r}; expected one of {', '.join(FRAME_INPUT_DTYPES)}"
    accepted, what = FRAME_INPUT_DTYPES[name]
    if np.dtype(dtype).newbyteorder("=") not in accepted:
        return f"{name} dtype is {np.dtype(dtype).name.upper()}, expected {what}"
    return None


class TensorError(ValueError):
    """A tensor message that cannot be decoded; the message says what was wrong and what was expected."""


def dtype_name(dtype: int) -> str:
    return tensor_pb2.DType.Name(dtype) if dtype in tensor_pb2.DType.values() else f"unknown dtype {dtype}"


def to_tensor(array: np.ndarray) -> tensor_pb2.Tensor:
    """Pack an array (uint8, uint16, int32, float16 or float32) as a Tensor message."""
    array = np.asarray(array)
    wire = _WIRE_DTYPES.get(array.dtype.newbyteorder("="))
    if wire is None:
        raise TensorError(f"dtype {array.dtype} cannot travel; expected one of uint8, uint16, int32, float16, float32")
    data = np.ascontiguousarray(array, dtype=NUMPY_DTYPES[wire]).tobytes()
    return tensor_pb2.Tensor(dtype=wire, shape=array.shape, data=data)


def from_tensor(tensor: tensor_pb2.Tensor, name: str = "tensor") -> np.ndarray:
    """Decode a Tensor message into a read-only array viewing its bytes; raise TensorError naming `name`."""
    dtype = NUMPY_DTYPES.get(tensor.dtype)
    if dtype is None:
        raise TensorError(
            f"{name}: dtype is {dtype_name(tensor.dtype)}, expected one of {', '.join(dtype_name(d) for d in NUMPY_DTYPES)}"
        )
    shape = tuple(tensor.shape)
    if any(d < 0 for d in shape):
        raise TensorError(f"{name}: shape {list(shape)} has a negative dimension")
    expected = math.prod(shape) * dtype.itemsize  # Python integers: a huge shape cannot wrap around to a small size
    if len(tensor.data) != expected:
        raise TensorError(
            f"{name}: {len(tensor.data)} data bytes for shape {list(shape)} {dtype_name(tensor.dtype)}, "
            f"expected {expected} (truncated or wrong shape)"
        )
    try:
        return np.frombuffer(tensor.data, dtype=dtype).reshape(shape)
    except ValueError as err:  # more dimensions, or a larger (empty) array, than numpy can describe
        raise TensorError(f"{name}: shape {list(shape)} cannot be an array: {err}") from None
