"""Pinhole camera projection of y-up canonical poses to pixels, and a camera that frames a whole clip.

Camera coordinates follow OpenCV: x right, y down, z forward; pixels have their origin at the top-left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurender.retarget.canonical import Pose3D, body_axes


@dataclass(frozen=True)
class Camera:
    focal: float  # pixels
    centre: tuple[float, float]  # principal point (cx, cy), pixels
    rotation: np.ndarray  # [3, 3] world -> camera
    position: np.ndarray  # [3] camera centre in the world

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels [..., 2] and camera depth [...] of world points [..., 3]."""
        cam = (points - self.position) @ self.rotation.T
        depth = cam[..., 2]
        safe = np.where(depth > 1e-9, depth, np.inf)
        pixels = self.focal * cam[..., :2] / safe[..., None] + np.asarray(self.centre)
        return pixels, depth


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World -> camera rotation of a camera at `position` looking at `target`, image up = world +y."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    down = np.array([0.0, -1.0, 0.0])
    down = down - forward * (down @ forward)
    down /= np.linalg.norm(down)
    right = np.cross(down, forward)
    return np.stack([right, down, forward])


def frame_camera(
    pose: Pose3D,
    height: int,
    width: int,
    fov_deg: float = 35.0,
    margin: float = 0.06,
    yaw_deg: float = 0.0,
    elevation_deg: float = 5.0,
) -> Camera:
    """A camera in front of the performer (their mean facing, turned by `yaw_deg` about the vertical)
    that keeps every point of the clip inside the frame with `margin` (a share of the frame) to spare."""
    points = pose.points[pose.confidence > 0]
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = 0.5 * (lo + hi)
    forward = body_axes(pose.points)[..., 0].mean(axis=0)
    forward[1] = 0.0
    if np.linalg.norm(forward) < 1e-9:
        forward = np.array([0.0, 0.0, 1.0])
    yaw, elevation = np.radians(yaw_deg), np.radians(elevation_deg)
    turn = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    view = turn @ (forward / np.linalg.norm(forward))
    view = np.cos(elevation) * view + np.array([0.0, np.sin(elevation), 0.0])
    focal = 0.5 * height / np.tan(0.5 * np.radians(fov_deg))
    principal = (0.5 * (width - 1), 0.5 * (height - 1))
    half = np.array([0.5 * width, 0.5 * height]) * (1.0 - 2.0 * margin)
    # The camera looks along -view from centre + d * view, so a point's camera coordinates are q + (0, 0, d)
    # with q = R (p - centre): it fits when f |q_xy| / (q_z + d) <= half, i.e. d >= f |q_xy| / half - q_z.
    rotation = look_at(centre + view, centre)
    q = (points - centre) @ rotation.T
    needed = focal * np.abs(q[:, :2]) / half - q[:, 2:3]
    near_limit = 1e-3 * float(np.linalg.norm(hi - lo)) - q[:, 2]
    distance = float(max(needed.max(), near_limit.max()))
    position = centre + distance * view
    return Camera(focal, principal, rotation, position)


def project_pose(pose: Pose3D, camera: Camera) -> np.ndarray:
    """Keypoints [F, 25, 3] (x, y, confidence) in pixels; points behind the camera get confidence 0."""
    pixels, depth = camera.project(pose.points)
    confidence = np.where(depth > 1e-9, pose.confidence, 0.0)
    return np.concatenate([np.where(confidence[..., None] > 0, pixels, 0.0), confidence[..., None]], axis=-1)
