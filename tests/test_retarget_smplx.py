"""SMPL-X clips through the `smplx` package, with a random stand-in model file of the real model's layout.

The real SMPL-X model files are MPI-licensed and never ship; the stand-in has SMPL-X's 55-joint kinematic
tree and array layout (fewer vertices), which is all the loader relies on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurender.retarget.canonical import INDEX, choose_joint_map, motion_to_canonical
from neurender.retarget.skeleton import MotionFormatError, motion_fk
from neurender.retarget.smplx_io import SmplxModelError, load_smplx_motion

smplx = pytest.importorskip(
    "smplx", reason="the optional smplx package is not installed (pip install 'neurender[smplx]')"
)

# SMPL-X's kinematic tree: body 22, jaw, eyes, 15 joints per hand.
PARENTS = [
    -1,
    0,
    0,
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    9,
    9,
    12,
    13,
    14,
    16,
    17,
    18,
    19,
    15,
    15,
    15,
    20,
    25,
    26,
    20,
    28,
    29,
    20,
    31,
    32,
    20,
    34,
    35,
    20,
    37,
    38,
    21,
    40,
    41,
    21,
    43,
    44,
    21,
    46,
    47,
    21,
    49,
    50,
    21,
    52,
    53,
]
# Rest positions (metres, y-up, facing +z) of the 22 body joints; hand, jaw and eye joints sit near their parents.
BODY = [
    (0, 0.95, 0),
    (0.09, 0.86, 0),
    (-0.09, 0.86, 0),
    (0, 1.05, 0),
    (0.1, 0.48, 0),
    (-0.1, 0.48, 0),
    (0, 1.18, 0),
    (0.1, 0.08, -0.02),
    (-0.1, 0.08, -0.02),
    (0, 1.25, 0),
    (0.11, 0.02, 0.1),
    (-0.11, 0.02, 0.1),
    (0, 1.45, 0),
    (0.08, 1.38, 0),
    (-0.08, 1.38, 0),
    (0, 1.55, 0.02),
    (0.18, 1.42, 0),
    (-0.18, 1.42, 0),
    (0.45, 1.42, 0),
    (-0.45, 1.42, 0),
    (0.7, 1.42, 0),
    (-0.7, 1.42, 0),
]


def write_standin_model(path: Path, vertices: int = 200, seed: int = 0) -> np.ndarray:
    """A random SMPL-X-shaped model file; its joint regressor picks 55 template vertices. Returns those joints."""
    rng = np.random.default_rng(seed)
    joints = np.zeros((55, 3))
    joints[:22] = BODY
    for j in range(22, 55):
        joints[j] = joints[PARENTS[j]] + rng.normal(0, 0.02, 3)
    template = rng.normal(0, 0.3, (vertices, 3)) + [0, 1, 0]
    template[:55] = joints
    regressor = np.zeros((55, vertices))
    regressor[np.arange(55), np.arange(55)] = 1.0
    kintree = np.array([[p if p >= 0 else 2**32 - 1 for p in PARENTS], list(range(55))], dtype=np.int64)
    np.savez(
        path,
        v_template=template,
        f=rng.integers(0, vertices, (2 * vertices, 3)).astype(np.int32),
        shapedirs=rng.normal(0, 0.01, (vertices, 3, 20)),
        posedirs=rng.normal(0, 1e-3, (vertices, 3, 486)),
        J_regressor=regressor,
        kintree_table=kintree,
        weights=np.full((vertices, 55), 1 / 55),
        hands_componentsl=rng.normal(size=(45, 45)),
        hands_componentsr=rng.normal(size=(45, 45)),
        hands_meanl=np.zeros(45),
        hands_meanr=np.zeros(45),
        lmk_faces_idx=rng.integers(0, 2 * vertices, 51),
        lmk_bary_coords=np.full((51, 3), 1 / 3),
        dynamic_lmk_faces_idx=rng.integers(0, 2 * vertices, (79, 17)),
        dynamic_lmk_bary_coords=np.full((79, 17, 3), 1 / 3),
    )
    return joints


@pytest.fixture()
def model_dir(tmp_path) -> tuple[Path, np.ndarray]:
    folder = tmp_path / "models" / "smplx"
    folder.mkdir(parents=True)
    joints = write_standin_model(folder / "SMPLX_NEUTRAL.npz")
    return tmp_path / "models", joints


def _amass_clip(path: Path, frames: int = 12, betas: np.ndarray | None = None) -> dict:
    rng = np.random.default_rng(1)
    poses = rng.normal(0, 0.2, (frames, 165))
    poses[:, :3] = [np.pi / 2, 0, 0]  # AMASS: the y-up body stood up in a z-up world
    clip = {
        "poses": poses,
        "trans": np.c_[np.linspace(0, 1, frames), np.zeros(frames), np.full(frames, 0.05)],
        "betas": np.zeros(16) if betas is None else betas,
        "gender": np.array("neutral"),
        "mocap_frame_rate": np.array(120.0),
    }
    np.savez(path, **clip)
    return clip


def test_amass_clip_through_smplx(model_dir, tmp_path):
    folder, joints = model_dir
    clip = _amass_clip(tmp_path / "clip.npz")
    motion = load_smplx_motion(tmp_path / "clip.npz", folder)
    assert len(motion.skeleton.names) == 55 and motion.skeleton.names[15] == "head"
    assert motion.n_frames == 12 and motion.fps == 120.0 and motion.up_axis == "z"
    assert choose_joint_map(motion.skeleton.names).name == "smplx"
    positions, _ = motion_fk(motion)
    assert positions[:, 0] == pytest.approx(clip["trans"] + joints[0], abs=1e-6)  # the pelvis: trans + its rest joint
    lengths = np.linalg.norm(positions[:, 1:] - positions[:, PARENTS[1:]], axis=-1)
    # The model's arrays are float32 in smplx: lengths agree to float32 precision.
    assert np.abs(lengths - np.linalg.norm(joints[1:] - joints[PARENTS[1:]], axis=-1)).max() < 1e-6
    # Canonical poses are y-up: the body stands (head above the ankles) after the z-up conversion.
    pose = motion_to_canonical(motion)
    assert (pose.points[:, INDEX["nose"], 1] > pose.points[:, INDEX["r_ankle"], 1]).all()


def test_betas_shape_the_rest_joints(model_dir, tmp_path):
    folder, joints = model_dir
    betas = np.zeros(16)
    betas[:3] = [2.0, -1.0, 0.5]
    _amass_clip(tmp_path / "clip.npz", betas=betas)
    motion = load_smplx_motion(tmp_path / "clip.npz", folder / "smplx" / "SMPLX_NEUTRAL.npz")
    shapedirs = np.load(folder / "smplx" / "SMPLX_NEUTRAL.npz")["shapedirs"]
    shaped = joints + shapedirs[:55, :, :10] @ betas[:10]  # the stand-in regressor picks vertices 0..54
    assert motion.skeleton.offsets[1:] == pytest.approx(shaped[1:] - shaped[PARENTS[1:]], abs=1e-6)
    assert np.abs(motion.skeleton.offsets[1:] - (joints[1:] - joints[PARENTS[1:]])).max() > 1e-3  # betas matter


def test_missing_model_and_bad_clip_errors(tmp_path):
    _amass_clip(tmp_path / "clip.npz")
    with pytest.raises(
        SmplxModelError,
        match=r"SMPL-X model not found: .* has no SMPLX_NEUTRAL.npz or SMPLX_NEUTRAL.pkl .*https://smpl-x.is.tue.mpg.de",
    ):
        load_smplx_motion(tmp_path / "clip.npz", tmp_path / "nowhere")
    np.savez(tmp_path / "bad.npz", poses=np.zeros((4, 156)), trans=np.zeros((4, 3)))
    with pytest.raises(MotionFormatError, match=r"poses have shape \(4, 156\); expected \[frames, 165\]"):
        load_smplx_motion(tmp_path / "bad.npz", tmp_path)
