"""Skeletons of no known family, mapped by joint names: per naming, the CMU clip with its joints renamed as
that tool names them gives the CMU clip's canonical and retargeted poses."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from neurender.cli import main
from neurender.retarget.bvh import load_bvh
from neurender.retarget.canonical import FOOT_POINTS, load_joint_map, motion_to_canonical
from neurender.retarget.joint_names import GUESSED, guess_joint_map, joint_map_yaml
from neurender.retarget.retarget import Proportions, retarget

MOCAP = Path(__file__).parent / "data" / "mocap"
CMU = MOCAP / "cmu_01_01_extra_row.bvh"
EXAMPLES = Path(__file__).parents[1] / "retarget" / "data"
# CMU joint -> its name in each naming ({S}: the naming's side word for Left/Right). CMU joints not listed get
# neutral names (joint_7), so nothing but the naming itself can be recognised.
_LIMBS = ("Shoulder", "Arm", "ForeArm", "Hand", "UpLeg", "Leg", "Foot", "ToeBase")
NAMINGS: dict[str, tuple[tuple[str, str], dict[str, str]]] = {
    "humanik": (
        ("Left", "Right"),
        {"Hips": "Hips", "Spine": "Spine", "Neck": "Neck", "Head": "Head", **{f"Left{x}": f"{{S}}{x}" for x in _LIMBS}},
    ),
    "hips_ab_chest": (
        ("Left", "Right"),
        {
            "Hips": "Hips",
            "LowerBack": "Ab",
            "Spine1": "Chest",
            "Neck": "Neck",
            "Head": "Head",
            "LeftShoulder": "{S}Collar",
            "LeftArm": "{S}Shoulder",
            "LeftForeArm": "{S}Elbow",
            "LeftHand": "{S}Wrist",
            "LeftUpLeg": "{S}Hip",
            "LeftLeg": "{S}Knee",
            "LeftFoot": "{S}Ankle",
            "LeftToeBase": "{S}Toe",
        },
    ),
    "rokoko": (
        ("Left", "Right"),
        {
            "Hips": "Hips",
            "Spine": "Spine1",
            "Neck": "Neck",
            "Head": "Head",
            "LeftShoulder": "{S}Shoulder",
            "LeftArm": "{S}Arm",
            "LeftForeArm": "{S}ForeArm",
            "LeftHand": "{S}Hand",
            "LeftUpLeg": "{S}Thigh",
            "LeftLeg": "{S}Shin",
            "LeftFoot": "{S}Foot",
            "LeftToeBase": "{S}Toe",
        },
    ),
    "xsens_mvn": (
        ("Left", "Right"),
        {
            "Hips": "Pelvis",
            "LowerBack": "L5",
            "Spine": "L3",
            "Spine1": "T8",
            "Neck": "Neck",
            "Head": "Head",
            "LeftShoulder": "{S}Shoulder",
            "LeftArm": "{S}UpperArm",
            "LeftForeArm": "{S}ForeArm",
            "LeftHand": "{S}Hand",
            "LeftUpLeg": "{S}UpperLeg",
            "LeftLeg": "{S}LowerLeg",
            "LeftFoot": "{S}Foot",
            "LeftToeBase": "{S}Toe",
        },
    ),
    "optitrack_motive": (
        ("L", "R"),
        {
            "Hips": "Skeleton:Hip",
            "LowerBack": "Skeleton:Ab",
            "Spine1": "Skeleton:Chest",
            "Neck": "Skeleton:Neck",
            "Head": "Skeleton:Head",
            "LeftShoulder": "Skeleton:{S}Shoulder",
            "LeftArm": "Skeleton:{S}UArm",
            "LeftForeArm": "Skeleton:{S}FArm",
            "LeftHand": "Skeleton:{S}Hand",
            "LeftUpLeg": "Skeleton:{S}Thigh",
            "LeftLeg": "Skeleton:{S}Shin",
            "LeftFoot": "Skeleton:{S}Foot",
            "LeftToeBase": "Skeleton:{S}Toe",
        },
    ),
    "perception_neuron": (
        ("Left", "Right"),
        {
            "Hips": "Hips",
            "LowerBack": "Spine",
            "Spine": "Spine1",
            "Spine1": "Spine2",
            "Neck": "Neck",
            "Neck1": "Neck1",
            "Head": "Head",
            **{f"Left{x}": f"{{S}}{x}" for x in _LIMBS[:-1]},
        },
    ),  # no toes
    "blender_metarig": (
        ("L", "R"),
        {
            "Hips": "hips",
            "Spine": "spine",
            "Spine1": "chest",
            "Neck": "neck",
            "Head": "head",
            "LeftShoulder": "shoulder.{S}",
            "LeftArm": "upper_arm.{S}",
            "LeftForeArm": "forearm.{S}",
            "LeftHand": "hand.{S}",
            "LeftUpLeg": "thigh.{S}",
            "LeftLeg": "shin.{S}",
            "LeftFoot": "foot.{S}",
            "LeftToeBase": "toe.{S}",
        },
    ),
    "rigify_def": (
        ("L", "R"),
        {
            "Hips": "DEF-hips",
            "Spine": "DEF-spine",
            "Neck": "DEF-neck",
            "Head": "DEF-head",
            "LeftShoulder": "DEF-shoulder.{S}",
            "LeftArm": "DEF-upper_arm.{S}",
            "LeftForeArm": "DEF-forearm.{S}",
            "LeftHand": "DEF-hand.{S}",
            "LeftUpLeg": "DEF-thigh.{S}",
            "LeftLeg": "DEF-shin.{S}",
            "LeftFoot": "DEF-foot.{S}",
            "LeftToeBase": "DEF-toe.{S}",
        },
    ),
    "unreal_mannequin": (
        ("l", "r"),
        {
            "Hips": "pelvis",
            "LowerBack": "spine_01",
            "Spine": "spine_02",
            "Spine1": "spine_03",
            "Neck": "neck_01",
            "Head": "head",
            "LeftShoulder": "clavicle_{S}",
            "LeftArm": "upperarm_{S}",
            "LeftForeArm": "lowerarm_{S}",
            "LeftHand": "hand_{S}",
            "LeftUpLeg": "thigh_{S}",
            "LeftLeg": "calf_{S}",
            "LeftFoot": "foot_{S}",
            "LeftToeBase": "ball_{S}",
        },
    ),
    "max_biped": (
        ("L", "R"),
        {
            "Hips": "Bip01_Pelvis",
            "Spine": "Bip01_Spine",
            "Neck": "Bip01_Neck",
            "Head": "Bip01_Head",
            "LeftShoulder": "Bip01_{S}_Clavicle",
            "LeftArm": "Bip01_{S}_UpperArm",
            "LeftForeArm": "Bip01_{S}_Forearm",
            "LeftHand": "Bip01_{S}_Hand",
            "LeftUpLeg": "Bip01_{S}_Thigh",
            "LeftLeg": "Bip01_{S}_Calf",
            "LeftFoot": "Bip01_{S}_Foot",
            "LeftToeBase": "Bip01_{S}_Toe0",
        },
    ),
    "prefix_l_r": (
        ("l", "r"),
        {
            "Hips": "root",
            "Neck": "neck",
            "Head": "head",
            "LeftShoulder": "{S}_clavicle",
            "LeftArm": "{S}_shoulder",
            "LeftForeArm": "{S}_elbow",
            "LeftHand": "{S}_wrist",
            "LeftUpLeg": "{S}_hip",
            "LeftLeg": "{S}_knee",
            "LeftFoot": "{S}_ankle",
            "LeftToeBase": "{S}_toe",
        },
    ),
}


def renamed_bvh(naming: str, folder: Path) -> Path:
    (left, right), table = NAMINGS[naming]
    names = load_bvh(CMU).skeleton.names
    new = {}
    for index, name in enumerate(n for n in names if not n.endswith("_End")):
        key = name.replace("Right", "Left", 1) if name.startswith("Right") else name
        template = table.get(key)
        new[name] = (
            template.replace("{S}", right if name.startswith("Right") else left) if template else f"joint_{index}"
        )
    text = re.sub(r"^(\s*(?:ROOT|JOINT)\s+)(\S+)", lambda m: m.group(1) + new[m.group(2)], CMU.read_text(), flags=re.M)
    path = folder / f"{naming}.bvh"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def cmu_pose():
    return motion_to_canonical(load_bvh(CMU))


@pytest.mark.parametrize("naming", list(NAMINGS))
def test_each_naming_retargets_as_the_cmu_clip(naming, cmu_pose, tmp_path):
    motion = load_bvh(renamed_bvh(naming, tmp_path))
    assert guess_joint_map(motion.skeleton.names, motion.skeleton.parents).name == GUESSED
    pose = motion_to_canonical(motion)
    points = [p for p in range(25) if naming != "perception_neuron" or p not in FOOT_POINTS]
    np.testing.assert_allclose(pose.points[:, points], cmu_pose.points[:, points], atol=1e-9)
    target = Proportions.canonical()
    np.testing.assert_allclose(
        retarget(pose, target).points[:, points], retarget(cmu_pose, target).points[:, points], atol=1e-9
    )


@pytest.mark.parametrize(
    "naming", ["unreal_mannequin", "rokoko", "xsens_mvn", "optitrack_motive", "rigify_def", "hips_ab_chest"]
)
def test_print_joint_map_writes_the_shipped_example_and_it_loads_as_a_map(naming, tmp_path, capsys):
    bvh = renamed_bvh(naming, tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["retarget", "--print-joint-map", str(bvh)])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    shipped = yaml.safe_load((EXAMPLES / f"joint_map_{naming}.yaml").read_text())
    assert yaml.safe_load(printed) == shipped
    (tmp_path / "map.yaml").write_text(printed)
    pose = motion_to_canonical(load_bvh(bvh), load_joint_map(tmp_path / "map.yaml"))
    assert pose.points.shape[1] == 25


def test_print_joint_map_lists_what_it_could_not_find(tmp_path, capsys):
    bvh = tmp_path / "odd.bvh"
    text = renamed_bvh("humanik", tmp_path).read_text().replace("RightHand", "RightPaw")
    bvh.write_text(text)
    with pytest.raises(SystemExit):
        main(["retarget", "--print-joint-map", str(bvh)])
    printed = capsys.readouterr().out
    assert "# r_wrist: ?  (required: not found, name its joint)" in printed and "l_wrist: LeftHand" in printed
    assert (
        main(
            [
                "retarget",
                "--motion",
                str(bvh),
                "--target",
                str(MOCAP / "humanoid3d_walk.txt"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "unknown skeleton" in capsys.readouterr().err


def write_examples() -> None:
    """Regenerate the shipped example maps: python -m tests.test_retarget_joint_names"""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for naming in ("unreal_mannequin", "rokoko", "xsens_mvn", "optitrack_motive", "rigify_def", "hips_ab_chest"):
            skeleton = load_bvh(renamed_bvh(naming, Path(tmp))).skeleton
            text = joint_map_yaml(skeleton.names, skeleton.parents, f"the {naming} naming")
            (EXAMPLES / f"joint_map_{naming}.yaml").write_text(text)


if __name__ == "__main__":
    write_examples()
