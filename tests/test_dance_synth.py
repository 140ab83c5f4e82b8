"""`neurender dataset dance-synth`: the renderer's clothed body dancing mocap, written as pose pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurender.cli import main as cli_main

MOCAP = Path(__file__).parent / "data" / "mocap"
SIZE = 96


@pytest.fixture(scope="module")
def dance_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dance") / "data"
    code = cli_main(
        [
            "dataset",
            "dance-synth",
            "--out",
            str(out),
            "--motions",
            str(MOCAP / "humanoid3d_dance_a.txt"),
            str(MOCAP / "cmu_01_01.bvh"),
            "--sequences",
            "1",
            "--frames",
            "5",
            "--size",
            f"{SIZE}x{SIZE}",
            "--seed",
            "3",
        ]
    )
    assert code == 0
    return out


def test_dance_synth_writes_a_valid_pose_dataset(dance_dataset: Path) -> None:
    from neurender.training.dataset import open_dataset, pose_convention
    from neurender.training.dataset_check import check_dataset

    assert check_dataset(dance_dataset) == []
    ds = open_dataset(dance_dataset)
    assert ds.meta.modality == "pose" and ds.meta.size == (SIZE, SIZE)
    convention = pose_convention(ds.meta)
    assert (convention.skeleton, convention.face, convention.hands) == ("body25", False, False)
    assert [len(s) for s in ds.sequences] == [5, 5]
    assert sorted(s.name.rsplit("_", 1)[0] for s in ds.sequences) == ["cmu_01_01", "humanoid3d_dance_a"]
    assert {"images", "poses", "instances", "motion", "flow_valid"} <= set(ds.sequences[0].folders)


def test_trainer_input_is_draw_pose_map_of_the_keypoints(dance_dataset: Path) -> None:
    """What the trainer feeds the generator is the one drawing function's map of the stored keypoints, in the
    convention dataset.json names."""
    import torch

    from neurender.retarget.draw import draw_pose_map
    from neurender.training.clips import raw_labels
    from neurender.training.dataset import ClipDataset, open_dataset, pose_convention
    from neurender.training.model.config import PRESETS

    ds = open_dataset(dance_dataset)
    convention = pose_convention(ds.meta)
    clips = ClipDataset(ds, clip_length=3, crop_size=None, flip=False)
    item = clips[0]
    maps = raw_labels(PRESETS["tiny-pose"], {k: v[None] for k, v in item.items()}, convention)[0]
    sequence, start = clips.window(0)
    frames = [next(s for s in ds.sequences if s.name == sequence).frame(start + t) for t in range(3)]
    for t, frame in enumerate(frames):
        expected = draw_pose_map(frame["pose"], SIZE, SIZE, convention)
        assert expected.any()
        assert torch.equal(maps[t], torch.from_numpy(expected))


def test_images_show_the_body_where_the_pose_map_has_limbs(dance_dataset: Path) -> None:
    """Limbs are drawn 3 px wide, wider than a small figure's forearm, so masks grow by that line's half width
    (one pixel) before they are compared; the same map a quarter frame off is the control."""
    import cv2

    from neurender.retarget.draw import draw_pose_map
    from neurender.training.dataset import open_dataset, pose_convention

    def grown(mask: np.ndarray) -> np.ndarray:
        return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0

    ds = open_dataset(dance_dataset)
    convention = pose_convention(ds.meta)
    for sequence in ds.sequences:
        frames = [sequence.frame(i) for i in range(len(sequence))]
        instances = np.stack([f["instances"] for f in frames])
        images = np.stack([f["image"] for f in frames]).astype(np.float64)
        background = instances == 0
        # The empty stage: each pixel's mean over the frames where the body is elsewhere (the camera is fixed).
        plate = (images * background[..., None]).sum(0) / np.maximum(background.sum(0), 1)[..., None]
        plate_known = background.any(0)
        for index, (frame, image) in enumerate(zip(frames, images)):
            limbs = draw_pose_map(frame["pose"], SIZE, SIZE, convention).any(-1)
            shifted = np.roll(limbs, SIZE // 4, axis=1)
            body = grown(frame["instances"] > 0)
            assert body[limbs].mean() > 0.8, (
                f"{sequence.name} frame {index}: {body[limbs].mean():.0%} of the limbs on the body"
            )
            assert body[shifted].mean() < body[limbs].mean() - 0.5
            # In the image: the pixels under the limbs differ from the empty stage there.
            changed = grown((np.abs(image - plate).max(-1) > 30) & plate_known)
            under, off = changed[limbs & plate_known].mean(), changed[shifted & plate_known].mean()
            assert under > 0.8, f"{sequence.name} frame {index}: the image under the limbs looks like the empty stage"
            assert off < under - 0.5


def test_same_seed_same_files_other_seed_other_poses(tmp_path: Path) -> None:
    args = ["--motions", str(MOCAP / "humanoid3d_walk.txt"), "--sequences", "1", "--frames", "3", "--size", "32x32"]
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert cli_main(["dataset", "dance-synth", "--out", str(tmp_path / name), "--seed", seed, *args]) == 0

    def files(name: str) -> dict[str, bytes]:
        root = tmp_path / name
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "dataset.json"
        }

    assert files("a") == files("b")
    poses = lambda name: [json.loads(v) for k, v in files(name).items() if "/poses/" in k]  # noqa: E731
    assert poses("a") != poses("c")


def test_dance_synth_refuses_a_missing_motion(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.bvh"
    assert cli_main(["dataset", "dance-synth", "--out", str(tmp_path / "d"), "--motions", str(missing)]) == 2
    assert f"motion {missing} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "d" / "dataset.json").exists()
