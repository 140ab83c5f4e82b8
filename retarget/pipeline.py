"""Motion onto a target person, as pose maps: the steps `neurender retarget` and bench/retarget.py share.

    source motion ─► canonical 3D poses ─► target's bone lengths, feet on the floor ─► camera ─► 2D keypoints
    source keypoints (2D) ─────────────────────────────────────────────────────────────────────┘
        ─► placed where the target stands in their footage (if known) ─► smoothing ─► convention ─► pose maps

Motion sources: BVH, DeepMimic clip (.txt/.json with "Frames"), SMPL-X .npz (with a model), OpenPose JSON
(file or folder), MediaPipe JSON, or a video (MediaPipe in its own environment). 2D sources are placed, not
re-proportioned: where the target stands in their footage when it is known (Everybody Dance Now's ankle and
height normalisation), else framed as the camera frames 3D motion: one scale and shift for the whole clip
that fits every confident point in the output frame with the same margin, so pixel coordinates of any frame
size land in the output. Output whose keypoints are mostly off-frame is refused (RetargetError). Targets: a skeleton (BVH, DeepMimic .urdf or clip, SMPL-X .npz with betas) gives bone lengths;
the target's keypoints (OpenPose JSON, MediaPipe JSON, or footage) give bone lengths and where they stand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurender.common.errors import UserError
from neurender.proto.neurender.v1 import model_pb2
from neurender.retarget.bvh import load_bvh
from neurender.retarget.camera import Camera, frame_camera, project_pose
from neurender.retarget.canonical import BONES, JointMap, Pose3D, motion_to_canonical, rest_pose
from neurender.retarget.deepmimic import load_deepmimic, load_urdf_character
from neurender.retarget.keypoints_io import N_EXTRA, Keypoints2D, load_mediapipe, load_openpose, to_convention
from neurender.retarget.normalize import PlacementStats, normalise, placement_stats
from neurender.retarget.pose_extract import VIDEO_SUFFIXES, extract_poses
from neurender.retarget.retarget import Proportions, retarget
from neurender.retarget.skeleton import Motion, MotionFormatError
from neurender.retarget.smoothing import median_smooth, one_euro
from neurender.retarget.smplx_io import check_smplx_clip, load_smplx_motion

log = logging.getLogger(__name__)

# 2D bone lengths of a target seen in footage: a high percentile (limbs look shortest when foreshortened).
ACCEPTED_MOTIONS = (
    "a BVH file (.bvh), a DeepMimic clip (.txt/.json), an SMPL-X clip (.npz), OpenPose keypoint "
    "JSON (a file or a folder of them), MediaPipe pose JSON, or a video (" + ", ".join(VIDEO_SUFFIXES) + ")"
)
FOOTAGE_LENGTH_PERCENTILE = 90.0
MIN_CONFIDENCE = 0.3


FRAME_MARGIN = 0.06  # share of the frame kept free around a framed 2D clip, as camera.frame_camera's margin
MIN_IN_FRAME = 0.5  # a pose map whose confident body points are less than this share inside the frame is off-frame


class RetargetError(UserError, ValueError):
    """The retargeted motion cannot make usable pose maps; the message says what and why."""


@dataclass
class Options:
    joint_map: JointMap | None = None  # for the motion's skeleton (None: recognise it by its names)
    target_map: JointMap | None = None  # for the target's skeleton
    smplx_model: Path | None = None
    pose_env: Path | None = None
    max_video_frames: int = 0
    person: int = 0  # in footage: the K-th largest person, tracked (pose_worker.py)


@dataclass
class Source:
    """A motion: 3D canonical poses, or a person's 2D keypoints."""

    pose3d: Pose3D | None = None
    keypoints: Keypoints2D | None = None


@dataclass
class Target:
    proportions: Proportions | None
    placement: PlacementStats | None = None
    size: tuple[int, int] | None = None  # (height, width) of the target's footage


