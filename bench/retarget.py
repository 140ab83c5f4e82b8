"""Motion retargeting speed beside the tiny pose generator's, in the same run.

    python -m neurender.bench.retarget [--bvh FILE] [--size 256] [--threads 2] [--repeats 3]

The whole CMU clip (2752 frames at 120 fps) is read from its BVH, mapped onto the canonical body, retargeted
to the DeepMimic humanoid's proportions with feet on the floor, framed by a camera, projected and drawn as
BODY_25 pose maps at SIZE x SIZE; each stage is timed (best of --repeats). Beside it, the tiny-pose generator
step (ONNX Runtime, CPU, batch 1) runs on those pose maps at the same size. Goal: retargeting >= 100x the
generator's frame rate, so motion never shows in a frame's time. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from neurender.proto.neurender.v1 import model_pb2
from neurender.retarget.bvh import load_bvh
from neurender.retarget.camera import frame_camera, project_pose
from neurender.retarget.canonical import motion_to_canonical, rest_pose
from neurender.retarget.deepmimic import load_deepmimic
from neurender.retarget.draw import draw_pose_map
from neurender.retarget.keypoints_io import N_EXTRA, to_convention
from neurender.retarget.retarget import Proportions, retarget

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BVH = REPO / "tests" / "data" / "mocap" / "cmu_01_01.bvh"
DEFAULT_TARGET = REPO / "tests" / "data" / "mocap" / "humanoid3d_walk.txt"


def best_of(repeats: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def generator_fps(pose_maps: np.ndarray, threads: int, seconds: float = 3.0) -> float:
    """Frames per second of the tiny-pose step in ONNX Runtime, fed the drawn pose maps in order."""
    import onnxruntime as ort
    import torch

    from neurender.training.model.config import PRESETS
    from neurender.training.model.generator import Vid2VidGenerator
    from neurender.training.model.onnx_export import export_step_onnx
    from neurender.training.model.step import example_inputs, input_names

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = PRESETS["tiny-pose"]
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(
        export_step_onnx(Vid2VidGenerator(cfg).eval()), options, providers=["CPUExecutionProvider"]
    )
    h, w = pose_maps.shape[1:3]
    state = {k: v.numpy() for k, v in example_inputs(cfg, 1, h, w).items()}
    state["has_history"][:] = 0
    names = input_names(cfg)
    frames = 0

    def step(i: int) -> None:
        state["pose_map"] = pose_maps[i % len(pose_maps)][None]
        _, state["prev_labels"], state["prev_frames"] = session.run(None, {n: state[n] for n in names})
        state["has_history"][:] = 1

    step(0)  # warm-up
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or frames < 3:
        step(frames)
        frames += 1
    return frames / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bvh", type=Path, default=DEFAULT_BVH)
    parser.add_argument(
        "--target", type=Path, default=DEFAULT_TARGET, help="DeepMimic clip whose humanoid gives the proportions"
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    size = args.size
    convention = model_pb2.PoseConvention(skeleton="body25", limb_width=3)
    target = Proportions.from_pose(rest_pose(load_deepmimic(args.target)))
    stages: list[tuple[str, float]] = []

    t, motion = best_of(args.repeats, lambda: load_bvh(args.bvh))
    stages.append(("read BVH", t))
    n = motion.n_frames
    t, source = best_of(args.repeats, lambda: motion_to_canonical(motion))
    stages.append(("FK + canonical body", t))
    t, moved = best_of(args.repeats, lambda: retarget(source, target))
    stages.append(("bone-length retarget + floor", t))

    def project() -> np.ndarray:
        camera = frame_camera(moved, size, size)
        body = project_pose(moved, camera)
        return to_convention(body, np.zeros((n, N_EXTRA, 3)), convention)[:, None]

    t, keypoints = best_of(args.repeats, project)
    stages.append(("camera framing + projection", t))
    t, maps = best_of(args.repeats, lambda: np.stack([draw_pose_map(k, size, size, convention) for k in keypoints]))
    stages.append((f"draw BODY_25 {size}x{size}", t))
    total = sum(s for _, s in stages)

    print(
        f"{args.bvh.name}: {n} frames ({motion.fps:.0f} fps source), {len(motion.skeleton.names)} joints; "
        f"target proportions from {args.target.name}; best of {args.repeats}\n"
    )
    header = f"{'stage':<34}{'seconds':>9}{'frames/s':>12}"
    print(header)
    print("-" * len(header))
    for name, seconds in stages:
        print(f"{name:<34}{seconds:>9.3f}{n / seconds:>12.0f}")
    print(f"{'retarget, whole path':<34}{total:>9.3f}{n / total:>12.0f}")
    gen = generator_fps(maps, args.threads)
    print(f"{'tiny-pose generator (ORT, batch 1)':<34}{1 / gen:>9.3f}{gen:>12.1f}   (seconds per frame)")
    ratio = (n / total) / gen
    print(
        f"\nretargeting runs at {ratio:.0f}x the generator's frame rate at {size}x{size} (goal >= 100x): "
        f"{'met' if ratio >= 100 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
