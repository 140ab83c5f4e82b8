"""2D keypoint files: OpenPose JSON (BODY_25 or COCO-18, with face and hands) and MediaPipe Pose (33 points).

Everything loads into `Keypoints2D`: the body in canonical (BODY_25) order, plus OpenPose face (70) and hand
(2 x 21) points when the source has them. COCO-18 has no mid-hip or feet: the mid-hip is the hips' midpoint
when both are seen, the feet are missing (confidence 0). MediaPipe's 33 points give the BODY_25 body except
the small toes; its metric "world" landmarks give a 3D pose for bone-length retargeting.

MediaPipe files are the JSON the pose worker writes (see pose_worker.py):
    {"format": "mediapipe_pose_33", "width": W, "height": H, "fps": FPS,
     "frames": [{"image": [[x_px, y_px, z, visibility] x 33] or null,
                 "world": [[x_m, y_m, z_m, visibility] x 33] or null}, ...]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurender.proto.neurender.v1 import model_pb2
from neurender.retarget.canonical import INDEX, NAMES, Pose3D, body_axes, canonical_rest, leg_length
from neurender.retarget.draw import FACE_SIZE, HAND_SIZE, pose_layout
from neurender.retarget.skeleton import MotionFormatError

MEDIAPIPE_FORMAT = "mediapipe_pose_33"
N_EXTRA = FACE_SIZE + 2 * HAND_SIZE
# COCO-18 keypoint k is canonical point COCO18_TO_CANONICAL[k].
COCO18_TO_CANONICAL = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
_MEDIAPIPE_TO_CANONICAL = {
    0: "nose",
    2: "l_eye",
    5: "r_eye",
    7: "l_ear",
    8: "r_ear",
    11: "l_shoulder",
    12: "r_shoulder",
    13: "l_elbow",
    14: "r_elbow",
    15: "l_wrist",
    16: "r_wrist",
    23: "l_hip",
    24: "r_hip",
    25: "l_knee",
    26: "r_knee",
    27: "l_ankle",
    28: "r_ankle",
    29: "l_heel",
    30: "r_heel",
    31: "l_big_toe",
    32: "r_big_toe",
}


@dataclass
class Keypoints2D:
    """body [F, P, 25, 3] canonical (x, y, confidence) pixels; extras [F, P, 112, 3] face 70, left hand 21,
    right hand 21 (confidence 0 where absent)."""

    body: np.ndarray
    extras: np.ndarray
    fps: float
    size: tuple[int, int] | None = None  # (height, width) of the footage, when known
    skeleton: str = "body25"  # what the source was: body25, coco18 or mediapipe33

    def person(self, index: int = 0) -> Keypoints2D:
        """One person's track (people are kept in the file's order)."""
        return Keypoints2D(
            self.body[:, index : index + 1], self.extras[:, index : index + 1], self.fps, self.size, self.skeleton
        )


def _fill_mid_hip(body: np.ndarray) -> None:
    r, l, mid = INDEX["r_hip"], INDEX["l_hip"], INDEX["mid_hip"]
    both = (body[..., r, 2] > 0) & (body[..., l, 2] > 0)
    body[..., mid, :2] = np.where(both[..., None], 0.5 * (body[..., r, :2] + body[..., l, :2]), 0.0)
    body[..., mid, 2] = np.where(both, np.minimum(body[..., r, 2], body[..., l, 2]), 0.0)


def _openpose_person(path: Path, person: dict, index: int) -> tuple[np.ndarray, np.ndarray, str]:
    body_raw = person.get("pose_keypoints_2d", [])
    if not isinstance(body_raw, list) or len(body_raw) not in (75, 54):
        raise MotionFormatError(
            path,
            f"people[{index}].pose_keypoints_2d has {len(body_raw) if isinstance(body_raw, list) else 'no'} "
            "numbers; expected 75 (BODY_25) or 54 (COCO-18)",
        )
    skeleton = "body25" if len(body_raw) == 75 else "coco18"
    raw = np.asarray(body_raw, dtype=np.float64).reshape(-1, 3)
    body = np.zeros((len(NAMES), 3))
    if skeleton == "body25":
        body[:] = raw
    else:
        body[list(COCO18_TO_CANONICAL)] = raw
        _fill_mid_hip(body)
    extras = np.zeros((N_EXTRA, 3))
    for key, start, size in (
        ("face_keypoints_2d", 0, FACE_SIZE),
        ("hand_left_keypoints_2d", FACE_SIZE, HAND_SIZE),
        ("hand_right_keypoints_2d", FACE_SIZE + HAND_SIZE, HAND_SIZE),
    ):
        values = person.get(key) or []
        if len(values) not in (0, 3 * size):
            raise MotionFormatError(
                path, f"people[{index}].{key} has {len(values)} numbers; expected {3 * size} or none"
            )
        if values:
            extras[start : start + size] = np.asarray(values, dtype=np.float64).reshape(size, 3)
    return body, extras, skeleton


def load_openpose(path: str | Path, fps: float = 30.0) -> Keypoints2D:
    """One OpenPose JSON file, or a folder of them (one per frame, in name order)."""
    path = Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise MotionFormatError(path, "no *.json files: expected OpenPose keypoint files, one per frame")
    frames: list[list[tuple[np.ndarray, np.ndarray, str]]] = []
    for file in files:
        try:
            data = json.loads(file.read_text())
        except json.JSONDecodeError as err:
            raise MotionFormatError(file, f"not valid JSON: {err.msg}", err.lineno) from None
        except (OSError, UnicodeDecodeError) as err:
            raise MotionFormatError(file, f"cannot read ({err})") from None
        if not isinstance(data, dict) or not isinstance(data.get("people"), list):
            raise MotionFormatError(file, "expected an OpenPose keypoint file: a JSON object with a 'people' list")
        frames.append([_openpose_person(file, person, i) for i, person in enumerate(data["people"])])
    skeletons = {s for frame in frames for _, _, s in frame}
    if len(skeletons) > 1:
        raise MotionFormatError(path, f"files mix skeletons {sorted(skeletons)}; expected one of body25 or coco18")
    people = max((len(frame) for frame in frames), default=0)
    body = np.zeros((len(frames), max(people, 1), len(NAMES), 3))
    extras = np.zeros((len(frames), max(people, 1), N_EXTRA, 3))
    for f, frame in enumerate(frames):
        for p, (b, e, _) in enumerate(frame):
            body[f, p], extras[f, p] = b, e
    return Keypoints2D(body, extras, fps, None, skeletons.pop() if skeletons else "body25")


def openpose_frame(keypoints: np.ndarray, convention: model_pb2.PoseConvention) -> dict:
    """The OpenPose JSON object for one frame of people [P, K, 3] laid out as `convention` (see draw.py)."""
    layout = pose_layout(convention)
    people = []
    for person in np.asarray(keypoints, dtype=np.float64):
        entry: dict[str, object] = {
            "person_id": [-1],
            "pose_keypoints_2d": person[layout.body].ravel().round(3).tolist(),
        }
        for key, part in (
            ("face_keypoints_2d", layout.face),
            ("hand_left_keypoints_2d", layout.left_hand),
            ("hand_right_keypoints_2d", layout.right_hand),
        ):
            entry[key] = person[part].ravel().round(3).tolist() if part is not None else []
        people.append(entry)
    return {"version": 1.3, "people": people}


def to_convention(body: np.ndarray, extras: np.ndarray, convention: model_pb2.PoseConvention) -> np.ndarray:
    """Canonical body [..., 25, 3] and extras [..., 112, 3] -> the convention's keypoint layout [..., K, 3]."""
    parts = [body if convention.skeleton == "body25" else body[..., list(COCO18_TO_CANONICAL), :]]
    if convention.face:
        parts.append(extras[..., :FACE_SIZE, :])
    if convention.hands:
        parts.append(extras[..., FACE_SIZE:, :])
    return np.concatenate(parts, axis=-2)


