"""Export a trained checkpoint to a bundle and evaluate it through ONNX Runtime; the metrics themselves."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from neurender.cli import main
from neurender.proto.bundle import read_bundle
from neurender.server.step_runner import SessionRunner
from neurender.tests.train_support import tiny_train_config, write_moving_shapes
from neurender.training.dataset import ClipDataset
from neurender.training.evaluate import EvalOptions, evaluate
from neurender.training.export import export_checkpoint
from neurender.training.metrics import gradient_magnitude, non_occluded, optical_flow, sequence_metrics, warp_image
from neurender.training.model.encoding import float_to_frames
from neurender.training.run import train

SCHEDULE = {"epochs": 1, "iters_per_epoch": 3, "decay_epochs": 0, "clip_length": 3}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_shapes(tmp_path_factory.mktemp("shapes"), sequences=3, frames=8, size=32, instances=True)


def test_export_then_evaluate_round_trip(shapes: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = tiny_train_config(
        shapes,
        tmp_path / "run",
        schedule=SCHEDULE,
        data={"holdout": ["seq02"]},
        generator={"preset": "tiny", "ngf": 8, "n_blocks": 2, "num_classes": 5},
    )
    trainer = train(cfg)
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "bundle"), "--name", "shapes"]) == 0
    bundle = read_bundle(tmp_path / "bundle")
    d = bundle.description
    assert d.name == "shapes" and d.history_length == 2 and bundle.torch_path is not None
    assert [(c.id, c.name) for c in d.classes][:3] == [(0, "class0"), (1, "class1"), (2, "class2")]
    assert [c.name for c in d.classes][3:] == ["unused_3", "unused_4"]  # the generator's extra IDs
    assert (d.trained_height, d.trained_width) == (32, 32)
    assert d.provenance["weights"] == "ema"

    # the exported graph under ONNX Runtime makes the frames the trainer's EMA generator makes
    clips = ClipDataset(trainer.dataset, 4, None, False, 0)
    batch = torch.utils.data.default_collate([clips[0]])
    expected = [float_to_frames(f)[0].numpy() for f in trainer.generate(batch, use_ema=True)]
    runner = SessionRunner.open(tmp_path / "bundle", 32, 32, threads=1)
    # (the server's CPU graph rounds differently from eager torch by at most 1 per step; the history carries that
    # into later frames, so those are held to a small mean instead)
    for t in range(4):
        rgb = runner.step(labels=batch["labels"][0, t].numpy().astype(np.uint8))
        diff = np.abs(rgb.astype(int) - expected[t].astype(int))
        assert (diff.max() <= 1) if t == 0 else (diff.mean() < 0.5 and diff.max() <= 8), (
            f"frame {t}: {diff.max()}, {diff.mean()}"
        )

    report = evaluate(tmp_path / "bundle", shapes, tmp_path / "eval", EvalOptions(sequences=("seq02",), threads=1))
    overall = report["overall"]
    for key in ("psnr", "ssim", "e_warp", "e_warp_real", "tof", "sharpness_ratio"):
        assert np.isfinite(overall[key]), key
    assert report["sequences"] == ["seq02"] and report["frames"] == {"seq02": 8}
    assert overall["e_warp_real"] < 1e-6  # integer motion warps the real frames exactly
    assert "off" in report["learned_metrics"]["lpips"] and "nothing is downloaded" in report["learned_metrics"]["fid"]
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["overall"] == overall
    sheet = cv2.imread(str(tmp_path / "eval" / "contact_sheet.png"))
    assert sheet.shape[0] > 3 * 32 and sheet.shape[1] >= 3 * 32  # rows of labels | output | real


def test_style_model_exports_per_class_clusters(shapes: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = tiny_train_config(
        shapes,
        tmp_path / "run",
        schedule={**SCHEDULE, "iters_per_epoch": 1},
        generator={"preset": "tiny", "ngf": 8, "n_blocks": 2, "num_classes": 3, "style_dim": 2},
        encoder={"n_downsample": 2},
    )
    train(cfg)
    bundle = export_checkpoint(tmp_path / "run", tmp_path / "bundle", n_clusters=2)
    style = bundle.description.style
    assert style.style_dim == 2
    clusters = {c.class_id: c for c in style.clusters}
    assert sorted(clusters) == [0, 1, 2]
    assert all(1 <= c.n_clusters <= 2 and len(c.centres) == 2 * c.n_clusters for c in clusters.values())
    runner = SessionRunner.open(bundle.path, 32, 32, threads=1)
    assert runner.spec.style.shape == (3, 2) and np.abs(runner.spec.style).sum() > 0
    assert runner.step(labels=np.zeros((32, 32), np.uint8)).shape == (32, 32, 3)


def test_evaluate_refuses_a_dataset_of_another_modality(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from neurender.training.model.bundle_export import BundleInfo, export_bundle
    from neurender.training.model.config import PRESETS
    from neurender.training.model.generator import Vid2VidGenerator

    export_bundle(
        Vid2VidGenerator(PRESETS["tiny-edges"]), tmp_path / "edges", BundleInfo(name="edges"), include_torch=False
    )
    assert main(["evaluate", str(tmp_path / "edges"), str(shapes), "--out", str(tmp_path / "e")]) == 2
    assert "the dataset's modality is segmentation, the bundle's is edges" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "edges"), str(shapes), "--frames", "x"]) == 2
    assert "expected FIRST:END" in capsys.readouterr().err


def test_warp_error_and_occlusion_mask_on_known_motion() -> None:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3)).astype(np.uint8), (5, 5), 1.5)
    frames = [np.roll(base, shift=2 * t, axis=1) for t in range(4)]  # content moves right 2 px per frame
    backward = np.zeros((48, 64, 2), np.float32)
    backward[..., 0] = -2.0
    forward = -backward
    mask = non_occluded(backward, forward)
    assert not mask[:, :2].any() and mask[:, 2:].all()  # the first columns came from outside the frame
    assert np.array_equal(warp_image(frames[0], backward)[:, 2:], frames[1][:, 2:])
    flow = optical_flow(frames[1], frames[0])
    assert abs(float(np.median(flow[8:-8, 8:-8, 0])) + 2.0) < 0.25
    flows = [None] + [backward] * 3
    truth = sequence_metrics(frames, frames, flows, [None] * 4)
    assert truth["e_warp"] == truth["e_warp_real"] < 1e-6 and truth["psnr"] == float("inf") and truth["tof"] < 0.5
    frozen = sequence_metrics([frames[0]] * 4, frames, flows, [None] * 4)  # a still image does not follow the motion
    assert frozen["e_warp"] > 100 * truth["e_warp"] + 1e-4 and frozen["tof"] > 1.0
    blurred = [cv2.GaussianBlur(f, (7, 7), 3) for f in frames]
    assert sequence_metrics(blurred, frames, flows, [None] * 4)["sharpness_ratio"] < 0.7
    assert gradient_magnitude(np.zeros((8, 8, 3), np.uint8)) == 0.0


def _untrained_tiny(path: Path, **info: object) -> Path:
    from neurender.training.model.bundle_export import BundleInfo, export_bundle
    from neurender.training.model.config import PRESETS
    from neurender.training.model.generator import Vid2VidGenerator

    torch.manual_seed(0)
    export_bundle(Vid2VidGenerator(PRESETS["tiny"]), path, BundleInfo(name="tiny", **info), include_torch=False)
    return path


def test_evaluate_takes_a_negative_frame_range_as_written_in_the_configs(shapes: Path, tmp_path: Path) -> None:
    bundle = _untrained_tiny(tmp_path / "tiny")
    assert (
        main(["evaluate", str(bundle), str(shapes), "--out", str(tmp_path / "e"), "--frames", "-3:0", "--threads", "1"])
        == 0
    )
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["frames"] == {"seq00": 3, "seq01": 3, "seq02": 3}


def test_evaluate_and_synth_refuse_frame_sizes_at_the_start(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bundle = _untrained_tiny(tmp_path / "small", max_size=(16, 16))  # the shapes dataset is 32x32
    assert main(["evaluate", str(bundle), str(shapes), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert f"{shapes}: frames 32x32 cannot be rendered by bundle {bundle}: frame size 32x32 (HxW) is outside" in err
    assert not (tmp_path / "e").exists()
    for size in ("130x128", "4x4"):
        assert main(["dataset", "synth", "--out", str(tmp_path / size), "--size", size]) == 2
        assert (
            f"--size {size}: a model trained on it could not render it: frame sides must be multiples of 4, at least 8"
            in capsys.readouterr().err
        )
        assert not (tmp_path / size).exists()
    assert main(["dataset", "dance-synth", "--out", str(tmp_path / "d"), "--size", "33x32"]) == 2
    assert "--size 33x32: a model trained on it" in capsys.readouterr().err
