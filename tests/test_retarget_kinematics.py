"""Forward kinematics, joint maps, bone-length retargeting with feet on the floor, and camera projection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurender.retarget.bvh import load_bvh
from neurender.retarget.camera import Camera, frame_camera, look_at, project_pose
from neurender.retarget.canonical import (
    FOOT_POINTS,
    INDEX,
    SkeletonMapError,
    bone_lengths,
    choose_joint_map,
    leg_length,
    load_joint_map,
    motion_to_canonical,
    rest_pose,
)
from neurender.retarget.deepmimic import load_deepmimic
from neurender.retarget.retarget import Proportions, floor_height, retarget
from neurender.retarget.skeleton import motion_fk

MOCAP = Path(__file__).parent / "data" / "mocap"


@pytest.fixture(scope="module")
def cmu():
    return load_bvh(MOCAP / "cmu_01_01.bvh")


@pytest.fixture(scope="module")
def dance():
    return load_deepmimic(MOCAP / "humanoid3d_dance_a.txt")


def _skeleton_bone_lengths(motion) -> np.ndarray:
    positions, _ = motion_fk(motion)
    bones = motion.skeleton.bones()
    return np.stack([np.linalg.norm(positions[:, c] - positions[:, p], axis=-1) for p, c in bones], axis=1)


@pytest.mark.parametrize("clip", ["cmu", "dance"])
def test_bone_lengths_stay_constant_under_forward_kinematics(clip, request):
    motion = request.getfixturevalue(clip)
    lengths = _skeleton_bone_lengths(motion)
    offsets = np.linalg.norm(motion.skeleton.offsets[[c for _, c in motion.skeleton.bones()]], axis=1)
    assert lengths.shape == (motion.n_frames, len(motion.skeleton.bones()))
    assert np.abs(lengths - offsets).max() < 1e-9 * max(1.0, offsets.max())
    # The motion really moves: the joints do not sit still.
    positions, _ = motion_fk(motion)
    assert positions.std(axis=0).max() > 0.05 * offsets.max()


def test_known_skeletons_are_recognised(cmu, dance):
    assert choose_joint_map(cmu.skeleton.names).name == "cmu"
    assert choose_joint_map(dance.skeleton.names).name == "deepmimic"
    smplx_names = (
        "pelvis",
        "left_hip",
        "right_hip",
        "spine1",
        "left_knee",
        "right_knee",
        "spine2",
        "left_ankle",
        "right_ankle",
        "spine3",
        "left_foot",
        "right_foot",
        "neck",
        "left_collar",
        "right_collar",
        "head",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
    )
    assert choose_joint_map(smplx_names).name == "smplx"


def _chain_bvh(joints: list[tuple[str, str | None, tuple[float, float, float]]]) -> str:
    """A BVH with the given (name, parent, offset) joints, every joint with 3 rotation channels, 2 still frames."""
    children: dict[str | None, list] = {}
    for name, parent, offset in joints:
        children.setdefault(parent, []).append((name, offset))

    def block(name: str, offset, depth: int, root: bool) -> list[str]:
        pad = "  " * depth
        channels = (
            "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
            if root
            else "CHANNELS 3 Zrotation Xrotation Yrotation"
        )
        out = [
            f"{pad}{'ROOT' if root else 'JOINT'} {name}",
            f"{pad}{{",
            f"{pad}  OFFSET {offset[0]} {offset[1]} {offset[2]}",
            f"{pad}  {channels}",
        ]
        for child, child_offset in children.get(name, []):
            out += block(child, child_offset, depth + 1, False)
        return out + [f"{pad}}}"]

    ((root, root_offset),) = children[None]
    n_channels = 3 * len(joints) + 3
    return (
        "\n".join(
            [
                "HIERARCHY",
                *block(root, root_offset, 0, True),
                "MOTION",
                "Frames: 2",
                "Frame Time: 0.0333333",
                " ".join(["0"] * n_channels),
                " ".join(["0"] * n_channels),
            ]
        )
        + "\n"
    )


def _mixamo_joints(prefix: str) -> list:
    j = []

    def add(name, parent, offset):
        j.append((prefix + name, prefix + parent if parent else None, offset))

    add("Hips", None, (0, 100, 0))
    add("Spine", "Hips", (0, 10, 0))
    add("Spine1", "Spine", (0, 12, 0))
    add("Spine2", "Spine1", (0, 12, 0))
    add("Neck", "Spine2", (0, 15, 0))
    add("Head", "Neck", (0, 10, 0))
    add("HeadTop_End", "Head", (0, 18, 0))
    for side, s in (("Left", 1), ("Right", -1)):
        add(f"{side}Shoulder", "Spine2", (s * 6, 12, 0))
        add(f"{side}Arm", f"{side}Shoulder", (s * 12, 0, 0))
        add(f"{side}ForeArm", f"{side}Arm", (s * 27, 0, 0))
        add(f"{side}Hand", f"{side}ForeArm", (s * 25, 0, 0))
        add(f"{side}UpLeg", "Hips", (s * 9, -5, 0))
        add(f"{side}Leg", f"{side}UpLeg", (0, -43, 0))
        add(f"{side}Foot", f"{side}Leg", (0, -42, 0))
        add(f"{side}ToeBase", f"{side}Foot", (0, -6, 12))
        add(f"{side}Toe_End", f"{side}ToeBase", (0, 0, 7))
    return j


def test_mixamo_skeleton_maps_by_name_with_namespace(tmp_path):
    path = tmp_path / "mixamo.bvh"
    path.write_text(_chain_bvh(_mixamo_joints("mixamorig:")))
    motion = load_bvh(path)
    assert choose_joint_map(motion.skeleton.names).name == "mixamo"
    pose = motion_to_canonical(motion)
    positions, _ = motion_fk(motion)
    names = motion.skeleton.names
    assert pose.points[0, INDEX["r_big_toe"]] == pytest.approx(positions[0, names.index("mixamorig:RightToe_End")])
    assert pose.points[0, INDEX["l_elbow"]] == pytest.approx(positions[0, names.index("mixamorig:LeftForeArm")])
    # Mid-hip and neck sit between the hips and between the shoulders, as OpenPose puts them.
    assert pose.points[0, INDEX["mid_hip"]] == pytest.approx(
        (positions[0, names.index("mixamorig:LeftUpLeg")] + positions[0, names.index("mixamorig:RightUpLeg")]) / 2
    )


def test_unknown_skeleton_error_names_the_unmapped_joints(tmp_path):
    renamed = [
        (f"bone{i}", None if p is None else f"bone{[n for n, _, _ in _mixamo_joints('')].index(p)}", o)
        for i, (n, p, o) in enumerate(_mixamo_joints(""))
    ]
    path = tmp_path / "unknown.bvh"
    path.write_text(_chain_bvh(renamed))
    motion = load_bvh(path)
    with pytest.raises(SkeletonMapError) as err:
        motion_to_canonical(motion)
    message = str(err.value)
    assert "unknown skeleton" in message and "bone0" in message
    for point in ("r_shoulder", "l_knee", "r_ankle"):
        assert point in message
    # A YAML map makes the same skeleton usable.
    index = {n: i for i, (n, _, _) in enumerate(_mixamo_joints(""))}
    mapping = {
        "r_shoulder": "RightArm",
        "r_elbow": "RightForeArm",
        "r_wrist": "RightHand",
        "l_shoulder": "LeftArm",
        "l_elbow": "LeftForeArm",
        "l_wrist": "LeftHand",
        "r_hip": "RightUpLeg",
        "r_knee": "RightLeg",
        "r_ankle": "RightFoot",
        "l_hip": "LeftUpLeg",
        "l_knee": "LeftLeg",
        "l_ankle": "LeftFoot",
    }
    yaml_text = f"head: bone{index['Head']}\njoints:\n" + "".join(
        f"  {k}: bone{index[v]}\n" for k, v in mapping.items()
    )
    map_path = tmp_path / "map.yaml"
    map_path.write_text(yaml_text)
    pose = motion_to_canonical(motion, load_joint_map(map_path))
    positions, _ = motion_fk(motion)
    assert pose.points[1, INDEX["r_knee"]] == pytest.approx(positions[1, index["RightLeg"]])
    # A map naming a joint the skeleton lacks is refused with that joint's name.
    map_path.write_text(yaml_text.replace(f"bone{index['LeftFoot']}", "no_such_joint"))
    with pytest.raises(SkeletonMapError, match="l_ankle \\(expected no_such_joint\\)"):
        motion_to_canonical(motion, load_joint_map(map_path))


@pytest.fixture(scope="module")
def retargeted(cmu, dance):
    source = motion_to_canonical(cmu)
    target = Proportions.from_pose(rest_pose(dance))
    return source, target, retarget(source, target)


def test_retargeted_bone_lengths_equal_the_targets(retargeted):
    source, target, out = retargeted
    lengths = bone_lengths(out.points)
    assert np.abs(lengths - target.lengths).max() < 1e-9
    # CMU is in its own units (leg ~15), the DeepMimic humanoid in metres (leg ~0.83): the result is in metres.
    assert np.median(leg_length(source.points)) > 10
    assert leg_length(out.points).mean() == pytest.approx(target.leg_length)


def test_feet_stay_on_the_ground(retargeted):
    source, target, out = retargeted
    tol = 0.03 * target.leg_length  # 2.5 cm on the DeepMimic humanoid's 0.83 m legs
    low = out.points[:, FOOT_POINTS, 1].min(axis=1)
    source_clearance = source.points[:, FOOT_POINTS, 1].min(axis=1) - floor_height(source.points)
    source_leg = np.median(leg_length(source.points))
    planted = source_clearance < 0.03 * source_leg
    assert planted.mean() > 0.5  # the clip stands on the floor most of the time
    assert low.min() > -tol  # never through the floor
    assert np.abs(low[planted]).max() < tol  # planted when the source was planted
    # In the air when the source jumps: the clearance scales with the legs.
    ratio = target.leg_length / source_leg
    assert low[~planted] == pytest.approx(ratio * source_clearance[~planted], abs=tol)
    # The root travels the source's horizontal path, scaled by the leg ratio.
    travel = np.ptp(out.points[:, INDEX["mid_hip"], 0])
    assert travel == pytest.approx(ratio * np.ptp(source.points[:, INDEX["mid_hip"], 0]), rel=0.02)


def test_camera_projection_and_framing(retargeted):
    _, _, out = retargeted
    camera = Camera(
        100.0, (50.0, 40.0), look_at(np.array([0.0, 1.0, 5.0]), np.array([0.0, 1.0, 0.0])), np.array([0.0, 1.0, 5.0])
    )
    pixels, depth = camera.project(np.array([[0.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 1.0, 10.0]]))
    assert pixels[0] == pytest.approx([50.0, 40.0]) and depth[0] == pytest.approx(5.0)
    # One unit right and up, 5 away: 100 * 1/5 px off centre; image y grows downwards; behind: negative depth.
    assert pixels[1] == pytest.approx([50.0 + 20.0, 40.0 - 20.0]) and depth[2] < 0

    framed = frame_camera(out, 96, 128, margin=0.05)
    keypoints = project_pose(out, framed)
    assert (keypoints[..., 2] > 0).all()
    x, y = keypoints[..., 0], keypoints[..., 1]
    assert x.min() >= 0.05 * 128 - 1 and x.max() <= 0.95 * 128 and y.min() >= 0.05 * 96 - 1 and y.max() <= 0.95 * 96
    # Tight: the clip reaches the margin on at least one side.
    reach = max(
        (x.max() - 63.5) / (0.45 * 128),
        (63.5 - x.min()) / (0.45 * 128),
        (y.max() - 47.5) / (0.45 * 96),
        (47.5 - y.min()) / (0.45 * 96),
    )
    assert reach == pytest.approx(1.0, abs=0.01)
    # Standing person: head above feet in the image.
    assert (keypoints[:, INDEX["nose"], 1] < keypoints[:, INDEX["r_ankle"], 1]).mean() > 0.95