def _mediapipe_array(path: Path, frames: list, key: str) -> np.ndarray | None:
    values = [frame.get(key) if isinstance(frame, dict) else None for frame in frames]
    if all(v is None for v in values):
        return None
    out = np.zeros((len(frames), 33, 4))
    for n, v in enumerate(values):
        if v is None:
            continue
        arr = np.asarray(v, dtype=np.float64)
        if arr.shape != (33, 4):
            raise MotionFormatError(
                path, f"frames[{n}].{key} has shape {arr.shape}; expected 33 points of (x, y, z, visibility)"
            )
        out[n] = arr
    return out


def _mediapipe_to_canonical(points: np.ndarray) -> np.ndarray:
    """[F, 33, 4] (x, y, z, visibility) -> [F, 25, 4] canonical; neck and mid-hip from the pairs around them."""
    out = np.zeros((points.shape[0], len(NAMES), 4))
    for mp_index, name in _MEDIAPIPE_TO_CANONICAL.items():
        out[:, INDEX[name]] = points[:, mp_index]
    for mid, (a, b) in (("neck", ("r_shoulder", "l_shoulder")), ("mid_hip", ("r_hip", "l_hip"))):
        pa, pb = out[:, INDEX[a]], out[:, INDEX[b]]
        out[:, INDEX[mid], :3] = 0.5 * (pa[:, :3] + pb[:, :3])
        out[:, INDEX[mid], 3] = np.minimum(pa[:, 3], pb[:, 3])
    return out


