"""The canonical body: the 25 OpenPose BODY_25 points as a tree, and mapping any mocap skeleton onto it.

Canonical 3D poses are y-up, right-handed, in the source's units. The point order is BODY_25's, so a
projected canonical pose is a BODY_25 keypoint array as is. Joint maps (which source joint plays which
canonical point) live in data/joint_maps.yaml for CMU, Mixamo, DeepMimic and SMPL-X skeletons; other skeletons
are mapped by their joint names (joint_names.py); a user map in the same form overrides them. Face and foot points a skeleton lacks are placed from the canonical body
(data/canonical_body.yaml) and follow the head or ankle joint's rotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml

from neurender.common.errors import UserError
from neurender.retarget.skeleton import Motion, motion_fk

DATA = Path(__file__).with_name("data")
JOINT_MAPS = DATA / "joint_maps.yaml"
CANONICAL_BODY = DATA / "canonical_body.yaml"

NAMES: tuple[str, ...] = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "mid_hip",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
    "l_big_toe",
    "l_small_toe",
    "l_heel",
    "r_big_toe",
    "r_small_toe",
    "r_heel",
)
INDEX = {name: i for i, name in enumerate(NAMES)}
_PARENT_NAMES = {
    "nose": "neck",
    "neck": "mid_hip",
    "r_shoulder": "neck",
    "r_elbow": "r_shoulder",
    "r_wrist": "r_elbow",
    "l_shoulder": "neck",
    "l_elbow": "l_shoulder",
    "l_wrist": "l_elbow",
    "r_hip": "mid_hip",
    "r_knee": "r_hip",
    "r_ankle": "r_knee",
    "l_hip": "mid_hip",
    "l_knee": "l_hip",
    "l_ankle": "l_knee",
    "r_eye": "nose",
    "l_eye": "nose",
    "r_ear": "r_eye",
    "l_ear": "l_eye",
    "l_big_toe": "l_ankle",
    "l_small_toe": "l_ankle",
    "l_heel": "l_ankle",
    "r_big_toe": "r_ankle",
    "r_small_toe": "r_ankle",
    "r_heel": "r_ankle",
}
PARENTS: tuple[int, ...] = tuple(INDEX[_PARENT_NAMES[n]] if n in _PARENT_NAMES else -1 for n in NAMES)
ROOT = INDEX["mid_hip"]


def _topological_order() -> tuple[int, ...]:
    order, pending = [ROOT], [j for j in range(len(NAMES)) if j != ROOT]
    while pending:
        ready = [j for j in pending if PARENTS[j] in order]
        order += ready
        pending = [j for j in pending if j not in ready]
    return tuple(order)


ORDER = _topological_order()  # parents before children
BONES: tuple[tuple[int, int], ...] = tuple((PARENTS[j], j) for j in ORDER if PARENTS[j] >= 0)
FOOT_POINTS = tuple(INDEX[n] for n in ("l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel"))
FACE_POINTS = tuple(INDEX[n] for n in ("nose", "r_eye", "l_eye", "r_ear", "l_ear"))
REQUIRED = (
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
)


class SkeletonMapError(UserError, ValueError):
    """A skeleton that cannot be mapped onto the canonical body; the message names the unmapped joints."""


@dataclass
class Pose3D:
    """Canonical 3D poses: points [F, 25, 3] (BODY_25 order, y-up), confidence [F, 25] (0 = missing)."""

    points: np.ndarray
    confidence: np.ndarray
    fps: float

    @property
    def n_frames(self) -> int:
        return int(self.points.shape[0])


@cache
def canonical_rest() -> np.ndarray:
    """The canonical body at rest [25, 3] as [forward, up, left] in leg lengths, origin at the mid-hip."""
    table = yaml.safe_load(CANONICAL_BODY.read_text())["rest"]
    return np.array([table[name] for name in NAMES], dtype=np.float64)


def leg_length(points: np.ndarray) -> np.ndarray:
    """Mean of the two legs' hip-knee-ankle lengths, per frame ([..., 25, 3] -> [...])."""

    def chain(*names: str) -> np.ndarray:
        idx = [INDEX[n] for n in names]
        return sum(np.linalg.norm(points[..., b, :] - points[..., a, :], axis=-1) for a, b in zip(idx, idx[1:]))

    return 0.5 * (chain("r_hip", "r_knee", "r_ankle") + chain("l_hip", "l_knee", "l_ankle"))


