"""`neurender dataset dance-synth`: pose-to-body training pairs made by the project's own renderer.

The renderer plays the target person (training/body.py): mocap clips are retargeted onto the target skeleton
by neurender.retarget's pipeline, exactly as `neurender dance` retargets a motion, and each sequence writes

    poses/       the projected BODY_25 keypoints (pixels); the trainer draws them with retarget.draw.draw_pose_map
                 in the convention dataset.json names ("pose_convention"), which export copies into the bundle
    images/      the shaded photo pass of the clothed body (the target footage)
    instances/   1 where the person is (the renderer's ID pass), 0 elsewhere
    motion/      exact backward motion of the body (the camera is fixed), with flow_valid/

Sequences vary what dance time varies: a window of a clip, the camera's yaw about the performer, and the
stretch of the clip the camera is framed on (the window alone up to the whole clip, as `neurender dance`
frames a whole motion), so the person appears at the sizes and views a retargeted motion shows.
Deterministic: every choice is drawn from the seed, and the renderer is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from neurender.engine_plugin.gbuffer.renderer import GBufferRenderer
from neurender.proto.neurender.v1 import model_pb2
from neurender.retarget.canonical import DATA as RETARGET_DATA
from neurender.retarget.canonical import Pose3D
from neurender.retarget.pipeline import Options, Source, load_source, load_target, retarget_source
from neurender.training.body import person_scene
from neurender.training.dataset import DatasetMeta, SequenceWriter, pose_convention_dict, write_meta

DEFAULT_TARGET = RETARGET_DATA / "deepmimic_humanoid.urdf"
# The repository's mocap clips (CMU BVH, DeepMimic dance and walk); not part of an installed wheel.
DEFAULT_MOTIONS = Path(__file__).resolve().parents[1] / "tests" / "data" / "mocap"
MOTION_SUFFIXES = (".bvh", ".txt", ".json")
CONVENTION = model_pb2.PoseConvention(skeleton="body25", face=False, hands=False, limb_width=3)
MAX_YAW_DEG = 60.0


@dataclass(frozen=True)
class SequencePlan:
    """What one sequence shows: `length` frames of a motion from `start` (frames at the dataset's rate, shifted
    by `phase` of a frame, so short clips give new poses), the camera framed on frames [span_start, span_end),
    turned `yaw_deg` about the performer."""

    motion: int
    phase: float
    start: int
    length: int
    span_start: int
    span_end: int
    yaw_deg: float


def plan_sequences(durations: list[float], fps: float, sequences: int, frames: int, seed: int) -> list[SequencePlan]:
    """`sequences` plans per motion (durations[m] seconds, first to last frame), of up to `frames` frames."""
    plans = []
    for m, duration in enumerate(durations):
        for s in range(sequences):
            rng = np.random.default_rng([seed, m, s])
            phase = float(rng.random())
            n = int(np.floor(duration * fps - phase + 1e-6)) + 1  # frames at the dataset's rate from `phase`
            length = min(frames, n)
            start = int(rng.integers(0, n - length + 1))
            span_start = int(rng.integers(0, start + 1))
            span_end = int(rng.integers(start + length, n + 1))
            plans.append(
                SequencePlan(
                    m, phase, start, length, span_start, span_end, float(rng.uniform(-MAX_YAW_DEG, MAX_YAW_DEG))
                )
            )
    return plans


def _sample(pose: Pose3D, fps: float, phase: float, first: int, end: int) -> Pose3D:
    """Frames [first, end) of `pose` at `fps` from `phase` frames in (nearest source frame)."""
    index = np.round((phase + np.arange(first, end)) * pose.fps / fps).astype(int)
    index = np.minimum(index, pose.n_frames - 1)
    return Pose3D(pose.points[index], pose.confidence[index], fps)


def motion_files(paths: list[Path] | None) -> list[Path]:
    """The motion files named, folders expanded to their .bvh/.txt/.json files (sorted); None: DEFAULT_MOTIONS."""
    files = []
    for path in paths or [DEFAULT_MOTIONS]:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in MOTION_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{path}: no motion files ({', '.join(MOTION_SUFFIXES)}) in the folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"motion {path} does not exist" + ("" if paths else " (give --motions)"))
    return files


def make_dance_dataset(
    out: str | Path,
    motions: list[Path],
    size: tuple[int, int],
    frames: int = 24,
    sequences: int = 8,
    seed: int = 0,
    fps: float = 15.0,
    target: Path = DEFAULT_TARGET,
    progress: bool = True,
) -> DatasetMeta:
    """Write `sequences` sequences of up to `frames` frames per motion file into the dataset folder `out`.

    Raises FileNotFoundError / ValueError (MotionFormatError, SkeletonMapError) for motions or a target that
    retargeting cannot read."""
    if not motions:
        raise ValueError("no motion files given")
    if frames < 1 or sequences < 1:
        raise ValueError(f"need at least one sequence and one frame, got {sequences} sequences of {frames} frames")
    out = Path(out)
    options = Options()
    target_body = load_target(target, options)
    poses = []
    for path in motions:
        source = load_source(path, options)
        if source.pose3d is None:
            raise ValueError(
                f"{path}: a 2D keypoint motion cannot drive the rendered body; give a 3D motion "
                "(BVH, DeepMimic clip or SMPL-X)"
            )
        poses.append(source.pose3d)
    plans = plan_sequences([(p.n_frames - 1) / p.fps for p in poses], fps, sequences, frames, seed)
    height, width = size
    meta = DatasetMeta(
        "pose",
        (),
        fps,
        (height, width),
        {
            "pose_convention": pose_convention_dict(CONVENTION),
            "source": {
                "generator": "neurender dataset dance-synth",
                "motions": [Path(m).name for m in motions],
                "target": Path(target).name,
                "seed": seed,
                "sequences_per_motion": sequences,
                "frames": frames,
            },
        },
    )
    with (
        GBufferRenderer(height, width) as renderer,
        tqdm(total=sum(p.length for p in plans), desc="dance-synth", unit="frame", disable=not progress) as bar,
    ):
        for k, plan in enumerate(plans):
            clip = _sample(poses[plan.motion], fps, plan.phase, plan.span_start, plan.span_end)
            result = retarget_source(Source(pose3d=clip), target_body, size, None, "none", plan.yaw_deg)
            window = slice(plan.start - plan.span_start, plan.start - plan.span_start + plan.length)
            keypoints = result.keypoints(CONVENTION)[window]
            scene = person_scene(result.points3d[window], result.camera, size, fps, seed=seed)
            writer = SequenceWriter(out, f"{Path(motions[plan.motion]).stem}_{k:04d}")
            for frame, people in zip(renderer.render_sequence(scene, photo=True), keypoints):
                writer.write(
                    frame.index,
                    images=frame.photo,
                    instances=frame.instances,
                    motion=frame.motion,
                    flow_valid=frame.motion_valid.astype(np.uint8) * 255,
                    poses={
                        "skeleton": CONVENTION.skeleton,
                        "num_keypoints": int(people.shape[1]),
                        "people": np.round(people, 3).tolist(),
                    },
                )
                bar.update(1)
    write_meta(out, meta)  # last: a folder with dataset.json is complete
    return meta


__all__ = [
    "CONVENTION",
    "DEFAULT_MOTIONS",
    "DEFAULT_TARGET",
    "SequencePlan",
    "make_dance_dataset",
    "motion_files",
    "plan_sequences",
]
