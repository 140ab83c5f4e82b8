"""A step's session-state bookkeeping on numpy arrays, as the step graph defines it (training/model/step.py).

The CPU backends compute the state beside the graph instead of inside it: it is a select and a few copies per
session, and as graph operators over broadcast uint8 tensors it cost OpenVINO 4.8 ms of a 95 ms step at
256x256 (bench/generator_speed.py's profile); here it costs a fraction of a millisecond.
"""

from __future__ import annotations

import numpy as np


def _history(has_history: np.ndarray, ndim: int) -> np.ndarray:
    """has_history [B] as a boolean broadcastable over an array of `ndim` dimensions."""
    return has_history.reshape((-1,) + (1,) * (ndim - 1)) > 0


def stacked_labels(labels: np.ndarray, prev_labels: np.ndarray, has_history: np.ndarray) -> np.ndarray:
    """The step's label frames [B, L+1, ...], oldest first: on a first frame the history is the current map.

    labels [B, H, W] (or [B, H, W, 3] for pose maps), prev_labels [B, L, ...]."""
    prev = np.where(_history(has_history, prev_labels.ndim), prev_labels, labels[:, None])
    return np.concatenate((prev, labels[:, None]), axis=1)


def next_state(
    stacked: np.ndarray, prev_frames: np.ndarray, has_history: np.ndarray, rgb: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(next_prev_labels, next_prev_frames) after a step on the label frames `stacked` (stacked_labels) that
    generated `rgb` [B, H, W, 3]: the history shifted by one frame, the newest last; a session on its first frame
    gets its current labels and frame in every slot."""
    kept = np.where(_history(has_history, prev_frames.ndim), prev_frames[:, 1:], rgb[:, None])
    return stacked[:, 1:], np.concatenate((kept, rgb[:, None]), axis=1)
