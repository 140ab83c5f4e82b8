"""Everybody-Dance-Now-style placement of a source onto a target, and temporal smoothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurender.retarget.camera import frame_camera, project_pose
from neurender.retarget.canonical import INDEX, motion_to_canonical
from neurender.retarget.deepmimic import load_deepmimic
from neurender.retarget.normalize import ankles_and_heights, normalise, placement_stats
from neurender.retarget.smoothing import median_smooth, one_euro

MOCAP = Path(__file__).parent / "data" / "mocap"


def _walk_towards_camera(clip: str, height: int, width: int, depth_travel: float, yaw: float) -> np.ndarray:
    """A real clip projected while the performer walks towards the camera (so their ankles sweep the frame)."""
    pose = motion_to_canonical(load_deepmimic(MOCAP / clip))
    camera = frame_camera(pose, height, width, yaw_deg=yaw)
    view = camera.position - pose.points[:, INDEX["mid_hip"]].mean(axis=0)
    view[1] = 0
    view /= np.linalg.norm(view)
    sweep = np.linspace(-0.5, 0.5, pose.n_frames)[:, None, None] * depth_travel * view
    pose.points = pose.points + sweep
    return project_pose(pose, frame_camera(pose, height, width, yaw_deg=yaw))


def test_normalisation_maps_the_source_ankle_range_onto_the_targets():
    source = _walk_towards_camera("humanoid3d_dance_a.txt", 256, 256, depth_travel=2.0, yaw=0.0)
    target = _walk_towards_camera("humanoid3d_walk.txt", 180, 320, depth_travel=4.0, yaw=30.0)
    s, t = placement_stats(source), placement_stats(target)
    assert t.near_ankle - t.far_ankle > 10 and s.near_ankle - s.far_ankle > 10  # both sweep a real range
    moved, _ = normalise(source, s, t)
    m = placement_stats(moved)
    assert m.far_ankle == pytest.approx(t.far_ankle, abs=0.5)
    assert m.near_ankle == pytest.approx(t.near_ankle, abs=0.5)
    assert m.centre_x == pytest.approx(t.centre_x, abs=0.5)
    # Heights follow: at the far and near ends the moved source is as tall as the target there.
    assert m.far_height == pytest.approx(t.far_height, rel=0.1)
    assert m.near_height == pytest.approx(t.near_height, rel=0.1)
    # Per frame the map is a scale and an offset: limb proportions within a frame are kept.
    f = 40
    bone = lambda k: (
        np.linalg.norm(k[f, INDEX["r_knee"], :2] - k[f, INDEX["r_hip"], :2])
        / np.linalg.norm(k[f, INDEX["r_ankle"], :2] - k[f, INDEX["r_knee"], :2])
    )
    assert bone(moved) == pytest.approx(bone(source))


def test_normalisation_moves_extras_with_the_body_and_keeps_missing_points():
    source = _walk_towards_camera("humanoid3d_walk.txt", 128, 128, depth_travel=1.0, yaw=0.0)
    target = _walk_towards_camera("humanoid3d_walk.txt", 256, 256, depth_travel=3.0, yaw=0.0)
    extras = np.zeros((len(source), 112, 3))
    extras[:, 0] = source[:, INDEX["nose"]]  # a face point exactly on the nose
    extras[:, 5, :2] = 7.0  # a missing point (confidence 0)
    moved, moved_extras = normalise(source, placement_stats(source), placement_stats(target), extras)
    assert moved_extras[:, 0] == pytest.approx(moved[:, INDEX["nose"]])
    assert (moved_extras[:, 5] == 0).all()


def test_placement_needs_ankles_and_head():
    keypoints = np.zeros((5, 25, 3))
    with pytest.raises(ValueError, match="no frame shows both an ankle and the head"):
        placement_stats(keypoints)
    ankle, height = ankles_and_heights(keypoints)
    assert np.isnan(ankle).all() and np.isnan(height).all()


def _jittery_track(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 2, 120)
    clean = np.stack([100 + 30 * np.sin(2 * np.pi * 0.5 * t), 80 + 10 * t], axis=-1)[:, None].repeat(3, axis=1)
    noisy = clean + np.random.default_rng(seed).normal(0, 2.0, clean.shape)
    keypoints = np.concatenate([noisy, np.ones((120, 3, 1))], axis=-1)
    return clean, keypoints


@pytest.mark.parametrize("method", ["median", "one-euro"])
def test_smoothing_removes_jitter_and_keeps_missing_points(method):
    clean, keypoints = _jittery_track()
    keypoints[50:55, 1, 2] = 0.0  # point 1 missing for five frames
    keypoints[50:55, 1, :2] = 0.0
    smoothed = median_smooth(keypoints, 5) if method == "median" else one_euro(keypoints, fps=60.0)
    error = lambda k: np.sqrt(np.mean((k[5:, 0, :2] - clean[5:, 0]) ** 2))
    assert error(smoothed) < 0.75 * error(keypoints)
    assert (smoothed[..., 2] == keypoints[..., 2]).all()
    assert (smoothed[50:55, 1, :2] == 0).all()  # missing points are not moved
    assert np.abs(smoothed[56:, 1, :2] - clean[56:, 1]).max() < 10.0  # nor do they drag the track after them
