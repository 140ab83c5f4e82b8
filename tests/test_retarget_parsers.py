"""Motion and keypoint readers on the real mocap (tests/data/mocap) and on files broken on purpose."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from neurender.proto.neurender.v1 import model_pb2
from neurender.retarget.bvh import load_bvh
from neurender.retarget.canonical import INDEX, NAMES
from neurender.retarget.deepmimic import load_deepmimic, load_urdf_character
from neurender.retarget.keypoints_io import load_mediapipe, load_openpose, openpose_frame, to_convention
from neurender.retarget.skeleton import MotionFormatError, motion_fk

MOCAP = Path(__file__).parent / "data" / "mocap"
CMU = MOCAP / "cmu_01_01.bvh"
DANCE = MOCAP / "humanoid3d_dance_a.txt"
WALK = MOCAP / "humanoid3d_walk.txt"
CMU_JOINTS = [
    "Hips",
    "LHipJoint",
    "LeftUpLeg",
    "LeftLeg",
    "LeftFoot",
    "LeftToeBase",
    "RHipJoint",
    "RightUpLeg",
    "RightLeg",
    "RightFoot",
    "RightToeBase",
    "LowerBack",
    "Spine",
    "Spine1",
    "Neck",
    "Neck1",
    "Head",
    "LeftShoulder",
    "LeftArm",
    "LeftForeArm",
    "LeftHand",
    "LeftFingerBase",
    "LFingers",
    "LThumb",
    "RightShoulder",
    "RightArm",
    "RightForeArm",
    "RightHand",
    "RightFingerBase",
    "RFingers",
    "RThumb",
]


@pytest.fixture(scope="module")
def cmu():
    return load_bvh(CMU)


def test_cmu_bvh_joints_frames_and_rate(cmu):
    names = cmu.skeleton.names
    assert [n for n in names if not n.endswith("_End")] == CMU_JOINTS
    assert [n for n in names if n.endswith("_End")] == [
        "LeftToeBase_End",
        "RightToeBase_End",
        "Head_End",
        "LFingers_End",
        "LThumb_End",
        "RFingers_End",
        "RThumb_End",
    ]
    assert cmu.n_frames == 2752
    assert cmu.fps == pytest.approx(120.0, rel=1e-4)
    assert cmu.skeleton.parents[names.index("LeftLeg")] == names.index("LeftUpLeg")
    # Frame 1's root position is the first three numbers of the first data line.
    assert cmu.translations[0, 0] == pytest.approx([9.3722, 17.8693, -17.3198])


def test_deepmimic_clips_joints_frames_and_rate():
    dance, walk = load_deepmimic(DANCE), load_deepmimic(WALK)
    expected = (
        "root",
        "chest",
        "neck",
        "right_hip",
        "right_knee",
        "right_ankle",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_hip",
        "left_knee",
        "left_ankle",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    )
    assert dance.skeleton.names == expected and walk.skeleton.names == expected
    assert (dance.n_frames, walk.n_frames) == (98, 39)
    assert dance.fps == pytest.approx(60.0, rel=1e-3) and walk.fps == pytest.approx(30.0, rel=1e-3)
    # URDF offsets x 0.25 are metres: thigh 1.686184 * 0.25.
    knee = expected.index("right_knee")
    assert np.linalg.norm(dance.skeleton.offsets[knee]) == pytest.approx(1.686184 * 0.25)
    # Standing height in metres: the root is about 0.85 m up and the ankles near the floor.
    positions, _ = motion_fk(walk)
    assert 0.7 < positions[:, 0, 1].mean() < 1.0
    assert positions[:, expected.index("left_ankle"), 1].min() < 0.12


def test_deepmimic_plain_text_rows_read_like_the_json(tmp_path):
    frames = json.loads(WALK.read_text())["Frames"]
    path = tmp_path / "walk.txt"
    path.write_text("\n".join(" ".join(repr(v) for v in frame) for frame in frames) + "\n")
    plain, original = load_deepmimic(path), load_deepmimic(WALK)
    assert plain.n_frames == 39 and np.array_equal(plain.rotations, original.rotations)
    assert np.array_equal(plain.translations, original.translations)


def test_deepmimic_revolute_knee_bends_about_its_axis():
    character = load_urdf_character()
    knee = character.skeleton.names.index("right_knee")
    assert character.joint_types[knee] == "revolute"
    assert character.axes[knee] == pytest.approx([0.0, 0.0, 1.0])
    dance = load_deepmimic(DANCE)
    angle = json.loads(DANCE.read_text())["Frames"][0][
        20
    ]  # after dt, root pos 3, root quat 4, chest, neck, r_hip 4 each
    rotation = dance.rotations[0, knee]
    assert rotation[2] == pytest.approx([0.0, 0.0, 1.0])
    assert np.arctan2(rotation[1, 0], rotation[0, 0]) == pytest.approx(angle)


SMALL_BVH = """HIERARCHY
ROOT root
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
  JOINT slider
  {
    OFFSET 0 10 0
    CHANNELS 4 Zposition Xposition Yrotation Xrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
1 2 3 90 0 0 7 8 0 0
0 0 0 0 90 0 0 0 0 90
"""


def test_bvh_channel_and_rotation_orders_and_frame_rate(tmp_path):
    path = tmp_path / "small.bvh"
    path.write_text(SMALL_BVH)
    motion = load_bvh(path)
    assert motion.fps == pytest.approx(25.0)
    assert motion.skeleton.names == ("root", "slider", "slider_End")
    positions, _ = motion_fk(motion)
    # Frame 1: root at (1,2,3) turned 90 deg about X; slider's position channels replace its offset's x and z
    # and keep y: local (8, 10, 7) -> rotated about X by 90: (8, -7, 10).
    assert positions[0, 1] == pytest.approx([1 + 8, 2 - 7, 3 + 10])
    # Frame 2: root turned 90 deg about Y; the slider's position channels are 0 and its y comes from the offset,
    # (0, 10, 0), unchanged by the turn; the slider turns 90 deg about X, so its End Site (0, 5, 0) -> (0, 0, 5),
    # which the root's Y turn maps to (5, 0, 0).
    assert positions[1, 1] == pytest.approx([0, 10, 0])
    assert positions[1, 2] == pytest.approx([5, 10, 0])


def _write_broken(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "broken.bvh"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_truncated_bvh_names_the_line(tmp_path):
    lines = CMU.read_text().splitlines()
    path = _write_broken(tmp_path, lines[:1000])  # the header says 2752 frames
    with pytest.raises(
        MotionFormatError, match=r"line 1000: truncated: the header announces 2752 frames but the data ends after 813"
    ):
        load_bvh(path)


def test_bvh_with_one_row_more_than_its_header_reads_the_header_frames(caplog):
    extra = load_bvh(MOCAP / "cmu_01_01_extra_row.bvh")  # header: 60 frames, 61 rows
    full = load_bvh(CMU)
    assert extra.n_frames == 60
    np.testing.assert_allclose(extra.rotations, full.rotations[:60])
    np.testing.assert_allclose(extra.translations, full.translations[:60])
    assert "1 row(s) after the 60 frames the header announces are ignored" in caplog.text


def test_half_written_last_frame_names_its_line(tmp_path):
    lines = CMU.read_text().splitlines()
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    path = _write_broken(tmp_path, lines)
    with pytest.raises(MotionFormatError, match=rf"line {len(lines)}: frame 2752 has \d+ values, expected 96"):
        load_bvh(path)


def test_malformed_value_and_hierarchy_name_the_line(tmp_path):
    lines = CMU.read_text().splitlines()
    bad = list(lines)
    bad[199] = bad[199].replace(" ", " x", 1)  # a stray token in frame 13 (frames start on line 188)
    with pytest.raises(MotionFormatError, match=r"line 200: frame 13: 'x.*' is not a number"):
        load_bvh(_write_broken(tmp_path, bad))
    bad = list(lines)
    bad[12] = bad[12].replace("CHANNELS 3", "CHANNELS 3 Wrotation")  # LeftUpLeg's channels
    with pytest.raises(MotionFormatError, match=r"line 13: joint 'LeftUpLeg': unknown channel 'Wrotation'"):
        load_bvh(_write_broken(tmp_path, bad))
    bad = list(lines)
    bad[3] = "\tOFFSET 0.0 zero 0.0"
    with pytest.raises(MotionFormatError, match=r"line 4: OFFSET y: 'zero' is not a number"):
        load_bvh(_write_broken(tmp_path, bad))


def test_broken_deepmimic_clip_names_the_line(tmp_path):
    text = DANCE.read_text()
    lines = text.splitlines()
    frame_line = next(n for n, line in enumerate(lines) if line.lstrip().startswith("[") and "," in line and n > 4)
    lines[frame_line] = re.sub(r",\s*-?[0-9.]+", "", lines[frame_line], count=1)  # drop a value: 43 in that frame
    path = tmp_path / "dance.txt"
    path.write_text("\n".join(lines))
    with pytest.raises(MotionFormatError, match=rf"line {frame_line + 1}: frame 2 has 43 values, expected 44"):
        load_deepmimic(path)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(MotionFormatError, match=r"line \d+: not valid JSON"):
        load_deepmimic(path)


def _person(rng: np.random.Generator, body: int, face: bool, hands: bool) -> dict:
    entry = {"pose_keypoints_2d": np.c_[rng.uniform(0, 200, (body, 2)), rng.uniform(0.1, 1, body)].ravel().tolist()}
    entry["face_keypoints_2d"] = rng.uniform(1, 100, 210).tolist() if face else []
    entry["hand_left_keypoints_2d"] = rng.uniform(1, 100, 63).tolist() if hands else []
    entry["hand_right_keypoints_2d"] = rng.uniform(1, 100, 63).tolist() if hands else []
    return entry


def test_openpose_body25_with_face_and_hands_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    for f in range(3):
        people = [_person(rng, 25, True, True) for _ in range(2 if f else 1)]
        (tmp_path / f"clip_{f:04d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    keypoints = load_openpose(tmp_path, fps=25)
    assert (
        keypoints.skeleton == "body25"
        and keypoints.body.shape == (3, 2, 25, 3)
        and keypoints.extras.shape == (3, 2, 112, 3)
    )
    assert keypoints.body[0, 1].sum() == 0  # frame 0 has one person; the second slot is empty
    raw = json.loads((tmp_path / "clip_0001_keypoints.json").read_text())["people"][1]
    assert keypoints.body[1, 1].ravel() == pytest.approx(raw["pose_keypoints_2d"])
    assert keypoints.extras[1, 1, :70].ravel() == pytest.approx(raw["face_keypoints_2d"])
    assert keypoints.extras[1, 1, 91:].ravel() == pytest.approx(raw["hand_right_keypoints_2d"])
    convention = model_pb2.PoseConvention(skeleton="body25", face=True, hands=True, limb_width=2)
    frame = openpose_frame(to_convention(keypoints.body[1], keypoints.extras[1], convention), convention)
    assert frame["people"][1]["hand_left_keypoints_2d"] == pytest.approx(raw["hand_left_keypoints_2d"], abs=1e-3)


def test_openpose_coco18_maps_onto_the_canonical_body(tmp_path):
    rng = np.random.default_rng(1)
    person = _person(rng, 18, False, False)
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"people": [person]}))
    keypoints = load_openpose(path)
    raw = np.asarray(person["pose_keypoints_2d"]).reshape(18, 3)
    body = keypoints.body[0, 0]
    assert keypoints.skeleton == "coco18"
    assert body[INDEX["r_hip"]] == pytest.approx(raw[8]) and body[INDEX["l_ear"]] == pytest.approx(raw[17])
    assert body[INDEX["mid_hip"], :2] == pytest.approx((raw[8, :2] + raw[11, :2]) / 2)
    assert (body[[INDEX[n] for n in NAMES if "toe" in n or "heel" in n], 2] == 0).all()
    coco = model_pb2.PoseConvention(skeleton="coco18", limb_width=2)
    assert to_convention(keypoints.body[0], keypoints.extras[0], coco)[0] == pytest.approx(raw)


def test_openpose_wrong_length_is_named(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": [0.0] * 74}]}))
    with pytest.raises(
        MotionFormatError, match=r"people\[0\].pose_keypoints_2d has 74 numbers; expected 75 \(BODY_25\) or 54"
    ):
        load_openpose(path)


def test_mediapipe_33_points_map_onto_the_canonical_body(tmp_path):
    rng = np.random.default_rng(2)
    image = np.c_[rng.uniform(0, 100, (33, 3)), np.ones(33)]
    world = np.c_[rng.normal(0, 0.3, (33, 3)), np.ones(33)]
    data = {
        "format": "mediapipe_pose_33",
        "width": 100,
        "height": 80,
        "fps": 25,
        "frames": [{"image": image.tolist(), "world": world.tolist()}, {"image": None, "world": None}],
    }
    path = tmp_path / "mp.json"
    path.write_text(json.dumps(data))
    keypoints, pose3d = load_mediapipe(path)
    body = keypoints.body[0, 0]
    assert keypoints.size == (80, 100) and keypoints.fps == 25
    assert body[INDEX["nose"], :2] == pytest.approx(image[0, :2])
    assert body[INDEX["l_ankle"], :2] == pytest.approx(image[27, :2]) and body[INDEX["r_heel"], :2] == pytest.approx(
        image[30, :2]
    )
    assert body[INDEX["neck"], :2] == pytest.approx((image[11, :2] + image[12, :2]) / 2)
    assert body[INDEX["r_small_toe"], 2] == 0 and keypoints.body[1, 0, :, 2].max() == 0
    # World landmarks are y-down: the 3D pose turns them y-up.
    assert pose3d.points[0, INDEX["nose"]] == pytest.approx(world[0, :3] * [1, -1, -1])
