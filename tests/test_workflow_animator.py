"""The animator's workflow, walked as a user types it: retarget a clip (a few frames, at the frame rate dance
uses), dance it through the bundled model, then run both again into the same folders."""

from __future__ import annotations

import json
from pathlib import Path

from neurender.cli import main

MOCAP = Path(__file__).parent / "data" / "mocap"
TARGET = Path(__file__).parents[1] / "retarget" / "data" / "deepmimic_humanoid.urdf"


def _pngs(folder: Path) -> int:
    return len(list(folder.glob("*.png")))


def test_retarget_then_dance_then_again(tmp_path: Path, capsys) -> None:
    clip = str(MOCAP / "humanoid3d_dance_a.txt")
    retargeted = tmp_path / "retargeted"
    assert (
        main(
            [
                "retarget",
                "--motion",
                clip,
                "--target",
                str(TARGET),
                "--out",
                str(retargeted),
                "--size",
                "64x64",
                "--frames",
                "5",
            ]
        )
        == 0
    )
    summary = json.loads((retargeted / "retarget.json").read_text())
    assert summary["frames"] == 5 and summary["fps"] == 30.0  # dance's rate, not the clip's own
    assert _pngs(retargeted / "pose") == 5
    assert main(["retarget", "--motion", clip, "--target", str(TARGET), "--out", str(retargeted), "--frames", "3"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (
        main(
            [
                "retarget",
                "--motion",
                clip,
                "--target",
                str(TARGET),
                "--out",
                str(retargeted),
                "--size",
                "64x64",
                "--frames",
                "3",
                "--overwrite",
            ]
        )
        == 0
    )
    assert _pngs(retargeted / "pose") == 3 and len(list((retargeted / "keypoints").iterdir())) == 3

    danced = tmp_path / "danced"
    common = ["dance", "--motion", clip, "--target", str(TARGET), "--out", str(danced), "--size", "64x64"]
    assert main([*common, "--frames", "4"]) == 0
    assert _pngs(danced / "frames") == 4 and _pngs(danced / "pose") == 4
    assert main([*common, "--frames", "2"]) == 2
    assert "already holds" in capsys.readouterr().err
    assert main([*common, "--frames", "2", "--overwrite"]) == 0
    assert _pngs(danced / "frames") == 2 and _pngs(danced / "pose") == 2
