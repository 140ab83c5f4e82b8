"""2D motion (keypoints, footage) onto a skeleton target lands in the output frame; mostly off-frame output is
refused instead of written as blank pose maps."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from neurender.cli import main
from neurender.retarget.pipeline import RetargetError, check_in_frame

DATA = Path(__file__).parent / "data"
CYCLIST = DATA / "keypoints" / "cyclist_816x1920"  # pixel coordinates of a 1920x816 frame
URDF = Path(__file__).parents[1] / "retarget" / "data" / "deepmimic_humanoid.urdf"


def test_large_frame_keypoints_onto_a_skeleton_fill_the_output_frame(tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(["retarget", "--motion", str(CYCLIST), "--target", str(URDF), "--out", str(out), "--size", "256x256"]) == 0
    )
    maps = sorted((out / "pose").glob("*.png"))
    assert len(maps) == 30
    drawn = [np.count_nonzero(cv2.imread(str(m)).any(axis=2)) / (256 * 256) for m in maps]
    assert min(drawn) > 0.01  # every map shows the person (they were 794 blank of 795 before)
    points = []
    for f in sorted((out / "keypoints").glob("*_keypoints.json")):
        for person in json.loads(f.read_text())["people"]:
            p = np.asarray(person["pose_keypoints_2d"]).reshape(-1, 3)
            points.append(p[p[:, 2] > 0, :2])
    points = np.concatenate(points)
    assert points.min() >= 0 and points[:, 0].max() < 256 and points[:, 1].max() < 256
    span = points.max(axis=0) - points.min(axis=0)
    assert span.max() > 0.8 * 256  # framed with a margin, not shrunk into a corner


def test_keypoints_showing_nobody_are_refused(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    for t in range(3):
        (empty / f"f_{t}_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [0.0] * 75}]}))
    assert main(["retarget", "--motion", str(empty), "--target", str(URDF), "--out", str(tmp_path / "o")]) == 2
    assert "the motion's keypoints show nobody in any frame" in capsys.readouterr().err
    assert not (tmp_path / "o" / "pose").exists()


def test_mostly_off_frame_pose_maps_are_refused():
    body = np.zeros((4, 25, 3))
    body[..., 2] = 1.0
    body[..., :2] = 100.0
    check_in_frame(body, (256, 256))  # all inside
    body[:3, :, 0] = 900.0  # three of four frames outside a 256-wide frame
    with pytest.raises(RetargetError, match=r"3 of 4 pose maps would be empty or mostly off the 256x256 frame"):
        check_in_frame(body, (256, 256))


def test_dance_renders_large_frame_keypoints_and_refuses_ones_showing_nobody(tmp_path, capsys):
    out = tmp_path / "dance"
    assert (
        main(
            [
                "dance",
                "--motion",
                str(CYCLIST),
                "--target",
                str(URDF),
                "--out",
                str(out),
                "--size",
                "64x64",
                "--frames",
                "3",
            ]
        )
        == 0
    )
    maps = sorted((out / "pose").glob("*.png"))
    assert len(maps) == 3 and all(cv2.imread(str(m)).any() for m in maps)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "f_0_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [0.0] * 75}]}))
    assert main(["dance", "--motion", str(empty), "--target", str(URDF), "--out", str(tmp_path / "d2")]) == 2
    assert "the motion's keypoints show nobody in any frame" in capsys.readouterr().err
