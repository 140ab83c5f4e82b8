"""The paired dataset format: validator, clip loader, synth (real renderer) and from-video (real footage)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurender.cli import main as cli_main
from neurender.proto.classes import ClassInfo
from neurender.training.dataset import ClipDataset, DatasetError, DatasetMeta, SequenceWriter, open_dataset, write_meta
from neurender.training.dataset_check import check_dataset

CARPHONE = Path(__file__).resolve().parent / "data" / "video" / "carphone_pristine.mp4"  # copied with its provenance
CLASSES = (ClassInfo(0, "sky", (0, 0, 0)), ClassInfo(1, "road", (128, 64, 128)), ClassInfo(2, "car", (0, 0, 142)))
H, W = 24, 32


def coordinate_dataset(root: Path, frames: int = 5) -> Path:
    """One sequence whose pixels encode where they are: image R = x, G = y, B = 10 * frame; labels = x % 3;
    motion = (1, 2) everywhere. Lets a test see exactly which crop and flip a clip got."""
    write_meta(root, DatasetMeta("segmentation", CLASSES, 10.0, (H, W)))
    writer = SequenceWriter(root, "seq")
    y, x = np.mgrid[0:H, 0:W]
    for t in range(frames):
        image = np.stack([x, y, np.full_like(x, 10 * t)], axis=-1).astype(np.uint8)
        writer.write(
            t,
            images=image,
            labels=(x % 3).astype(np.uint8),
            instances=(x * 100).astype(np.uint16),
            motion=np.broadcast_to(np.array([1.0, 2.0]), (H, W, 2)),
            depth=np.full((H, W), np.inf),
            flow_valid=np.full((H, W), 255, np.uint8),
        )
    return root


def test_reader_returns_the_stored_passes(tmp_path):
    ds = open_dataset(coordinate_dataset(tmp_path))
    assert ds.meta.size == (H, W) and ds.meta.num_classes == 3 and [s.name for s in ds.sequences] == ["seq"]
    frame = ds.sequences[0].frame(3)
    assert frame["image"][5, 7].tolist() == [7, 5, 30]
    assert (
        frame["labels"].dtype == np.uint8 and frame["instances"].dtype == np.uint16 and frame["instances"][0, 7] == 700
    )
    assert frame["motion"].dtype == np.float16 and np.isinf(frame["depth"]).all() and frame["flow_valid"].all()


def test_clip_loader_applies_one_crop_and_flip_to_the_whole_clip(tmp_path):
    clips = ClipDataset(open_dataset(coordinate_dataset(tmp_path)), clip_length=3, crop_size=(16, 20), seed=1)
    assert len(clips) == 3
    flips, offsets = set(), set()
    for epoch in range(4):
        clips.set_epoch(epoch)
        for i in range(len(clips)):
            item = clips[i]
            image = item["image"].numpy()
            assert image.shape == (3, 16, 20, 3) and item["labels"].shape == (3, 16, 20)
            assert (image[..., :2] == image[:1, ..., :2]).all(), "every frame of a clip has the same crop and flip"
            assert image[:, 0, 0, 2].tolist() == [10 * (clips.window(i)[1] + t) for t in range(3)]
            xs = image[0, 0, :, 0].astype(int)
            flipped = bool(xs[0] > xs[-1])
            assert np.abs(np.diff(xs)).tolist() == [1] * 19
            assert (item["labels"].numpy() == xs % 3).all() and (item["instances"].numpy() == xs * 100).all()
            motion = item["motion"].numpy()
            assert (motion[..., 0] == (-1.0 if flipped else 1.0)).all() and (motion[..., 1] == 2.0).all()
            flips.add(flipped)
            offsets.add((int(image[0, 0, 0, 1]), int(xs.min())))
    assert flips == {True, False} and len(offsets) > 3
    again = ClipDataset(open_dataset(tmp_path), clip_length=3, crop_size=(16, 20), seed=1)
    again.set_epoch(3)
    assert (again[1]["image"] == clips[1]["image"]).all(), "the same (seed, epoch, index) gives the same clip"


def test_validator_accepts_a_valid_dataset_and_names_every_problem(tmp_path):
    root = coordinate_dataset(tmp_path / "ds")
    assert check_dataset(root) == []
    seq = root / "seq"
    (seq / "labels" / "000002.png").unlink()  # missing frame
    SequenceWriter(root, "seq").write(3, labels=np.full((H, W), 7, np.uint8))  # unknown class ID
    SequenceWriter(root, "seq").write(1, instances=np.zeros((H + 2, W), np.uint16))  # size mismatch
    (seq / "images" / "000004.png").write_bytes(b"not a png")  # unreadable
    np.save(seq / "motion" / "000000.npy", np.zeros((H, W, 2), np.float32))  # wrong dtype
    problems = check_dataset(root)
    text = "\n".join(problems)
    assert "labels: missing frame(s) 000002" in text
    assert "labels/000003: class ID(s) [7] not in dataset.json's classes [0, 1, 2]" in text
    assert f"instances/000001: size {H + 2}x{W} (HxW), dataset.json says {H}x{W}" in text
    assert "images/000004.png: unreadable" in text
    assert "motion/000000: dtype float32, expected float16" in text
    assert len(problems) == 5, problems
    meta = json.loads((root / "dataset.json").read_text())
    del meta["fps"]
    meta["modality"] = "video"
    (root / "dataset.json").write_text(json.dumps(meta))
    text = "\n".join(check_dataset(root))
    assert "fps is None, expected a positive number" in text and "modality is 'video'" in text
    with pytest.raises(DatasetError, match="fps"):
        open_dataset(root)
    assert cli_main(["dataset", "check", str(root)]) == 1


def test_validator_names_a_missing_dataset_json_and_input_folder(tmp_path):
    root = coordinate_dataset(tmp_path / "ds", frames=2)
    (root / "dataset.json").unlink()
    for p in (root / "seq" / "labels").iterdir():
        p.unlink()
    (root / "seq" / "labels").rmdir()
    assert any("dataset.json: missing" in p for p in check_dataset(root))
    write_meta(root, DatasetMeta("segmentation", CLASSES, 10.0, (H, W)))
    assert any("no labels/ frames" in p for p in check_dataset(root))


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "ds"
    assert (
        cli_main(
            [
                "dataset",
                "synth",
                "--out",
                str(root),
                "--sequences",
                "2",
                "--frames",
                "4",
                "--size",
                "64x96",
                "--seed",
                "7",
            ]
        )
        == 0
    )
    return root


def test_synth_dataset_is_valid_and_deterministic_from_the_seed(synth_root, tmp_path):
    from neurender.training.synth import make_synth_dataset

    assert check_dataset(synth_root) == []
    ds = open_dataset(synth_root)
    assert [len(s) for s in ds.sequences] == [4, 4] and ds.meta.num_classes <= 12
    frame = ds.sequences[0].frame(2)
    assert {"image", "labels", "instances", "depth", "motion", "flow_valid"} <= set(frame)
    assert frame["image"].std() > 10 and len(np.unique(frame["labels"])) >= 4
    again = tmp_path / "again"
    make_synth_dataset(again, 2, 4, (64, 96), seed=7, progress=False)
    files = sorted(p.relative_to(synth_root) for p in synth_root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (synth_root / rel).read_bytes() == (again / rel).read_bytes(), f"{rel} differs between runs"
    other = tmp_path / "other"
    make_synth_dataset(other, 1, 1, (64, 96), seed=8, progress=False)
    assert (other / "street_0000/labels/000000.png").read_bytes() != (
        synth_root / "street_0000/labels/000000.png"
    ).read_bytes()
    assert cli_main(["dataset", "synth", "--out", str(synth_root), "--sequences", "1", "--frames", "1"]) == 2


def test_synth_motion_vectors_warp_labels(synth_root):
    ds = open_dataset(synth_root)
    for sequence in ds.sequences:
        for t in range(1, len(sequence)):
            prev, cur = sequence.frame(t - 1), sequence.frame(t)
            motion, valid = cur["motion"].astype(np.float32), cur["flow_valid"]
            h, w = valid.shape
            x = np.floor(np.arange(w)[None, :] + 0.5 + motion[..., 0]).astype(int)
            y = np.floor(np.arange(h)[:, None] + 0.5 + motion[..., 1]).astype(int)
            inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            mask = valid & inside
            assert mask.mean() > 0.7
            warped = prev["labels"][np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)]
            assert (warped[mask] == cur["labels"][mask]).mean() >= 0.99


def test_from_video_makes_edges_and_flow_from_real_footage(tmp_path):
    out = tmp_path / "faces"
    assert (
        cli_main(
            [
                "dataset",
                "from-video",
                str(CARPHONE),
                "--out",
                str(out),
                "--modality",
                "edges",
                "--frames",
                "4",
                "--start",
                "10",
            ]
        )
        == 0
    )
    assert check_dataset(out) == []
    ds = open_dataset(out)
    assert ds.meta.modality == "edges" and ds.meta.size == (144, 176) and abs(ds.meta.fps - 29.97) < 0.01
    seq = ds.sequences[0]
    assert seq.name == "carphone_pristine" and len(seq) == 4
    frame = seq.frame(2)
    edges = frame["edges"]
    assert set(np.unique(edges).tolist()) == {0, 255} and 0.01 < (edges > 0).mean() < 0.5
    flow = frame["flow"].astype(np.float32)
    assert flow.shape == (144, 176, 2) and np.abs(flow).max() > 0.1 and frame["flow_valid"].mean() > 0.5
    assert not seq.frame(0)["flow"].any() and not seq.frame(0)["flow_valid"].any()
    # The flow explains the motion: warping frame t-1 by it is closer to frame t than frame t-1 itself is.
    import cv2

    prev = seq.frame(1)["image"].astype(np.float32)
    cur = frame["image"].astype(np.float32)
    gx, gy = np.meshgrid(np.arange(176, dtype=np.float32), np.arange(144, dtype=np.float32))
    warped = cv2.remap(prev, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    valid = frame["flow_valid"]
    assert np.abs(warped - cur)[valid].mean() < np.abs(prev - cur)[valid].mean()
    clips = ClipDataset(ds, clip_length=2, crop_size=64)
    assert clips[0]["flow"].shape == (2, 64, 64, 2) and clips[0]["edges"].shape == (2, 64, 64)
    resized = tmp_path / "small"
    assert (
        cli_main(
            [
                "dataset",
                "from-video",
                str(CARPHONE),
                "--out",
                str(resized),
                "--modality",
                "edges",
                "--frames",
                "2",
                "--size",
                "64x80",
            ]
        )
        == 0
    )
    assert open_dataset(resized).sequences[0].frame(1)["edges"].shape == (64, 80)


def test_from_video_pose_without_an_extractor_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEURENDER_POSE_ENV", str(tmp_path / "no-such-env"))
    assert cli_main(["dataset", "from-video", str(CARPHONE), "--out", str(tmp_path / "p"), "--modality", "pose"]) == 2
    assert "needs the MediaPipe pose environment" in capsys.readouterr().err
    assert (
        cli_main(
            [
                "dataset",
                "from-video",
                str(tmp_path / "missing.mp4"),
                "--out",
                str(tmp_path / "q"),
                "--modality",
                "edges",
            ]
        )
        == 2
    )
