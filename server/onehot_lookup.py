"""Convolutions over one-hot label maps, computed as the table lookups they are (ONNX Runtime on the CPU).

The step graph one-hot encodes the current and previous class-ID maps and feeds them to a 7x7 convolution: a
third of the tiny generator's FLOPs, every one of them a multiply by 0 or 1. For one-hot inputs each output
pixel is just the sum of T*K*K weight vectors picked by the class IDs under the kernel, which the native kernel
(native/one_hot_conv.c) adds up directly: 147 vector additions per pixel instead of T*C*K*K multiply-adds.

cpu_graph.py turns each such convolution's output into a graph input; `OneHotConv` computes that input from the
raw class IDs. The kernel is optional: pip builds it where a C compiler for x86 is present (an optional extension,
see pyproject.toml), and `native_kernel_missing()` says why it cannot be used otherwise, in which case the CPU
graph keeps its dense one-hot convolutions (same frames, more FLOPs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

# Set to "off" to run the dense one-hot convolutions even where the kernel is built (the tests run both ways).
KERNEL_SWITCH = "NEURENDER_ONE_HOT_KERNEL"

try:
    from neurender.server._one_hot_conv import one_hot_conv
except ImportError as _missing:
    one_hot_conv = None
    _IMPORT_ERROR = str(_missing)


def native_kernel_missing() -> str | None:
    """Why the native lookup kernel cannot be used here, or None when it can."""
    if os.environ.get(KERNEL_SWITCH, "").strip().lower() in {"off", "0", "no", "false"}:
        return f"turned off by {KERNEL_SWITCH}={os.environ[KERNEL_SWITCH]}"
    if one_hot_conv is None:
        return f"not built for this platform ({_IMPORT_ERROR})"
    return None


@dataclass(frozen=True)
class OneHotConv:
    """One convolution over T one-hot maps of C classes, as a lookup table [T, K (rows), C + 1, K (columns), O].

    Class row C of every tap is zero: class IDs the model does not know select it, exactly as their all-zero one-hot
    column contributes nothing to the dense convolution.
    """

    feature_input: str
    table: np.ndarray
    bias: np.ndarray

    @property
    def frames(self) -> int:
        return self.table.shape[0]

    @property
    def kernel(self) -> int:
        return self.table.shape[1]

    @property
    def classes(self) -> int:
        return self.table.shape[2] - 1

    @property
    def channels(self) -> int:
        return self.table.shape[4]

    @classmethod
    def from_weight(cls, feature_input: str, weight: np.ndarray, bias: np.ndarray | None, frames: int) -> OneHotConv:
        """weight [O, T*C, K, K] of a convolution whose input channel t*C + c is frame t's one-hot class c."""
        out_channels, in_channels, kernel, _ = weight.shape
        classes = in_channels // frames
        table = np.zeros((frames, kernel, classes + 1, kernel, out_channels), np.float32)
        table[:, :, :classes] = weight.reshape(out_channels, frames, classes, kernel, kernel).transpose(1, 3, 2, 4, 0)
        bias = np.zeros(out_channels, np.float32) if bias is None else bias.astype(np.float32)
        return cls(feature_input, table, np.ascontiguousarray(bias))

    def __call__(self, labels: np.ndarray, threads: int = 1) -> np.ndarray:
        """labels [B, T, H, W] uint8 or uint16 class IDs, oldest first -> [B, O, H, W] float32."""
        if labels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"one-hot lookup: class IDs must be uint8 or uint16, got {labels.dtype}")
        if labels.ndim != 4 or labels.shape[1] != self.frames:
            raise ValueError(
                f"one-hot lookup: class IDs must be [batch, {self.frames}, height, width], got {list(labels.shape)}"
            )
        if one_hot_conv is None:
            raise RuntimeError(f"one-hot lookup: the native kernel is {native_kernel_missing()}")
        batch, frames, height, width = labels.shape
        out = np.empty((batch, self.channels, height, width), np.float32)
        one_hot_conv(
            np.ascontiguousarray(labels),
            self.table,
            self.bias,
            out,
            batch,
            frames,
            height,
            width,
            self.classes,
            self.kernel,
            self.channels,
            labels.dtype.itemsize,
            threads,
        )
        return out
