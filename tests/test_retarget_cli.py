"""`neurender retarget` end to end on the real mocap: files written, drawn as the keypoints say, errors."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import pytest

from neurender.cli import main
from neurender.proto.bundle import write_bundle
from neurender.proto.neurender.v1 import model_pb2, tensor_pb2
from neurender.retarget.draw import draw_pose_map
from neurender.retarget.keypoints_io import load_openpose, to_convention
from neurender.retarget.normalize import placement_stats

MOCAP = Path(__file__).parent / "data" / "mocap"


@pytest.fixture(scope="module")
def walk_on_cmu(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("walk_on_cmu")
    code = main(
        [
            "retarget",
            "--motion",
            str(MOCAP / "humanoid3d_walk.txt"),
            "--target",
            str(MOCAP / "cmu_01_01.bvh"),
            "--out",
            str(out),
            "--size",
            "96x64",
            "--part-maps",
        ]
    )
    assert code == 0
    return out


def test_retarget_writes_pose_maps_keypoints_video_and_sheet(walk_on_cmu):
    out = walk_on_cmu
    pngs = sorted((out / "pose").glob("*.png"))
    # 39 clip frames 0.033332 s apart, resampled to the default 30 fps: 38 frames
    assert len(pngs) == 38 and len(list((out / "keypoints").glob("*_keypoints.json"))) == 38
    assert len(list((out / "parts").glob("*.png"))) == 38
    summary = json.loads((out / "retarget.json").read_text())
    assert summary["frames"] == 38 and summary["height"] == 96 and summary["width"] == 64
    assert summary["fps"] == pytest.approx(30.0, rel=1e-3) and summary["pose_convention"]["skeleton"] == "body25"
    with av.open(str(out / "preview.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 38 and frames[0].shape == (96, 64, 3)
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet.shape == (4 * 96 + 3 * 2, 4 * 64 + 3 * 2, 3)  # 4x4 tiles, 2-pixel gaps
    # The PNGs are what the one drawing function makes of the keypoints written beside them.
    convention = model_pb2.PoseConvention(skeleton="body25", limb_width=3)
    keypoints = load_openpose(out / "keypoints")
    for f in (0, 20, 37):
        png = cv2.cvtColor(cv2.imread(str(pngs[f])), cv2.COLOR_BGR2RGB)
        drawn = draw_pose_map(to_convention(keypoints.body[f], keypoints.extras[f], convention), 96, 64, convention)
        assert png.any() and (png != drawn).any(axis=-1).mean() < 0.005  # JSON keeps 3 decimals


def test_retarget_onto_a_target_seen_in_footage_places_the_motion_where_they_stand(walk_on_cmu, tmp_path):
    # The first run's keypoints play the target's footage (OpenPose JSON of a person in a 96x64 frame).
    code = main(
        [
            "retarget",
            "--motion",
            str(MOCAP / "humanoid3d_dance_a.txt"),
            "--target",
            str(walk_on_cmu / "keypoints"),
            "--out",
            str(tmp_path),
            "--skeleton",
            "coco18",
            "--limb-width",
            "2",
            "--smooth",
            "one-euro",
            "--size",
            "96x64",
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "retarget.json").read_text())
    assert summary["placed_as_target_footage"] and summary["frames"] == 49  # the 60 fps clip at the default 30 fps
    target = placement_stats(load_openpose(walk_on_cmu / "keypoints").body[:, 0])
    result = load_openpose(tmp_path / "keypoints")
    assert result.skeleton == "coco18"
    # COCO-18 has no feet or mid-hip; the ankles it has are placed where the target's were.
    placed = placement_stats(result.body[:, 0])
    assert placed.far_ankle == pytest.approx(target.far_ankle, abs=3.0)
    assert placed.near_ankle == pytest.approx(target.near_ankle, abs=3.0)


def test_retarget_uses_a_bundles_pose_convention(tmp_path):
    description = model_pb2.ModelDescription(
        schema_version=1,
        name="pose-test",
        modality=model_pb2.POSE,
        history_length=2,
        colour_space="sRGB",
        trained_height=48,
        trained_width=40,
        pose=model_pb2.PoseConvention(skeleton="coco18", limb_width=1),
        frame_size=model_pb2.FrameSizeRule(min_height=8, min_width=8, max_height=512, max_width=512, multiple_of=8),
    )
    description.inputs.add(name="pose_map", dtype=tensor_pb2.UINT8, shape=[-1, -1, 3], required=True)
    write_bundle(tmp_path / "bundle", description, b"placeholder: retarget reads model.json only")
    out = tmp_path / "out"
    assert (
        main(
            [
                "retarget",
                "--motion",
                str(MOCAP / "humanoid3d_walk.txt"),
                "--target",
                str(MOCAP / "humanoid3d_dance_a.txt"),
                "--out",
                str(out),
                "--bundle",
                str(tmp_path / "bundle"),
                "--fps",
                "10",
            ]
        )
        == 0
    )
    summary = json.loads((out / "retarget.json").read_text())
    assert summary["pose_convention"] == {"skeleton": "coco18", "face": False, "hands": False, "limb_width": 1}
    assert (summary["height"], summary["width"]) == (48, 40) and summary["frames"] == 13
    frame = json.loads((out / "keypoints" / "000000_keypoints.json").read_text())
    assert len(frame["people"][0]["pose_keypoints_2d"]) == 54


UNKNOWN_BVH = """HIERARCHY
ROOT pelvis_bone
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT thigh_bone
  {
    OFFSET 1 -1 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 -4 0
    }
  }
}
MOTION
Frames: 1
Frame Time: 0.0333333
0 0 0 0 0 0 0 0 0
"""


def test_cli_errors_name_the_joint_or_the_line(tmp_path, capsys):
    unknown = tmp_path / "unknown.bvh"
    unknown.write_text(UNKNOWN_BVH)
    target = str(MOCAP / "humanoid3d_walk.txt")
    assert main(["retarget", "--motion", str(unknown), "--target", target, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert (
        "unknown skeleton (joints: pelvis_bone, thigh_bone" in err
        and "r_shoulder (expected" in err
        and "l_ankle" in err
    )

    truncated = tmp_path / "truncated.bvh"
    truncated.write_text("\n".join(UNKNOWN_BVH.splitlines()[:-1]).replace("Frames: 1", "Frames: 2") + "\n0 0 0\n")
    assert main(["retarget", "--motion", str(truncated), "--target", target, "--out", str(tmp_path / "b")]) == 2
    assert (
        "truncated.bvh, line 19: truncated: the header announces 2 frames but the data ends after 1"
        in capsys.readouterr().err
    )

    assert (
        main(["retarget", "--motion", str(tmp_path / "missing.bvh"), "--target", target, "--out", str(tmp_path / "c")])
        == 2
    )
    assert "missing.bvh does not exist" in capsys.readouterr().err

    joint_map = tmp_path / "map.yaml"
    joint_map.write_text("head: pelvis_bone\njoints:\n  r_hip: thigh_bone\n  r_knee: knee_bone\n")
    assert (
        main(
            [
                "retarget",
                "--motion",
                str(unknown),
                "--map",
                str(joint_map),
                "--target",
                target,
                "--out",
                str(tmp_path / "d"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        "joint map 'map' names joints the skeleton lacks" in err
        and "r_knee (expected knee_bone)" in err
        and "r_shoulder (not in the map)" in err
    )
