"""Skeletons, joint-rotation motion and forward kinematics, vectorised over frames.

A `Motion` is what every rotation-based source (BVH, DeepMimic, SMPL-X) parses into: a joint tree with rest
offsets, per-frame local rotations and per-frame local translations of the joints that carry them (the root,
and any joint with position channels). Units are the source's own; retargeting never needs metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurender.common.errors import UserError


class MotionFormatError(UserError, ValueError):
    """A motion or keypoint file that cannot be read; the message names the file, the line and what was expected."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = Path(path)
        self.line = line


@dataclass(frozen=True)
class Skeleton:
    """A joint tree: names, parent indices (-1 for the root; parents come before children) and rest offsets."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray  # [J, 3]: a joint's rest position in its parent's frame (the root's: in the world)

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(self.parents) != n or self.offsets.shape != (n, 3):
            raise ValueError(f"skeleton with {n} names, {len(self.parents)} parents and offsets {self.offsets.shape}")
        for j, p in enumerate(self.parents):
            if not (p == -1 and j == 0 or 0 <= p < j):
                raise ValueError(f"joint {self.names[j]!r}: parent index {p} must come before it (root first)")
        if len(set(self.names)) != n:
            raise ValueError("skeleton joint names must be unique")

    def bones(self) -> list[tuple[int, int]]:
        """(parent, child) pairs."""
        return [(p, j) for j, p in enumerate(self.parents) if p >= 0]


@dataclass
class Motion:
    """Joint rotations over time on a skeleton.

    rotations: [F, J, 3, 3] local rotation of each joint relative to its parent's frame.
    translations: [F, J, 3] local translation of each joint (its offset, or its position channels).
    """

    skeleton: Skeleton
    rotations: np.ndarray
    translations: np.ndarray
    fps: float
    source: str = ""
    up_axis: str = "y"  # the world's up axis: "y" (BVH, DeepMimic) or "z" (AMASS)

    def __post_init__(self) -> None:
        f, j = self.rotations.shape[:2]
        if (
            self.rotations.shape != (f, j, 3, 3)
            or self.translations.shape != (f, j, 3)
            or j != len(self.skeleton.names)
        ):
            raise ValueError(
                f"motion arrays rotations {self.rotations.shape}, translations {self.translations.shape} "
                f"do not match a skeleton of {len(self.skeleton.names)} joints"
            )
        if self.up_axis not in ("y", "z"):
            raise ValueError(f"motion up axis {self.up_axis!r}: expected 'y' or 'z'")
        if not self.fps > 0:
            raise ValueError(f"motion frame rate {self.fps}: expected > 0")

    @property
    def n_frames(self) -> int:
        return int(self.rotations.shape[0])

    def rest(self) -> Motion:
        """One frame of the skeleton in its rest pose (identity rotations, rest offsets)."""
        j = len(self.skeleton.names)
        return Motion(
            self.skeleton,
            np.broadcast_to(np.eye(3), (1, j, 3, 3)).copy(),
            self.skeleton.offsets[None].copy(),
            self.fps,
            self.source,
            self.up_axis,
        )


def forward_kinematics(
    skeleton: Skeleton, rotations: np.ndarray, translations: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """World positions [F, J, 3] and world rotations [F, J, 3, 3] of every joint, all frames at once."""
    f, j = rotations.shape[:2]
    positions = np.empty((f, j, 3))
    world = np.empty((f, j, 3, 3))
    for joint, parent in enumerate(skeleton.parents):
        if parent < 0:
            world[:, joint] = rotations[:, joint]
            positions[:, joint] = translations[:, joint]
        else:
            world[:, joint] = world[:, parent] @ rotations[:, joint]
            positions[:, joint] = positions[:, parent] + np.einsum(
                "fab,fb->fa", world[:, parent], translations[:, joint]
            )
    return positions, world


def motion_fk(motion: Motion) -> tuple[np.ndarray, np.ndarray]:
    return forward_kinematics(motion.skeleton, motion.rotations, motion.translations)
