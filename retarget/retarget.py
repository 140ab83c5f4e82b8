"""Bone-length retargeting: the source's motion on the target's proportions, feet kept on the ground.

Every canonical bone keeps the source's direction in each frame and takes the target's length, so the target's
bone lengths hold exactly. The root travels the source's horizontal path scaled by the ratio of leg lengths
(strides match the longer or shorter legs), and each frame is lifted so that the target's lowest foot point
is as high above the floor as the source's was (scaled the same way): a planted source foot stays planted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurender.retarget.canonical import (
    BONES,
    FOOT_POINTS,
    ORDER,
    PARENTS,
    ROOT,
    Pose3D,
    bone_lengths,
    canonical_rest,
    leg_length,
)

# The floor is the height the lowest foot point reaches in this share of frames (robust to a stray frame).
FLOOR_PERCENTILE = 2.0


@dataclass(frozen=True)
class Proportions:
    """A body's canonical bone lengths, in BONES order, in the target's units (metres, pixels, ...)."""

    lengths: np.ndarray

    @property
    def leg_length(self) -> float:
        return float(leg_length(self.rest_points()))

    def rest_points(self) -> np.ndarray:
        """The canonical rest pose [25, 3] rebuilt with these lengths (for display and leg length)."""
        canon = canonical_rest()
        directions = np.zeros((len(canon), 3))
        for parent, child in BONES:
            d = canon[child] - canon[parent]
            directions[child] = d / np.linalg.norm(d)
        return _build(directions[None], self.lengths)[0]

    @classmethod
    def from_pose(cls, pose: Pose3D) -> Proportions:
        """Proportions measured on a pose sequence (median over frames where both ends are present)."""
        lengths = bone_lengths(pose.points)
        parents, children = np.array(BONES).T
        seen = (pose.confidence[:, parents] > 0) & (pose.confidence[:, children] > 0)
        if not seen.any(axis=0).all():
            missing = [f"{p}-{c}" for (p, c), ok in zip(BONES, seen.any(axis=0)) if not ok]
            raise ValueError(f"pose never shows bones {missing}: cannot measure its proportions")
        return cls(np.array([np.median(lengths[seen[:, b], b]) for b in range(len(BONES))]))

    @classmethod
    def canonical(cls, leg: float = 1.0) -> Proportions:
        return cls(bone_lengths(canonical_rest()) * leg)


def _build(directions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Points [F, 25, 3] from per-bone unit directions (indexed by child) and lengths, root at the origin."""
    out = np.zeros_like(directions)
    length_of = {child: lengths[b] for b, (_, child) in enumerate(BONES)}
    for joint in ORDER[1:]:
        out[:, joint] = out[:, PARENTS[joint]] + length_of[joint] * directions[:, joint]
    return out


def floor_height(points: np.ndarray) -> float:
    """The floor of a y-up clip: the height the lowest foot point reaches (a low percentile over frames)."""
    return float(np.percentile(points[:, FOOT_POINTS, 1].min(axis=1), FLOOR_PERCENTILE))


def retarget(source: Pose3D, target: Proportions) -> Pose3D:
    """The source's motion on the target's bone lengths, floor at y = 0, in the target's units."""
    points = source.points
    parents, children = np.array(BONES).T
    vectors = points[:, children] - points[:, parents]
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    directions = np.zeros_like(points)
    directions[:, children] = vectors / np.maximum(norms, 1e-12)
    body = _build(directions, target.lengths)

    source_leg = float(np.median(leg_length(points)))
    ratio = target.leg_length / source_leg
    floor = floor_height(points)
    source_clearance = np.maximum(points[:, FOOT_POINTS, 1].min(axis=1) - floor, 0.0)  # lowest foot above the floor
    root = np.empty((points.shape[0], 3))
    root[:, [0, 2]] = points[:, ROOT][:, [0, 2]] * ratio
    root[:, 1] = ratio * source_clearance - body[:, FOOT_POINTS, 1].min(axis=1)
    return Pose3D(body + root[:, None], source.confidence.copy(), source.fps)
