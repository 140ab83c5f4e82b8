"""Pose extraction from footage with MediaPipe, behind a subprocess: it never loads in neurender's environment.

mediapipe==0.10.14 bundles its Pose model (runs offline on a CPU) but needs numpy<2 and protobuf<5, which the
server's environment cannot have. So it lives in its own virtual environment (default `.venv-pose` at the
repository root, or $NEURENDER_POSE_ENV), made by `neurender pose-env` (or `make pose-env`), and
`pose_worker.py` runs there as a script, writing a JSON file this side reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from tqdm import tqdm

from neurender.common.errors import UserError
from neurender.retarget.canonical import Pose3D
from neurender.retarget.keypoints_io import Keypoints2D, load_mediapipe

POSE_REQUIREMENTS = ("mediapipe==0.10.14", "numpy<2", "protobuf<5")
WORKER = Path(__file__).with_name("pose_worker.py")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


class PoseEnvError(UserError, RuntimeError):
    """The pose environment is missing or broken; the message says how to make it."""


def default_env_path() -> Path:
    return Path(os.environ.get("NEURENDER_POSE_ENV", Path(__file__).resolve().parents[1] / ".venv-pose"))


def env_python(env: Path) -> Path:
    return env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def create_pose_env(env: Path | None = None) -> Path:
    """Create (or complete) the pose environment; returns its Python. Needs the package index (~150 MB)."""
    env = env or default_env_path()
    python = env_python(env)
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=False).create(env)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *POSE_REQUIREMENTS], check=True)
    check = subprocess.run(
        [str(python), "-c", "import mediapipe, numpy; print(mediapipe.__version__)"], capture_output=True, text=True
    )
    if check.returncode != 0:
        raise PoseEnvError(f"pose environment {env}: mediapipe does not import:\n{check.stderr.strip()}")
    return python


def pose_env_ready(env: Path | None = None) -> bool:
    python = env_python(env or default_env_path())
    if not python.exists():
        return False
    check = subprocess.run([str(python), "-c", "import mediapipe"], capture_output=True)
    return check.returncode == 0


def extract_poses(
    video: str | Path, out_json: str | Path | None = None, max_frames: int = 0, env: Path | None = None, person: int = 0
) -> tuple[Keypoints2D, Pose3D | None]:
    """Run MediaPipe Pose on a video in the pose environment; returns image keypoints and the 3D pose of one
    tracked person (`person`: the K-th largest when first found; see pose_worker.py for the tracking rule)."""
    video, env = Path(video), env or default_env_path()
    if not video.is_file():
        raise FileNotFoundError(f"video {video} does not exist")
    python = env_python(env)
    if not python.exists():
        raise PoseEnvError(
            f"pose extraction needs the MediaPipe environment at {env}: create it with "
            "`neurender pose-env` (or `make pose-env`), or set NEURENDER_POSE_ENV"
        )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(out_json) if out_json else Path(tmp) / "poses.json"
        command = [
            str(python),
            str(WORKER),
            str(video),
            str(out),
            "--max-frames",
            str(max_frames),
            "--person",
            str(person),
        ]
        log_path = Path(tmp) / "worker.log"
        with (
            open(log_path, "w") as log,
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True) as process,
            tqdm(desc=f"pose {video.name}", unit="frame") as bar,
        ):
            assert process.stdout is not None
            for line in process.stdout:
                parts = line.split()
                if len(parts) == 3 and parts[0] == "progress":
                    bar.total = int(parts[2]) or None
                    bar.update(int(parts[1]) - bar.n)
        if process.returncode != 0:
            tail = "\n".join(log_path.read_text().strip().splitlines()[-5:])
            raise PoseEnvError(f"the pose worker failed on {video} (exit {process.returncode}):\n{tail}")
        return load_mediapipe(out)