def _is_deepmimic(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(256).lstrip()
    return head.startswith(b"{") and b'"Frames"' in head or head[:1].isdigit() or head[:1] == b"-"


def _load_json_keypoints(path: Path) -> tuple[Keypoints2D, Pose3D | None]:
    if path.is_dir():
        return load_openpose(path), None
    with open(path, "rb") as f:
        head = f.read(512)
    if b"mediapipe_pose_33" in head:
        return load_mediapipe(path)
    return load_openpose(path), None


def load_motion(path: str | Path, options: Options | None = None) -> Motion:
    """A rotation-based motion file (BVH, DeepMimic clip, SMPL-X .npz)."""
    options = options or Options()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".bvh":
        return load_bvh(path)
    if suffix == ".npz":
        check_smplx_clip(path)
        if options.smplx_model is None:
            raise MotionFormatError(
                path, "an SMPL-X clip needs the SMPL-X model: give its file or folder (--smplx-model)"
            )
        return load_smplx_motion(path, options.smplx_model)
    if suffix in (".txt", ".json") and path.is_file() and _is_deepmimic(path):
        return load_deepmimic(path)
    raise MotionFormatError(path, f"not a motion file: expected {ACCEPTED_MOTIONS}")


def load_source(path: str | Path, options: Options | None = None) -> Source:
    options = options or Options()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"motion {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return Source(
            keypoints=extract_poses(
                path, max_frames=options.max_video_frames, env=options.pose_env, person=options.person
            )[0]
        )
    if path.is_dir() or (suffix == ".json" and not _is_deepmimic(path)):
        return Source(keypoints=_load_json_keypoints(path)[0])
    return Source(pose3d=motion_to_canonical(load_motion(path, options), options.joint_map))


def proportions_from_footage(keypoints: Keypoints2D) -> Proportions:
    """Bone lengths (pixels) of a person seen in 2D: a high percentile of each bone's image length; bones
    never seen take the canonical body's, scaled to the seen ones."""
    body = keypoints.body[:, 0]
    parents, children = np.array(BONES).T
    seen = (body[:, parents, 2] > MIN_CONFIDENCE) & (body[:, children, 2] > MIN_CONFIDENCE)
    lengths = np.linalg.norm(body[:, children, :2] - body[:, parents, :2], axis=-1)
    measured = np.array(
        [
            np.percentile(lengths[seen[:, b], b], FOOTAGE_LENGTH_PERCENTILE) if seen[:, b].any() else np.nan
            for b in range(len(BONES))
        ]
    )
    canon = Proportions.canonical().lengths
    known = np.isfinite(measured)
    if not known.any():
        raise ValueError("the target's keypoints never show a whole bone: cannot measure their proportions")
    scale = float(np.median(measured[known] / canon[known]))
    return Proportions(np.where(known, measured, canon * scale))


def load_target(path: str | Path, options: Options | None = None) -> Target:
    """Proportions (and, from footage or keypoints, placement and frame size) of the target person."""
    options = options or Options()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"target {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".urdf":
        character = load_urdf_character(path)
        motion = Motion(
            character.skeleton,
            np.broadcast_to(np.eye(3), (1, len(character.skeleton.names), 3, 3)).copy(),
            character.skeleton.offsets[None].copy(),
            30.0,
            str(path),
        )
        return Target(Proportions.from_pose(rest_pose(motion, options.target_map)))
    keypoints, pose3d = None, None
    if suffix in VIDEO_SUFFIXES:
        keypoints, pose3d = extract_poses(
            path, max_frames=options.max_video_frames, env=options.pose_env, person=options.person
        )
    elif path.is_dir() or (suffix == ".json" and not _is_deepmimic(path)):
        keypoints, pose3d = _load_json_keypoints(path)
    if keypoints is None:
        return Target(Proportions.from_pose(rest_pose(load_motion(path, options), options.target_map)))
    person = keypoints.person(0)
    if pose3d is not None:
        pose3d = Pose3D(pose3d.points, np.where(pose3d.confidence > MIN_CONFIDENCE, pose3d.confidence, 0.0), pose3d.fps)
        try:
            proportions = Proportions.from_pose(pose3d)
        except ValueError:
            proportions = proportions_from_footage(person)
    else:
        proportions = proportions_from_footage(person)
    body = person.body[:, 0].copy()
    body[..., 2] = np.where(body[..., 2] > MIN_CONFIDENCE, body[..., 2], 0.0)
    try:
        placement = placement_stats(body)
    except ValueError as err:  # e.g. head-and-shoulders footage: proportions yes, placement no
        log.warning("target %s: %s; the motion is framed by the camera instead", path, err)
        placement = None
    return Target(proportions, placement, keypoints.size)


@dataclass
class Retargeted:
    """One person's keypoints per frame: body [F, 25, 3] canonical and extras [F, 112, 3], pixels."""

    body: np.ndarray
    extras: np.ndarray
    fps: float
    size: tuple[int, int]
    camera: Camera | None = None
    depth: np.ndarray | None = None  # [F, 25] camera depth of each body point (3D sources)
    points3d: np.ndarray | None = None  # [F, 25, 3] retargeted 3D points the camera saw (3D sources, unplaced)

    def keypoints(self, convention: model_pb2.PoseConvention) -> np.ndarray:
        """[F, 1, K, 3] in the convention's layout, ready for draw_pose_map frame by frame."""
        return to_convention(self.body, self.extras, convention)[:, None]