def bone_lengths(points: np.ndarray) -> np.ndarray:
    """Lengths of BONES per frame: [..., 25, 3] -> [..., len(BONES)]."""
    parents, children = np.array(BONES).T
    return np.linalg.norm(points[..., children, :] - points[..., parents, :], axis=-1)


# ---------------------------------------------------------------------------------------------- joint maps


@dataclass(frozen=True)
class JointMap:
    name: str
    joints: dict[str, tuple[str, ...]]  # canonical point -> source joint alternatives
    head: tuple[str, ...]  # joint the face follows (alternatives)
    signature: tuple[str, ...] = ()


def _alternatives(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SkeletonMapError(f"{where}: expected a joint name or a list of joint names, got {value!r}")


def _parse_map(name: str, entry: object, where: str) -> JointMap:
    if not isinstance(entry, dict) or not isinstance(entry.get("joints"), dict):
        raise SkeletonMapError(f"{where}: expected a mapping with 'joints' (canonical point -> source joint)")
    unknown = sorted(set(entry["joints"]) - set(NAMES))
    if unknown:
        raise SkeletonMapError(f"{where}: unknown canonical points {unknown}; expected some of {list(NAMES)}")
    joints = {k: _alternatives(v, f"{where}: joints.{k}") for k, v in entry["joints"].items()}
    head = _alternatives(entry["head"], f"{where}: head") if "head" in entry else ()
    if not head and not all(n in joints for n in ("nose", "r_eye", "l_eye", "r_ear", "l_ear")):
        raise SkeletonMapError(f"{where}: give 'head' (the joint the face follows) or map all of nose, eyes and ears")
    signature = tuple(entry.get("signature", ()))
    return JointMap(name, joints, head, signature)


@cache
def known_maps() -> tuple[JointMap, ...]:
    table = yaml.safe_load(JOINT_MAPS.read_text())
    return tuple(_parse_map(name, entry, f"{JOINT_MAPS.name}: {name}") for name, entry in table.items())


def load_joint_map(path: str | Path) -> JointMap:
    """A user joint map: YAML with `joints` (canonical point -> source joint) and `head`."""
    path = Path(path)
    try:
        entry = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SkeletonMapError(f"{path}: cannot read the joint map ({err})") from None
    return _parse_map(path.stem, entry, str(path))


def _bare(name: str) -> str:
    return name.rsplit(":", 1)[-1]


def _resolve(alternatives: tuple[str, ...], lookup: dict[str, int]) -> int | None:
    for name in alternatives:
        if _bare(name) in lookup:
            return lookup[_bare(name)]
    return None


def _missing(joint_map: JointMap, lookup: dict[str, int]) -> list[str]:
    missing = [
        f"{p} (expected {' or '.join(joint_map.joints[p])})" if p in joint_map.joints else f"{p} (not in the map)"
        for p in REQUIRED
        if p not in joint_map.joints or _resolve(joint_map.joints[p], lookup) is None
    ]
    missing += [
        f"{p} (expected {' or '.join(joint_map.joints[p])})"
        for p in joint_map.joints
        if p not in REQUIRED and _resolve(joint_map.joints[p], lookup) is None
    ]
    if joint_map.head and _resolve(joint_map.head, lookup) is None:
        missing.append(f"head (expected {' or '.join(joint_map.head)})")
    return missing


def choose_joint_map(
    names: tuple[str, ...], joint_map: JointMap | None = None, parents: tuple[int, ...] | None = None
) -> JointMap:
    """The given map checked against the skeleton, or the known family whose signature the skeleton has, or
    (with the tree's `parents`) the map guessed from joint names when it finds every required point."""
    lookup = {_bare(n): i for i, n in enumerate(names)}
    if joint_map is not None:
        missing = _missing(joint_map, lookup)
        if missing:
            raise SkeletonMapError(
                f"joint map {joint_map.name!r} names joints the skeleton lacks: {'; '.join(missing)}"
            )
        return joint_map
    for candidate in known_maps():
        if all(_bare(s) in lookup for s in candidate.signature) and not _missing(candidate, lookup):
            return candidate
    if parents is not None:
        from neurender.retarget.joint_names import guess_joint_map

        guess = guess_joint_map(names, parents)
        if guess.head and not _missing(guess, lookup):
            return guess
    best = min(known_maps(), key=lambda m: len(_missing(m, lookup)))
    raise SkeletonMapError(
        f"unknown skeleton (joints: {', '.join(names[:40])}{' ...' if len(names) > 40 else ''}): it matches none of "
        f"{', '.join(m.name for m in known_maps())}; unmapped canonical joints (closest: {best.name}): "
        f"{'; '.join(_missing(best, lookup))}. Give a joint map YAML (joints: {{canonical: source}}, head: JOINT); "
        "`neurender retarget --print-joint-map MOTION` writes the best guess to start from"
    )


# ------------------------------------------------------------------------------------ motion -> canonical

_UP_TO_Y = {"y": np.eye(3), "z": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])}


