"""Commands given inputs they cannot use answer in one line naming the input and what was expected (exit 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurender.cli import main
from neurender.retarget.pose_extract import VIDEO_SUFFIXES
from tests.server_support import running_server

MOCAP = Path(__file__).parent / "data" / "mocap"
WALK = MOCAP / "humanoid3d_walk.txt"


def _retarget(motion: Path, out: Path, *extra: str) -> list[str]:
    return ["retarget", "--motion", str(motion), "--target", str(WALK), "--out", str(out), *extra]


@pytest.mark.parametrize("fps", ["-5", "0"])
def test_retarget_refuses_a_frame_rate_that_is_not_positive(fps, tmp_path, capsys):
    assert main(_retarget(WALK, tmp_path / "o", "--fps", fps)) == 2
    assert f"--fps {fps}: expected a positive frame rate" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_not_a_motion_file_lists_every_accepted_kind(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("just some text\n")
    assert main(_retarget(notes, tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert f"{notes}: not a motion file: expected" in err
    for kind in ("BVH", "DeepMimic", "SMPL-X", "OpenPose", "MediaPipe", "video", *VIDEO_SUFFIXES):
        assert kind in err, kind


def test_junk_npz_is_named_as_not_an_smplx_clip_before_asking_for_the_model(tmp_path, capsys):
    junk = tmp_path / "junk.npz"
    np.savez(junk, weights=np.zeros(3))
    assert main(_retarget(junk, tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "junk.npz: expected 'poses' [F, 165] or 'root_orient' + 'pose_body' (AMASS SMPL-X)" in err
    assert "--smplx-model" not in err
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    assert main(_retarget(garbage, tmp_path / "o")) == 2
    assert "garbage.npz: cannot read as an .npz archive" in capsys.readouterr().err


@pytest.fixture(scope="module")
def pose_server(tiny_pose_models_dir):
    with running_server(tiny_pose_models_dir) as running:
        yield running


def test_render_scene_refuses_a_pose_model_by_name(pose_server, tmp_path, capsys):
    assert (
        main(
            [
                "render-scene",
                "--server",
                pose_server.address,
                "--model",
                "tiny-pose",
                "--out",
                str(tmp_path / "s"),
                "--size",
                "32x32",
                "--frames",
                "1",
            ]
        )
        == 2
    )
    assert (
        "--model tiny-pose is a POSE model; render-scene sends the G-buffer's class IDs, so it needs a SEGMENTATION model"
        in capsys.readouterr().err
    )


def test_render_video_refuses_an_out_that_is_not_an_mp4_file(tmp_path, capsys):
    labels = tmp_path / "labels"
    labels.mkdir()
    import cv2

    cv2.imwrite(str(labels / "0000.png"), np.zeros((32, 32), np.uint8))
    (tmp_path / "folder").mkdir()
    for out, expected in (
        (tmp_path / "x.gif", "x.gif: render-video writes H.264 mp4 video; expected a file name ending in .mp4"),
        (tmp_path / "folder", "folder: is a folder; expected the path of an .mp4 file"),
        (f"{tmp_path}/new/", "new: render-video writes H.264 mp4 video; expected a file name ending"),
    ):
        # no server runs at this address: the output is refused before connecting
        assert main(["render-video", "--labels", str(labels), "--out", str(out), "--server", "127.0.0.1:9"]) == 2
        assert expected in capsys.readouterr().err
    assert not (tmp_path / "x.gif").exists() and not (tmp_path / "new").exists()