def resample(pose: Pose3D | Keypoints2D, fps: float | None) -> Pose3D | Keypoints2D:
    """Nearest-frame resampling to `fps` (None: unchanged)."""
    if not fps or abs(fps - pose.fps) < 1e-6:
        return pose
    n = pose.points.shape[0] if isinstance(pose, Pose3D) else pose.body.shape[0]
    count = int(np.floor((n - 1) * fps / pose.fps + 1e-3)) + 1  # output times up to the last source frame's
    index = np.minimum(np.round(np.arange(count) * pose.fps / fps).astype(int), n - 1)
    if isinstance(pose, Pose3D):
        return Pose3D(pose.points[index], pose.confidence[index], fps)
    return Keypoints2D(pose.body[index], pose.extras[index], fps, pose.size, pose.skeleton)


def smooth(keypoints: np.ndarray, method: str, fps: float) -> np.ndarray:
    if method == "none":
        return keypoints
    if method == "median":
        return median_smooth(keypoints, 5)
    if method == "one-euro":
        return one_euro(keypoints, fps)
    raise ValueError(f"smoothing {method!r}: expected none, median or one-euro")


def retarget_source(
    source: Source,
    target: Target,
    size: tuple[int, int],
    fps: float | None = None,
    smoothing: str = "none",
    yaw_deg: float = 0.0,
) -> Retargeted:
    """The source's motion on the target, as 2D keypoints in a `size` (height, width) frame."""
    height, width = size
    camera, depth, points3d = None, None, None
    if source.pose3d is not None:
        pose = resample(source.pose3d, fps)
        assert isinstance(pose, Pose3D)
        if target.proportions is not None:
            pose = retarget(pose, target.proportions)
        camera = frame_camera(pose, height, width, yaw_deg=yaw_deg)
        body = project_pose(pose, camera)
        depth = camera.project(pose.points)[1]
        points3d = pose.points
        extras = np.zeros((body.shape[0], N_EXTRA, 3))
        out_fps = pose.fps
    else:
        keypoints = resample(source.keypoints.person(0), fps)  # type: ignore[union-attr]
        assert isinstance(keypoints, Keypoints2D)
        body, extras, out_fps = keypoints.body[:, 0].copy(), keypoints.extras[:, 0].copy(), keypoints.fps
    if target.placement is not None:
        body, extras = normalise(body, placement_stats(body), target.placement, extras)
    elif source.pose3d is None:
        body, extras = frame_2d(body, extras, size)
    body = smooth(body, smoothing, out_fps)
    extras = smooth(extras, smoothing, out_fps)
    check_in_frame(body, size)
    return Retargeted(body, extras, out_fps, size, camera, depth, points3d)


def frame_2d(body: np.ndarray, extras: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints [F, N, 3] (any pixel coordinates) moved by one scale and shift so the box of every confident
    point of the clip fits the `size` frame with FRAME_MARGIN to spare, centred."""
    seen = body[..., 2] > 0
    if not seen.any():
        raise RetargetError("the motion's keypoints show nobody in any frame: no pose maps to draw")
    points = body[seen][:, :2]
    lo, hi = points.min(axis=0), points.max(axis=0)
    height, width = size
    room = np.array([width, height], np.float64) * (1.0 - 2.0 * FRAME_MARGIN)
    scale = float(np.min(room / np.maximum(hi - lo, 1e-6)))
    shift = np.array([width - 1, height - 1], np.float64) / 2.0 - scale * (lo + hi) / 2.0

    def move(keypoints: np.ndarray) -> np.ndarray:
        out = keypoints.copy()
        out[..., :2] = np.where(keypoints[..., 2:3] > 0, keypoints[..., :2] * scale + shift, 0.0)
        return out

    return move(body), move(extras)


def check_in_frame(body: np.ndarray, size: tuple[int, int]) -> None:
    """Refuse output most of whose pose maps would be empty or mostly off-frame (a blank map renders garbage)."""
    height, width = size
    seen = body[..., 2] > 0
    inside = seen & (body[..., 0] >= 0) & (body[..., 0] < width) & (body[..., 1] >= 0) & (body[..., 1] < height)
    share = inside.sum(axis=1) / np.maximum(seen.sum(axis=1), 1)
    bad = int(np.count_nonzero(share < MIN_IN_FRAME))
    if bad * 2 > len(body):
        raise RetargetError(
            f"{bad} of {len(body)} pose maps would be empty or mostly off the {height}x{width} frame "
            "(fewer than half of their keypoints inside); expected the person in view: check that the "
            "motion shows a person and that --size suits it"
        )
