"""The wire's tensor codec: round trips, and every malformed tensor named with what was expected."""

from __future__ import annotations

import numpy as np
import pytest

from neurender.proto.neurender.v1 import tensor_pb2
from neurender.proto.tensors import TensorError, from_tensor, to_tensor


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float16, np.float32])
def test_round_trip(dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    tensor = to_tensor(array[:, ::2])  # a non-contiguous view travels as C-order bytes
    back = from_tensor(tensor)
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, array[:, ::2])


def test_big_endian_input_travels_little_endian():
    array = np.arange(6, dtype=">u2")
    assert to_tensor(array).data == np.arange(6, dtype="<u2").tobytes()


@pytest.mark.parametrize(
    "tensor, phrase",
    [
        (
            tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_UNSPECIFIED, shape=[2], data=b"ab"),
            "dtype is DTYPE_UNSPECIFIED, expected one of UINT8",
        ),
        (tensor_pb2.Tensor(dtype=77, shape=[2], data=b"ab"), "unknown dtype 77"),
        (
            tensor_pb2.Tensor(dtype=tensor_pb2.UINT16, shape=[2, 3], data=b"x" * 11),
            "11 data bytes for shape [2, 3] UINT16, expected 12",
        ),
        (tensor_pb2.Tensor(dtype=tensor_pb2.UINT8, shape=[-1, 3], data=b""), "negative dimension"),
        (
            tensor_pb2.Tensor(dtype=tensor_pb2.UINT8, shape=[2**62, 4], data=b""),
            "0 data bytes for shape [4611686018427387904, 4] UINT8",
        ),
        (tensor_pb2.Tensor(dtype=tensor_pb2.UINT8, shape=[0, 2**62, 2**62], data=b""), "cannot be an array"),
        (tensor_pb2.Tensor(dtype=tensor_pb2.UINT8, shape=[1] * 70, data=b"x"), "cannot be an array"),
    ],
)
def test_malformed_tensors(tensor, phrase):
    with pytest.raises(TensorError) as err:
        from_tensor(tensor, "labels")
    assert phrase in str(err.value) and str(err.value).startswith("labels: ")


def test_unsupported_dtype_is_refused():
    with pytest.raises(TensorError, match="dtype int64 cannot travel"):
        to_tensor(np.zeros(3, np.int64))
