"""Temporal smoothing of keypoint tracks: a sliding median, or the one-euro filter.

Both work on [F, N, 3] (x, y, confidence) or [F, N, 4] (x, y, z, confidence) arrays, leave confidence as it is,
and ignore missing points (confidence 0): they neither contribute nor get moved.
The one-euro filter (Casiez, Roussel and Vogel, CHI 2012) is a low-pass filter whose cutoff rises with speed:
steady poses lose their jitter, fast moves keep their timing.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def median_smooth(keypoints: np.ndarray, window: int = 5) -> np.ndarray:
    """Each coordinate replaced by the median over `window` frames (odd) centred on it, seen points only."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"median window {window}: expected an odd number >= 1")
    out = keypoints.copy()
    if window == 1 or len(keypoints) == 0:
        return out
    coords = np.where(keypoints[..., -1:] > 0, keypoints[..., :-1], np.nan)
    half = window // 2
    padded = np.concatenate(
        [np.full((half,) + coords.shape[1:], np.nan), coords, np.full((half,) + coords.shape[1:], np.nan)]
    )
    windows = sliding_window_view(padded, window, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing windows: no median, the point stays
        median = np.nanmedian(windows, axis=-1)
    seen = keypoints[..., -1] > 0
    out[..., :-1] = np.where(seen[..., None] & np.isfinite(median), median, keypoints[..., :-1])
    return out


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


def one_euro(
    keypoints: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 0.1, d_cutoff: float = 1.0
) -> np.ndarray:
    """One-euro filter over frames. min_cutoff (Hz) sets smoothing at rest; beta how fast it opens with speed
    (per unit of the coordinates per second); d_cutoff (Hz) smooths the speed estimate."""
    if fps <= 0 or min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
        raise ValueError("one-euro: expected fps, min_cutoff and d_cutoff > 0 and beta >= 0")
    out = keypoints.copy()
    if len(keypoints) == 0:
        return out
    dt = 1.0 / fps
    coords = keypoints[..., :-1]
    seen = keypoints[..., -1] > 0
    value = coords[0].copy()
    speed = np.zeros_like(value)
    started = seen[0].copy()
    a_d = _alpha(d_cutoff, dt)
    for f in range(1, len(keypoints)):
        x, ok = coords[f], seen[f]
        raw_speed = (x - value) / dt
        new_speed = a_d * raw_speed + (1.0 - a_d) * speed
        cutoff = min_cutoff + beta * np.linalg.norm(new_speed, axis=-1, keepdims=True)
        a = _alpha(cutoff, dt)
        filtered = a * x + (1.0 - a) * value
        update = (ok & started)[..., None]
        fresh = (ok & ~started)[..., None]  # first sighting: start from the measurement
        value = np.where(update, filtered, np.where(fresh, x, value))
        speed = np.where(update, new_speed, np.where(fresh, 0.0, speed))
        started |= ok
        out[f, ..., :-1] = np.where(ok[..., None], value, coords[f])
    return out
