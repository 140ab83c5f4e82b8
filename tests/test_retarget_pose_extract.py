"""Pose extraction from real footage with MediaPipe, run in its own environment behind a subprocess.

Needs the pose environment (`make pose-env` or `neurender pose-env`: mediapipe==0.10.14 with numpy<2 and
protobuf<5, which cannot live in neurender's environment); skips with that reason when it is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from neurender.retarget.canonical import INDEX
from neurender.retarget.pose_extract import PoseEnvError, default_env_path, extract_poses, pose_env_ready

VIDEO = Path(__file__).parent / "data" / "video" / "carphone_pristine.mp4"


def test_mediapipe_never_loads_in_this_environment():
    import neurender.retarget.pipeline  # noqa: F401  (everything that extracts poses)

    assert "mediapipe" not in sys.modules


def test_missing_environment_says_how_to_make_it(tmp_path):
    with pytest.raises(PoseEnvError, match="create it with `neurender pose-env`"):
        extract_poses(VIDEO, env=tmp_path / "no-env")


@pytest.mark.skipif(
    not pose_env_ready(), reason=f"no MediaPipe environment at {default_env_path()}: run `make pose-env`"
)
def test_extracts_the_talking_head_pose_from_real_footage(tmp_path):
    keypoints, pose3d = extract_poses(VIDEO, tmp_path / "poses.json", max_frames=8)
    assert (tmp_path / "poses.json").exists()
    assert keypoints.body.shape == (8, 1, 25, 3) and keypoints.size == (144, 176)
    assert keypoints.fps == pytest.approx(29.97, abs=0.01)
    body = keypoints.body[:, 0]
    for name in ("nose", "r_eye", "l_eye", "r_shoulder", "l_shoulder"):
        assert (body[:, INDEX[name], 2] > 0.5).all(), name
    # A man facing the camera: nose inside the frame, above the shoulders; his right shoulder on the image's left.
    nose, right, left = body[:, INDEX["nose"]], body[:, INDEX["r_shoulder"]], body[:, INDEX["l_shoulder"]]
    assert ((0 < nose[:, 0]) & (nose[:, 0] < 176) & (0 < nose[:, 1]) & (nose[:, 1] < 144)).all()
    assert (nose[:, 1] < right[:, 1]).all() and (right[:, 0] < nose[:, 0]).all() and (nose[:, 0] < left[:, 0]).all()
    assert pose3d is not None and np.isfinite(pose3d.points).all()


@pytest.mark.skipif(
    not pose_env_ready(), reason=f"no MediaPipe environment at {default_env_path()}: run `make pose-env`"
)
def test_retarget_onto_head_and_shoulders_footage_takes_its_size_and_frames_by_camera(tmp_path):
    import json

    from neurender.cli import main

    walk = Path(__file__).parent / "data" / "mocap" / "humanoid3d_walk.txt"
    assert (
        main(
            [
                "retarget",
                "--motion",
                str(walk),
                "--target",
                str(VIDEO),
                "--max-video-frames",
                "6",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "retarget.json").read_text())
    # No ankles in the footage: proportions from what shows, the frame size of the footage, camera framing.
    assert (summary["height"], summary["width"]) == (144, 176) and not summary["placed_as_target_footage"]
    assert summary["camera"] is not None and summary["frames"] == 38  # the walk (30.0012 fps) resampled to --fps 30