def load_mediapipe(path: str | Path) -> tuple[Keypoints2D, Pose3D | None]:
    """A pose-worker JSON file: image keypoints (pixels) and, when present, the metric 3D pose (y-up)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise MotionFormatError(path, f"not valid JSON: {err.msg}", err.lineno) from None
    if not isinstance(data, dict) or data.get("format") != MEDIAPIPE_FORMAT or not isinstance(data.get("frames"), list):
        raise MotionFormatError(path, f"expected a JSON object with format {MEDIAPIPE_FORMAT!r} and a 'frames' list")
    frames = data["frames"]
    if not frames:
        raise MotionFormatError(path, "no frames")
    fps = float(data.get("fps") or 30.0)
    size = (int(data["height"]), int(data["width"])) if "height" in data and "width" in data else None
    image = _mediapipe_array(path, frames, "image")
    if image is None:
        raise MotionFormatError(path, "no frame has a detected person ('image' landmarks)")
    canon = _mediapipe_to_canonical(image)
    body = np.concatenate([canon[..., :2], canon[..., 3:]], axis=-1)[:, None]
    keypoints = Keypoints2D(body, np.zeros((len(frames), 1, N_EXTRA, 3)), fps, size, "mediapipe33")
    world = _mediapipe_array(path, frames, "world")
    if world is None:
        return keypoints, None
    canon3 = _mediapipe_to_canonical(world)
    points = canon3[..., :3] * np.array([1.0, -1.0, -1.0])  # MediaPipe: y down, z away -> y up (a turn about x)
    confidence = canon3[..., 3].copy()
    _place_small_toes(points, confidence)
    return keypoints, Pose3D(points, confidence, fps)


def _place_small_toes(points: np.ndarray, confidence: np.ndarray) -> None:
    """MediaPipe has no small toes: put them beside the big toe, outwards, as the canonical foot has them."""
    canon = canonical_rest()
    up = body_axes(points)[..., 1]
    leg = leg_length(points)[:, None]
    for side in ("r_", "l_"):
        big, heel, small = INDEX[side + "big_toe"], INDEX[side + "heel"], INDEX[side + "small_toe"]
        forward = points[:, big] - points[:, heel]
        forward -= np.sum(forward * up, axis=-1, keepdims=True) * up
        forward /= np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-12)
        left = np.cross(up, forward)
        d = canon[small] - canon[big]
        points[:, small] = points[:, big] + leg * (d[0] * forward + d[1] * up + d[2] * left)
        confidence[:, small] = np.minimum(confidence[:, big], confidence[:, heel])
