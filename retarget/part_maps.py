"""Body-part label maps (DensePose-like part IDs) from keypoints, by drawing a capsule around each bone.

Drawn with OpenCV in 2D: each part is a thick round-capped line (a projected capsule), the torso a filled
quadrilateral, the head a disc; parts are painted far to near by camera depth when depth is known, so nearer
limbs cover farther ones. (The project's 3D renderer lives in engine_plugin, which retarget may not import.)
Radii are shares of the frame's torso length (neck to mid-hip in the image).
"""

from __future__ import annotations

import cv2
import numpy as np

from neurender.retarget.canonical import INDEX

# Part id -> (name, canonical points, radius as a share of the torso's image length).
PARTS: dict[int, tuple[str, tuple[str, ...], float]] = {
    1: ("torso", ("r_shoulder", "l_shoulder", "l_hip", "r_hip"), 0.0),
    2: ("head", ("nose", "r_ear", "l_ear"), 0.22),
    3: ("right_upper_arm", ("r_shoulder", "r_elbow"), 0.11),
    4: ("right_forearm", ("r_elbow", "r_wrist"), 0.09),
    5: ("left_upper_arm", ("l_shoulder", "l_elbow"), 0.11),
    6: ("left_forearm", ("l_elbow", "l_wrist"), 0.09),
    7: ("right_thigh", ("r_hip", "r_knee"), 0.15),
    8: ("right_shin", ("r_knee", "r_ankle"), 0.11),
    9: ("left_thigh", ("l_hip", "l_knee"), 0.15),
    10: ("left_shin", ("l_knee", "l_ankle"), 0.11),
    11: ("right_foot", ("r_heel", "r_big_toe", "r_small_toe"), 0.06),
    12: ("left_foot", ("l_heel", "l_big_toe", "l_small_toe"), 0.06),
}


def draw_part_map(body: np.ndarray, height: int, width: int, depth: np.ndarray | None = None) -> np.ndarray:
    """Part IDs uint8 [H, W] (0 = background) for one person's canonical keypoints [25, 3] (x, y, conf)."""
    canvas = np.zeros((height, width), np.uint8)
    seen = body[:, 2] > 0
    neck, hip = INDEX["neck"], INDEX["mid_hip"]
    if not (seen[neck] and seen[hip]):
        return canvas
    torso = float(np.linalg.norm(body[neck, :2] - body[hip, :2]))
    order = sorted(
        PARTS, key=lambda p: -float(np.mean(depth[[INDEX[n] for n in PARTS[p][1]]])) if depth is not None else p
    )
    for part in order:
        name, points, share = PARTS[part]
        idx = [INDEX[n] for n in points]
        if not seen[idx].all():
            continue
        xy = np.rint(body[idx, :2]).astype(np.int32)
        radius = max(1, int(round(share * torso)))
        if name == "torso":
            cv2.fillConvexPoly(canvas, xy, part)
        elif name == "head":
            centre = tuple(int(v) for v in np.rint(body[idx, :2].mean(axis=0)))
            cv2.circle(canvas, centre, radius, part, -1)
        else:
            for a, b in zip(xy, xy[1:]):
                cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), part, 2 * radius)
    return canvas
