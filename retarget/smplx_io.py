"""SMPL-X parameters (AMASS-style .npz) as a Motion, through the `smplx` package and the user's model files.

The SMPL-X model files are licensed by the Max Planck Institute and never ship with neurender: the user
downloads them (https://smpl-x.is.tue.mpg.de) and points to the file or its folder. `smplx` loads the model;
the shaped rest joints are its joint regressor applied to the template shaped by the clip's betas, and the
motion is the clip's axis-angle rotations on that joint tree (the skinned mesh is not needed for keypoints).
Note: the `smplx` package itself carries MPI's non-commercial licence and depends on torch; it is an
optional extra (`pip install 'neurender[smplx]'`) and is imported only here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from neurender.common.errors import UserError
from neurender.retarget.skeleton import Motion, MotionFormatError, Skeleton

N_JOINTS = 55  # SMPL-X: body 22, jaw, 2 eyes, 2 x 15 finger joints
MODEL_SITE = "https://smpl-x.is.tue.mpg.de"
_PARTS = (("root_orient", 3), ("pose_body", 63), ("pose_jaw", 3), ("pose_eye", 6), ("pose_hand", 90))


class SmplxModelError(UserError, ValueError):
    """The SMPL-X model (files or package) is not available; the message says what to get and where."""


def find_model_file(model_path: str | Path, gender: str) -> Path:
    """The SMPL-X model file: the path itself, or SMPLX_<GENDER>.npz/.pkl in it or in its smplx/ folder."""
    path = Path(model_path)
    if path.is_file():
        return path
    names = [f"SMPLX_{gender.upper()}.{ext}" for ext in ("npz", "pkl")]
    for folder in (path, path / "smplx"):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise SmplxModelError(
        f"SMPL-X model not found: {path} is not a model file and has no {' or '.join(names)} (also looked in "
        f"{path / 'smplx'}). neurender does not ship SMPL-X models: download them from {MODEL_SITE} "
        "(registration and their licence) and pass the file or folder"
    )


def _read_clip(path: Path) -> np.lib.npyio.NpzFile:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise MotionFormatError(path, f"cannot read as an .npz archive ({err})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise MotionFormatError(path, "a single .npy array, not an .npz archive; expected an AMASS SMPL-X clip")
    return data


def check_smplx_clip(path: str | Path) -> None:
    """Refuse a file that is not an SMPL-X clip, before asking for the model it would need."""
    _poses(Path(path), _read_clip(Path(path)))


def _poses(path: Path, data: np.lib.npyio.NpzFile) -> np.ndarray:
    if "poses" in data:
        poses = np.asarray(data["poses"], dtype=np.float64)
    elif all(key in data for key, _ in _PARTS[:2]):
        frames = len(data["root_orient"])
        poses = np.concatenate(
            [
                np.asarray(data[key], dtype=np.float64) if key in data else np.zeros((frames, size))
                for key, size in _PARTS
            ],
            axis=1,
        )
    else:
        raise MotionFormatError(path, "expected 'poses' [F, 165] or 'root_orient' + 'pose_body' (AMASS SMPL-X)")
    if poses.ndim != 2 or poses.shape[1] != 3 * N_JOINTS:
        raise MotionFormatError(
            path,
            f"poses have shape {poses.shape}; expected [frames, {3 * N_JOINTS}] "
            "(SMPL-X axis-angle: root, 21 body, jaw, 2 eyes, 30 hand joints)",
        )
    return poses


def load_smplx_motion(path: str | Path, model_path: str | Path, gender: str | None = None) -> Motion:
    """An AMASS-style SMPL-X clip (poses, trans, betas, gender, frame rate) as a Motion (z-up world)."""
    path = Path(path)
    data = _read_clip(path)
    poses = _poses(path, data)
    frames = poses.shape[0]
    trans = np.asarray(data["trans"], dtype=np.float64) if "trans" in data else np.zeros((frames, 3))
    if trans.shape != (frames, 3):
        raise MotionFormatError(path, f"trans has shape {trans.shape}; expected [{frames}, 3]")
    betas = np.asarray(data["betas"], dtype=np.float64).ravel() if "betas" in data else np.zeros(10)
    fps_key = next((k for k in ("mocap_frame_rate", "mocap_framerate", "fps") if k in data), None)
    fps = float(data[fps_key]) if fps_key else 30.0
    gender = gender or (str(data["gender"]) if "gender" in data else "neutral")

    names, parents, joints = smplx_rest_joints(model_path, gender, betas)
    offsets = joints.copy()
    offsets[1:] -= joints[list(parents[1:])]
    skeleton = Skeleton(names, parents, offsets)
    rotations = Rotation.from_rotvec(poses.reshape(-1, 3)).as_matrix().reshape(frames, N_JOINTS, 3, 3)
    translations = np.broadcast_to(offsets, (frames, N_JOINTS, 3)).copy()
    translations[:, 0] = trans + joints[0]
    return Motion(skeleton, rotations, translations, fps, str(path), up_axis="z")


def smplx_rest_joints(
    model_path: str | Path, gender: str, betas: np.ndarray
) -> tuple[tuple[str, ...], tuple[int, ...], np.ndarray]:
    """Joint names, parents and shaped rest positions [55, 3] of the SMPL-X model for these betas."""
    try:
        import smplx
        from smplx.joint_names import JOINT_NAMES
    except ImportError:
        raise SmplxModelError("SMPL-X clips need the `smplx` package: pip install 'neurender[smplx]'") from None
    file = find_model_file(model_path, gender)
    ext = file.suffix.lstrip(".")
    try:
        model = smplx.SMPLX(
            str(file), ext=ext, gender=gender, num_betas=len(betas), use_pca=False, use_face_contour=False
        )
    except Exception as err:  # the package reports a bad file in many ways (KeyError, pickle, shape errors)
        raise SmplxModelError(f"{file}: not a usable SMPL-X model file ({type(err).__name__}: {err})") from None
    template = model.v_template.detach().cpu().numpy().astype(np.float64)
    shapedirs = model.shapedirs.detach().cpu().numpy().astype(np.float64)
    regressor = model.J_regressor.detach().cpu().numpy().astype(np.float64)
    parents = model.parents.detach().cpu().numpy().astype(int)
    if regressor.shape[0] != N_JOINTS:
        raise SmplxModelError(
            f"{file}: the joint regressor has {regressor.shape[0]} joints; expected {N_JOINTS} (SMPL-X)"
        )
    n = min(len(betas), shapedirs.shape[-1])
    shaped = template + shapedirs[..., :n] @ betas[:n]
    parents[0] = -1
    return tuple(JOINT_NAMES[:N_JOINTS]), tuple(int(p) for p in parents), regressor @ shaped
