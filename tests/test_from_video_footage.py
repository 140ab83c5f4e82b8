"""`dataset from-video` and pose extraction on real footage: people found or not, several people, large frames.

The MediaPipe tests need the pose environment (`make pose-env`, which CI builds strictly, so they run there)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from neurender.cli import main
from neurender.common.media import VideoWriter
from neurender.retarget.pose_extract import default_env_path, extract_poses, pose_env_ready
from neurender.training.dataset import open_dataset

VIDEO = Path(__file__).parent / "data" / "video"
BIKES = VIDEO / "bikes_105_135.mp4"
TWO_PEOPLE = VIDEO / "two_people.mp4"
CARPHONE = VIDEO / "carphone_pristine.mp4"
needs_pose_env = pytest.mark.skipif(
    not pose_env_ready(), reason=f"no MediaPipe environment at {default_env_path()}: run `make pose-env`"
)


@needs_pose_env
def test_pose_dataset_from_street_footage_counts_frames_without_a_person(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "ds"
    assert (
        main(
            [
                "dataset",
                "from-video",
                str(BIKES),
                "--out",
                str(out),
                "--modality",
                "pose",
                "--max-side",
                "320",
                "--frames",
                "20",
            ]
        )
        == 0
    )
    meta = open_dataset(out).meta
    assert meta.size == (136, 320)  # 272x640 scaled to a longer side of 320, sides multiples of 4
    files = sorted((out / "bikes_105_135" / "poses").glob("*.json"))
    people = [json.loads(f.read_text())["people"] for f in files]
    nobody = sum(not p for p in people)
    assert len(files) == 20 and meta.extra["source"]["frames_without_person"] == nobody
    assert f"20 pose pairs at 136x320, 25 fps, {nobody} of them with nobody detected" in capsys.readouterr().out
    assert nobody < 5 and all(len(p) == 1 for p in people if p)  # one tracked person per frame
    points = np.array([person for frame in people for person in frame])
    seen = points[..., 2] > 0
    assert (points[seen][:, 0] < 320).all() and (points[seen][:, 1] < 136).all() and (points[seen][:, :2] >= 0).all()
    assert "20 frames, about" in caplog.text and "MB and at least" in caplog.text


@needs_pose_env
def test_footage_with_nobody_in_it_is_refused_by_name(tmp_path, capsys):
    empty = tmp_path / "empty_street.mp4"
    with VideoWriter(empty, fps=25) as video:
        for t in range(5):
            video.write(np.full((96, 128, 3), 90 + 10 * t, np.uint8))
    assert main(["dataset", "from-video", str(empty), "--out", str(tmp_path / "ds"), "--modality", "pose"]) == 2
    assert (
        f"{empty}: nobody was detected in any frame; a pose dataset needs a person in view" in capsys.readouterr().err
    )
    assert not (tmp_path / "ds" / "dataset.json").exists()


@needs_pose_env
def test_several_people_each_make_one_stable_track(tmp_path):
    """two_people.mp4: the carphone man (left, 332 px wide, the larger box) beside the bikes cyclist (right)."""
    tracks = []
    for person in (0, 1):
        keypoints, _ = extract_poses(TWO_PEOPLE, tmp_path / f"p{person}.json", max_frames=20, person=person)
        boxes = [f.get("box") for f in json.loads((tmp_path / f"p{person}.json").read_text())["frames"]]
        found = [b for b in boxes if b is not None]
        assert len(found) >= 18 and keypoints.body.shape[:2] == (20, 1)
        tracks.append(np.array([[0.5 * (b[0] + b[2]), 0.5 * (b[1] + b[3])] for b in found]))
    assert (tracks[0][:, 0] < 332).all() and (tracks[1][:, 0] > 332).all()
    for centres in tracks:  # no sideways jump from frame to frame (boxes grow and shrink as limbs show)
        assert np.abs(np.diff(centres[:, 0])).max() < 20


def test_not_a_video_and_sizes_are_refused_at_the_start(tmp_path, capsys):
    fake = tmp_path / "holiday.mp4"
    fake.write_text("this is not a video\n")
    for modality in ("edges", "pose"):
        assert main(["dataset", "from-video", str(fake), "--out", str(tmp_path / "ds"), "--modality", modality]) == 2
        assert f"{fake}: not a video FFmpeg can read" in capsys.readouterr().err
    assert (
        main(
            [
                "dataset",
                "from-video",
                str(CARPHONE),
                "--out",
                str(tmp_path / "ds"),
                "--modality",
                "edges",
                "--size",
                "66x64",
            ]
        )
        == 2
    )
    assert "--size 66x64: a model trained on it could not render it" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_size_covers_and_centre_crops_keeping_the_aspect(tmp_path):
    import av

    out = tmp_path / "ds"
    assert (
        main(
            [
                "dataset",
                "from-video",
                str(CARPHONE),
                "--out",
                str(out),
                "--modality",
                "edges",
                "--frames",
                "2",
                "--size",
                "64x64",
            ]
        )
        == 0
    )
    written = open_dataset(out).sequences[0].frame(0)["image"]
    with av.open(str(CARPHONE)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")  # 144x176
    import cv2

    scaled = cv2.resize(first, (78, 64), interpolation=cv2.INTER_AREA)  # covers 64x64: 176 * 64 / 144 = 78
    assert written.shape == (64, 64, 3)
    assert np.abs(written.astype(int) - scaled[:, 7:71].astype(int)).mean() < 2  # the centre, not a squeeze


def test_full_size_footage_is_written_with_a_warning_and_an_estimate(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    assert (
        main(
            ["dataset", "from-video", str(BIKES), "--out", str(tmp_path / "ds"), "--modality", "edges", "--frames", "2"]
        )
        == 0
    )
    assert "writing full-size 272x640 frames (flow alone is 0.7 MB a frame); --max-side or --size" in caplog.text
    assert "2 frames, about" in caplog.text
    assert open_dataset(tmp_path / "ds").meta.size == (272, 640)
