"""A renderable scene description: labelled objects with per-frame transforms and a camera path.

Conventions (the same as glTF and OpenGL): right-handed, +Y up, metres. Object poses are world-from-local
4x4 matrices; camera poses are world-from-camera with the camera looking down its -Z axis and +Y up.
Poses are given per frame ([T, 4, 4]); a static object may give one [4, 4] matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from neurender.proto.classes import ClassInfo

if TYPE_CHECKING:
    import trimesh


@dataclass(frozen=True)
class Camera:
    """A pinhole camera path: vertical field of view (radians), clip planes, world-from-camera poses [T,4,4]."""

    poses: np.ndarray
    yfov: float = np.pi / 3
    znear: float = 0.25
    zfar: float = 500.0

    def __post_init__(self) -> None:
        poses = np.asarray(self.poses, dtype=np.float64)
        if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) == 0:
            raise ValueError(f"camera poses must be [T, 4, 4] with T >= 1, got shape {poses.shape}")
        if not 0 < self.yfov < np.pi:
            raise ValueError(f"camera yfov {self.yfov} must lie in (0, pi) radians")
        if not 0 < self.znear < self.zfar:
            raise ValueError(f"camera clip planes must satisfy 0 < znear < zfar, got {self.znear}, {self.zfar}")
        object.__setattr__(self, "poses", poses)

    def intrinsics(self, height: int, width: int) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels for a height x width image; pixel (i, j) has its centre at (i+0.5, j+0.5).
        Square pixels: the horizontal field of view follows from the aspect ratio."""
        focal = 0.5 * height / np.tan(0.5 * self.yfov)
        return focal, focal, 0.5 * width, 0.5 * height


@dataclass
class SceneObject:
    """A labelled object: one or more meshes sharing a class ID, an instance ID and a transform per frame.

    Meshes are trimesh meshes whose `visual` (vertex colours or a texture with UVs) the shaded pass draws.
    Instance 0 means "no instance" (stuff such as road or sky); things get distinct instance IDs >= 1."""

    name: str
    class_id: int
    instance_id: int
    meshes: list[trimesh.Trimesh]
    poses: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        poses = np.asarray(self.poses, dtype=np.float64)
        if poses.shape == (4, 4):
            poses = poses[None]
        if poses.ndim != 3 or poses.shape[1:] != (4, 4):
            raise ValueError(f"object {self.name!r}: poses must be [4, 4] or [T, 4, 4], got shape {poses.shape}")
        if not 0 <= self.class_id < 65536:
            raise ValueError(f"object {self.name!r}: class_id {self.class_id} must lie in 0..65535")
        if not 0 <= self.instance_id < 65536:
            raise ValueError(f"object {self.name!r}: instance_id {self.instance_id} must lie in 0..65535")
        if not self.meshes:
            raise ValueError(f"object {self.name!r} has no meshes")
        self.poses = poses

    def pose(self, frame: int) -> np.ndarray:
        """World-from-local at `frame` (a static object's single pose for every frame)."""
        return self.poses[0] if len(self.poses) == 1 else self.poses[frame]


@dataclass
class Scene:
    """Objects, a camera path and the class table that names the objects' class IDs (0 = sky/background)."""

    objects: list[SceneObject]
    camera: Camera
    classes: tuple[ClassInfo, ...]
    fps: float = 10.0
    background: tuple[int, int, int] = (135, 180, 230)  # shaded pass only
    ambient: float = 0.35  # shaded pass only: ambient light intensity

    def __post_init__(self) -> None:
        known = {c.id for c in self.classes}
        frames = self.num_frames
        for o in self.objects:
            if o.class_id not in known:
                raise ValueError(f"object {o.name!r}: class_id {o.class_id} is not in the class table {sorted(known)}")
            if len(o.poses) not in (1, frames):
                raise ValueError(f"object {o.name!r} has {len(o.poses)} poses; expected 1 or the camera's {frames}")
        if 0 not in known:
            raise ValueError("the class table needs class 0 (sky/background: pixels no object covers)")

    @property
    def num_frames(self) -> int:
        return len(self.camera.poses)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 1.0, 0.0])) -> np.ndarray:
    """World-from-camera pose of a camera at `eye` looking at `target` (OpenGL: -Z forward, +Y up)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    norm = np.linalg.norm(right)
    if norm < 1e-9:
        raise ValueError("look_at: the view direction is parallel to `up`")
    right /= norm
    true_up = np.cross(right, forward)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, true_up, -forward, eye
    return pose


def translation(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (x, y, z)
    return m


def rotation_y(angle: float) -> np.ndarray:
    """Rotation about +Y (yaw), radians."""
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(4)
    m[0, 0], m[0, 2], m[2, 0], m[2, 2] = c, s, -s, c
    return m


__all__ = ["Camera", "Scene", "SceneObject", "look_at", "rotation_y", "translation"]
