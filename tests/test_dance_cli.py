"""`neurender dance`: mocap retargeted, drawn in the bundled pose-body model's convention, rendered by a real
server (in-process, or one given by --server) into an mp4 of pose map | render."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from neurender.cli import main as cli_main

MOCAP = Path(__file__).parent / "data" / "mocap"
TARGET = Path(__file__).parents[1] / "retarget" / "data" / "deepmimic_humanoid.urdf"
MODELS = Path(__file__).parents[1] / "neurender" / "models"
FRAMES = 6
SIZE = 64


def _mp4_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _check_outputs(out: Path) -> None:
    video = _mp4_frames(out / "dance.mp4")
    assert len(video) == FRAMES
    assert video[0].shape == (SIZE, 2 * SIZE, 3)  # pose map | render
    frames = [cv2.imread(str(out / "frames" / f"{t:06d}.png"))[..., ::-1] for t in range(FRAMES)]
    poses = [cv2.imread(str(out / "pose" / f"{t:06d}.png"))[..., ::-1] for t in range(FRAMES)]
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)
    assert all(f.std() > 5 for f in frames), "a rendered frame is (nearly) one flat colour"
    assert all(p.any() for p in poses), "a pose map is empty"
    stack = np.stack(frames).astype(np.float64)
    assert np.abs(np.diff(stack, axis=0)).mean() > 0.1, "the rendered frames do not change with the motion"
    for t, (frame, pose) in enumerate(zip(stack, poses)):
        # The trained model draws the person where the limbs are: there the render stands out from its row's
        # typical colour (sky, floor) far more than under the same map shifted a quarter frame aside.
        deviation = np.abs(frame - np.median(frame, axis=1, keepdims=True)).max(-1)
        limbs = pose.any(-1)
        under, aside = deviation[limbs].mean(), deviation[np.roll(limbs, SIZE // 4, axis=1)].mean()
        assert under > 40 and under > 3 * aside, (
            f"frame {t}: no figure under the limbs ({under:.0f} vs {aside:.0f} aside)"
        )
    assert (out / "contact_sheet.png").exists()
    summary = json.loads((out / "dance.json").read_text())
    assert summary["frames"] == FRAMES and summary["size"] == [SIZE, SIZE]
    assert summary["pose_convention"]["skeleton"] == "body25"


def test_dance_in_process_server_with_the_bundled_model(tmp_path: Path) -> None:
    out = tmp_path / "dance"
    assert (
        cli_main(
            [
                "dance",
                "--motion",
                str(MOCAP / "humanoid3d_dance_a.txt"),
                "--target",
                str(TARGET),
                "--out",
                str(out),
                "--size",
                f"{SIZE}x{SIZE}",
                "--frames",
                str(FRAMES),
            ]
        )
        == 0
    )
    _check_outputs(out)
    assert json.loads((out / "dance.json").read_text())["model"] == "pose-body"


def test_dance_through_a_running_server(tmp_path: Path) -> None:
    from neurender.server.app import ServerThread
    from neurender.server.config import ServerConfig
    from neurender.server.registry import load_registry

    config = ServerConfig(address="127.0.0.1:0", metrics_port=None, log_format="text", max_wait_ms=0.0)
    out = tmp_path / "dance"
    with ServerThread(load_registry(MODELS / "pose-body", config), config) as server:
        assert (
            cli_main(
                [
                    "dance",
                    "--motion",
                    str(MOCAP / "cmu_01_01.bvh"),
                    "--target",
                    str(TARGET),
                    "--out",
                    str(out),
                    "--server",
                    server.address,
                    "--model",
                    "pose-body",
                    "--size",
                    f"{SIZE}x{SIZE}",
                    "--frames",
                    str(FRAMES),
                    "--fps",
                    "10",
                ]
            )
            == 0
        )
    _check_outputs(out)
    assert json.loads((out / "dance.json").read_text())["server"] == server.address


def test_dance_names_a_missing_motion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no_such_clip.bvh"
    assert cli_main(["dance", "--motion", str(missing), "--target", str(TARGET), "--out", str(tmp_path / "o")]) == 2
    assert f"motion {missing} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o" / "dance.mp4").exists()


def test_dance_refuses_a_model_that_is_not_a_pose_model(
    tmp_path: Path, tiny_bundle_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli_main(
            [
                "dance",
                "--motion",
                str(MOCAP / "humanoid3d_walk.txt"),
                "--target",
                str(TARGET),
                "--out",
                str(tmp_path / "o"),
                "--model",
                str(tiny_bundle_dir),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "is not a pose model (modality SEGMENTATION)" in err and "POSE" in err


def test_dance_names_an_unknown_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli_main(
            [
                "dance",
                "--motion",
                str(MOCAP / "humanoid3d_walk.txt"),
                "--target",
                str(TARGET),
                "--out",
                str(tmp_path / "o"),
                "--model",
                "no-such-model",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "'no-such-model'" in err and "pose-body" in err
