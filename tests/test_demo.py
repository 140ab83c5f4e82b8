"""`neurender demo`, the main job, end to end at a small size with the bundled demo model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np

from neurender.demo import DEMO_MODEL
from neurender.proto.bundle import read_bundle


def test_bundled_demo_model_is_valid_and_small() -> None:
    bundle = read_bundle(DEMO_MODEL)
    assert bundle.onnx_path.stat().st_size <= 20 * 1024 * 1024
    # Reproducible by one documented command: the recipe it names is committed.
    recipe = (
        Path(__file__).resolve().parents[1]
        / "training"
        / "configs"
        / f"{bundle.description.provenance['training_config']}.yaml"
    )
    assert recipe.exists() and "neurender train --config" in recipe.read_text()


def test_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "neurender.cli", "demo", "--out", str(out), "--frames", "6", "--size", "64x96"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with av.open(str(out / "demo.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (64, 192, 3)  # labels | neural render
    neural = [cv2.imread(str(p)) for p in sorted((out / "frames").glob("*.png"))]
    assert len(neural) == 6 and all(f.shape == (64, 96, 3) for f in neural)
    assert not np.array_equal(neural[0], neural[-1]), "the camera moves: frames must differ"
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] == 2 * 64 + 2
    timing = json.loads((out / "timing.json").read_text())
    assert timing["frames"] == 6 and timing["wall_fps"] > 0 and timing["server_inference_ms"] > 0
    assert "frames/s end to end" in result.stdout


def test_demo_refuses_a_bad_model_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "neurender.cli", "demo", "--model", str(tmp_path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "missing model.json" in result.stderr