def body_axes(points: np.ndarray) -> np.ndarray:
    """Per frame, the body's [forward, up, left] unit vectors as columns: [..., 25, 3] -> [..., 3, 3]."""
    neck = 0.5 * (points[..., INDEX["r_shoulder"], :] + points[..., INDEX["l_shoulder"], :])
    up = neck - points[..., ROOT, :]
    up /= np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-12)
    left = points[..., INDEX["l_hip"], :] - points[..., INDEX["r_hip"], :]
    left -= np.sum(left * up, axis=-1, keepdims=True) * up
    left /= np.maximum(np.linalg.norm(left, axis=-1, keepdims=True), 1e-12)
    forward = np.cross(left, up)
    return np.stack([forward, up, left], axis=-1)


def motion_to_canonical(motion: Motion, joint_map: JointMap | None = None) -> Pose3D:
    """Forward kinematics of a motion, read out as canonical points (y-up), sites placed where unmapped."""
    jmap = choose_joint_map(motion.skeleton.names, joint_map, motion.skeleton.parents)
    lookup = {_bare(n): i for i, n in enumerate(motion.skeleton.names)}
    to_y = _UP_TO_Y[motion.up_axis]
    positions, rotations = motion_fk(motion)
    rest_positions, rest_rotations = motion_fk(motion.rest())
    positions, rotations = positions @ to_y.T, to_y @ rotations
    rest_positions, rest_rotations = rest_positions[0] @ to_y.T, to_y @ rest_rotations[0]

    f = motion.n_frames
    points = np.zeros((f, len(NAMES), 3))
    rest = np.zeros((len(NAMES), 3))
    mapped = {p: _resolve(alts, lookup) for p, alts in jmap.joints.items()}
    for p, j in mapped.items():
        points[:, INDEX[p]] = positions[:, j]
        rest[INDEX[p]] = rest_positions[j]
    for middle, (a, b) in (("neck", ("r_shoulder", "l_shoulder")), ("mid_hip", ("r_hip", "l_hip"))):
        if middle not in mapped:  # OpenPose's neck and mid-hip lie midway between the shoulders and the hips
            for arr in (points, rest):
                arr[..., INDEX[middle], :] = 0.5 * (arr[..., INDEX[a], :] + arr[..., INDEX[b], :])

    # Sites: canonical rest offsets (leg lengths, body axes) from their anchor, carried by a joint's rotation.
    scale = float(leg_length(rest))
    axes = body_axes(rest)
    canon = canonical_rest()
    head = _resolve(jmap.head, lookup) if jmap.head else None
    for point in FACE_POINTS + FOOT_POINTS:
        name = NAMES[point]
        if name in mapped:
            continue
        if point in FACE_POINTS:
            anchor, carrier = INDEX["neck"], head
        else:
            anchor = INDEX[name[:2] + "ankle"]
            carrier = mapped[name[:2] + "ankle"]
        offset = axes @ (canon[point] - canon[anchor]) * scale
        site_rest = rest[anchor] + offset
        local = rest_rotations[carrier].T @ (site_rest - rest_positions[carrier])
        points[:, point] = positions[:, carrier] + np.einsum("fab,b->fa", rotations[:, carrier], local)
        rest[point] = site_rest
    return Pose3D(points, np.ones((f, len(NAMES))), motion.fps)


def rest_pose(motion: Motion, joint_map: JointMap | None = None) -> Pose3D:
    """The skeleton's rest pose as one canonical frame (for its proportions)."""
    return motion_to_canonical(motion.rest(), joint_map)
