"""Global pose normalisation between a source and a target person, in the manner of Everybody Dance Now.

People further from the camera stand higher in the frame and look smaller. For each sequence we measure where
its ankles are when nearest to and furthest from the camera (a high and a low percentile of the ankles'
image height) and how tall the person looks at those two places. A source frame is placed by where its
ankles sit between the source's far and near positions: the same fraction of the way between the target's
far and near positions gives its ankle height, and the scale moves from far-height ratio to near-height ratio
along the way. Horizontally the source's median centre lands on the target's, offsets scaled alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurender.retarget.canonical import INDEX

FAR_PERCENTILE, NEAR_PERCENTILE = 5.0, 95.0
BAND = 0.15  # frames within this share of the far-near range count as "at" far or near for heights
_ANKLES = [INDEX["r_ankle"], INDEX["l_ankle"]]
_HEAD = [INDEX[n] for n in ("nose", "r_eye", "l_eye", "r_ear", "l_ear", "neck")]


@dataclass(frozen=True)
class PlacementStats:
    """Where a person stands in a sequence's frames (pixels, image y grows downwards)."""

    far_ankle: float
    near_ankle: float
    far_height: float
    near_height: float
    centre_x: float


def _fill(values: np.ndarray) -> np.ndarray:
    """Missing (NaN) entries take the nearest earlier seen value, or the first seen one."""
    seen = np.flatnonzero(np.isfinite(values))
    if seen.size == 0:
        raise ValueError("no frame shows both an ankle and the head: cannot place the person")
    index = np.maximum.accumulate(np.where(np.isfinite(values), np.arange(len(values)), -1))
    index = np.where(index < 0, seen[0], index)
    return values[index]


def ankles_and_heights(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the lowest seen ankle's image y and the height from it to the highest seen head point
    (NaN where either is missing). keypoints: [F, 25, 3] canonical (x, y, confidence)."""
    y = keypoints[..., 1]
    ankle = np.where(keypoints[:, _ANKLES, 2] > 0, y[:, _ANKLES], -np.inf).max(axis=1)
    top = np.where(keypoints[:, _HEAD, 2] > 0, y[:, _HEAD], np.inf).min(axis=1)
    valid = np.isfinite(ankle) & np.isfinite(top)
    return np.where(valid, ankle, np.nan), np.where(valid, ankle - top, np.nan)


def placement_stats(keypoints: np.ndarray) -> PlacementStats:
    ankle, height = ankles_and_heights(keypoints)
    valid = np.isfinite(ankle)
    if not valid.any():
        raise ValueError("no frame shows both an ankle and the head: cannot measure where the person stands")
    a, h = ankle[valid], height[valid]
    far, near = np.percentile(a, FAR_PERCENTILE), np.percentile(a, NEAR_PERCENTILE)
    band = BAND * (near - far)
    far_height = float(np.median(h[a <= far + band]))
    near_height = float(np.median(h[a >= near - band]))
    seen = keypoints[..., 2] > 0
    xs = np.where(seen, keypoints[..., 0], np.nan)
    centre = float(np.nanmedian(np.nanmedian(xs, axis=1)))
    return PlacementStats(float(far), float(near), far_height, near_height, centre)


def normalise(
    source: np.ndarray, source_stats: PlacementStats, target_stats: PlacementStats, extras: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Place the source's keypoints [F, N, 3] (and optional extras [F, M, 3], e.g. face and hands, moved
    alike) where the target stands. Returns the moved copies."""
    ankle = _fill(ankles_and_heights(source)[0])
    s, t = source_stats, target_stats
    span = s.near_ankle - s.far_ankle
    alpha = (ankle - s.far_ankle) / span if abs(span) > 1e-6 else np.full_like(ankle, 0.5)
    ratio_far, ratio_near = t.far_height / s.far_height, t.near_height / s.near_height
    scale = np.maximum(ratio_far + alpha * (ratio_near - ratio_far), 1e-6)
    new_ankle = t.far_ankle + alpha * (t.near_ankle - t.far_ankle)

    def move(points: np.ndarray) -> np.ndarray:
        out = points.copy()
        out[..., 0] = t.centre_x + scale[:, None] * (points[..., 0] - s.centre_x)
        out[..., 1] = new_ankle[:, None] + scale[:, None] * (points[..., 1] - ankle[:, None])
        out[..., :2] = np.where(points[..., 2:3] > 0, out[..., :2], 0.0)
        return out

    return move(source), (move(extras) if extras is not None else None)
