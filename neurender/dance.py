"""`neurender dance`: a motion performed by the person a pose-to-body model was trained on, rendered by a server.

    motion ─► retargeted onto the target (neurender.retarget's pipeline) ─► BODY_25 keypoints in the frame
        ─► pose maps drawn in the model's convention (its bundle's PoseConvention) ─► one server session ─► frames

Writes
    OUT/dance.mp4          pose map | rendered person, side by side (H.264)
    OUT/contact_sheet.png  a few frames: pose maps above, renders below
    OUT/frames/, pose/     every render and every pose map as PNG
    OUT/dance.json         what was done: inputs, model, convention, size, rate, timings

Without --server a server is started in this process with the model (like `neurender demo`). This module sits
above the packages (it starts a server and drives retargeting and the client SDK), like the CLI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from neurender.common.args import (
    add_frames_option,
    add_model_option,
    add_output_options,
    add_server_options,
    parse_size,
)
from neurender.common.errors import UserError
from neurender.local_render import MODELS_DIR, local_bundle

if TYPE_CHECKING:
    from neurender.retarget.pipeline import Options

DEFAULT_MODEL = "pose-body"
SHEET_FRAMES = 8
OWNED = ("dance.mp4", "contact_sheet.png", "frames", "pose", "dance.json")


@dataclass
class DanceSummary:
    frames: int
    size: tuple[int, int]
    fps: float
    model: str
    server: str  # the address rendered through, or "in-process"
    server_inference_ms: float  # mean per frame, the generator step inside the server
    round_trip_ms: float  # mean per frame, client send to decoded frame
    wall_fps: float  # frames per second of the streaming loop


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "dance",
        help="retarget a motion onto a target and render it with a pose-to-body model into an mp4",
        description="Put a motion (BVH, DeepMimic clip, SMPL-X .npz, OpenPose/MediaPipe keypoints or a video) onto a "
        "target (a skeleton file, or the target's keypoints or footage), draw it as pose maps in the "
        "model's convention and render them through a server (a local one unless --server is given). "
        "Writes OUT/dance.mp4 (pose map | render), OUT/contact_sheet.png, OUT/frames/, OUT/pose/ and "
        "OUT/dance.json.",
    )
    p.add_argument("--motion", required=True, type=Path, help="the motion file (as `neurender retarget --motion`)")
    p.add_argument(
        "--target",
        required=True,
        type=Path,
        help="the target person: a skeleton (.bvh, DeepMimic .urdf or "
        "clip, SMPL-X .npz) or their keypoints or footage (as `neurender retarget --target`)",
    )
    add_output_options(p, "output folder")
    add_model_option(p, DEFAULT_MODEL, MODELS_DIR)
    add_server_options(p)
    p.add_argument("--size", type=parse_size, help="HEIGHTxWIDTH (default: the size the model was trained at)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate the motion is resampled to (default 30)")
    add_frames_option(p, 0, "render at most this many frames (0: the whole motion)")
    p.add_argument("--yaw", type=float, default=0.0, help="turn the camera about the performer by this many degrees")
    p.add_argument(
        "--smooth", choices=("none", "median", "one-euro"), default="none", help="temporal smoothing of the keypoints"
    )
    p.add_argument(
        "--map", type=Path, help="joint map YAML for a motion skeleton that is not CMU, Mixamo, DeepMimic or SMPL-X"
    )
    p.add_argument("--target-map", type=Path, help="joint map YAML for the target's skeleton, likewise")
    p.add_argument("--smplx-model", type=Path, help="SMPL-X model file or folder (for .npz clips; not shipped)")
    p.add_argument(
        "--pose-env", type=Path, help="MediaPipe environment, for video motions or targets (see `neurender pose-env`)"
    )
    p.add_argument("--in-flight", type=int, default=4, help="frames sent ahead of the results (default 4)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.frames < 0 or args.fps <= 0 or args.in_flight < 1:
        raise UserError(
            f"--frames must be >= 0, --fps positive and --in-flight >= 1 (got {args.frames}, {args.fps}, "
            f"{args.in_flight})"
        )
    from neurender.common.args import read_credentials
    from neurender.common.outputs import prepare_output
    from neurender.retarget.canonical import SkeletonMapError, load_joint_map
    from neurender.retarget.pipeline import Options

    token, roots = read_credentials(args)
    prepare_output(args.out, OWNED, args.overwrite)
    try:
        options = Options(
            load_joint_map(args.map) if args.map else None,
            load_joint_map(args.target_map) if args.target_map else None,
            args.smplx_model,
            args.pose_env,
        )
    except (SkeletonMapError, FileNotFoundError, ValueError) as err:
        raise UserError(str(err)) from None
    summary = run_dance(
        args.motion,
        args.target,
        args.out,
        args.model,
        args.server,
        args.size,
        args.fps,
        args.frames,
        args.yaw,
        args.smooth,
        args.in_flight,
        token,
        roots,
        options,
    )
    print(
        f"{args.out}/dance.mp4, contact_sheet.png, frames/ ({summary.frames} frames at {summary.size[0]}x{summary.size[1]}, "
        f"{summary.fps:g} fps, model {summary.model})"
    )
    print(
        f"server step {summary.server_inference_ms:.1f} ms/frame | round trip {summary.round_trip_ms:.1f} ms/frame | "
        f"{summary.wall_fps:.1f} frames/s"
    )
    return 0


def _pose_convention(description, where: str):  # -> model_pb2.PoseConvention
    from neurender.proto.neurender.v1 import model_pb2

    if description.modality != model_pb2.POSE or not description.HasField("pose"):
        raise UserError(
            f"{where} is not a pose model (modality {model_pb2.Modality.Name(description.modality)}); "
            "neurender dance needs a POSE model with a pose convention, e.g. pose-body"
        )
    return description.pose


def run_dance(
    motion: Path,
    target: Path,
    out: Path,
    model: str = DEFAULT_MODEL,
    server: str | None = None,
    size: tuple[int, int] | None = None,
    fps: float = 30.0,
    frames: int = 0,
    yaw_deg: float = 0.0,
    smoothing: str = "none",
    in_flight: int = 4,
    token: str | None = None,
    root_certificates: bytes | None = None,
    options: Options | None = None,
) -> DanceSummary:
    """Retarget (with retarget's `options`: joint maps, SMPL-X model, pose environment), draw, render through a
    server and write the files listed in the module docstring."""
    from neurender.engine_plugin.sdk.client import NeurenderError, RenderClient
    from neurender.proto.bundle import BundleError, check_frame_size, read_bundle
    from neurender.retarget.canonical import SkeletonMapError
    from neurender.retarget.pipeline import Options, load_source, load_target, retarget_source
    from neurender.retarget.pose_extract import PoseEnvError
    from neurender.retarget.skeleton import MotionFormatError
    from neurender.retarget.smplx_io import SmplxModelError
    from neurender.server.app import local_server
    from neurender.server.registry import RegistryError

    bundle_path = local_bundle(model)
    if bundle_path is None and server is None:
        known = (
            sorted(p.name for p in MODELS_DIR.iterdir() if (p / "model.json").is_file()) if MODELS_DIR.is_dir() else []
        )
        raise UserError(
            f"model {model!r}: not a bundle folder (with model.json), and {MODELS_DIR} has no such model "
            f"(it has: {', '.join(known) or 'none'})"
        )
    try:
        with contextlib.ExitStack() as stack:
            client = (
                stack.enter_context(RenderClient(server, token=token, root_certificates=root_certificates))
                if server
                else None
            )
            if bundle_path is not None:
                description, where = read_bundle(bundle_path).description, f"model bundle {bundle_path}"
            else:
                description, where = client.get_model(model), f"model {model!r} on {server}"
            convention = _pose_convention(description, where)
            size = size or (description.trained_height, description.trained_width)
            problem = check_frame_size(description, *size)
            if problem:
                raise UserError(f"{where}: {problem}")
            try:
                options = options or Options()
                result = retarget_source(
                    load_source(motion, options), load_target(target, options), size, fps, smoothing, yaw_deg
                )
            except (
                MotionFormatError,
                SkeletonMapError,
                SmplxModelError,
                PoseEnvError,
                FileNotFoundError,
                ValueError,
            ) as err:
                raise UserError(str(err)) from None
            keypoints = result.keypoints(convention)[: frames or None]
            if len(keypoints) == 0:
                raise UserError(f"motion {motion} gives no frames")
            if client is None:
                local = stack.enter_context(local_server(bundle_path))
                client = stack.enter_context(RenderClient(local.address))
            with client.session(description.name, size, max_in_flight=in_flight) as session:
                timings = _stream(session, keypoints, convention, size, result.fps, out)
    except (BundleError, RegistryError) as err:
        raise UserError(str(err)) from None
    except NeurenderError as err:
        raise UserError(f"rendering through {server or 'the local server'}: {err}") from None

    n = len(keypoints)
    summary = DanceSummary(
        frames=n, size=tuple(size), fps=result.fps, model=description.name, server=server or "in-process", **timings
    )
    (out / "dance.json").write_text(
        json.dumps(
            {
                **asdict(summary),
                "motion": str(motion),
                "target": str(target),
                "pose_convention": {
                    "skeleton": convention.skeleton,
                    "face": convention.face,
                    "hands": convention.hands,
                    "limb_width": convention.limb_width,
                },
            },
            indent=2,
        )
        + "\n"
    )
    return summary


def _stream(
    session, keypoints: np.ndarray, convention, size: tuple[int, int], fps: float, out: Path
) -> dict[str, float]:
    """Draw each frame's pose map, render it in the session (`in_flight` frames ahead) and write the outputs;
    returns the mean timings."""
    import cv2
    from tqdm import tqdm

    from neurender.common.media import VideoWriter, contact_sheet
    from neurender.retarget.draw import draw_pose_map

    n = len(keypoints)
    for folder in ("frames", "pose"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    sheet_index = set(np.linspace(0, n - 1, min(SHEET_FRAMES, n)).round().astype(int).tolist())
    sheet_maps: list[np.ndarray] = []
    sheet_renders: list[np.ndarray] = []
    inference_ms, round_trip_ms = [], []
    start = time.perf_counter()
    with VideoWriter(out / "dance.mp4", fps=fps) as video, tqdm(total=n, desc="dance", unit="frame") as bar:

        def pose_maps() -> Iterator[tuple[tuple[int, np.ndarray], dict[str, np.ndarray]]]:
            for t in range(n):
                pose_map = draw_pose_map(keypoints[t], size[0], size[1], convention)
                cv2.imwrite(str(out / "pose" / f"{t:06d}.png"), cv2.cvtColor(pose_map, cv2.COLOR_RGB2BGR))
                yield (t, pose_map), {"pose_map": pose_map}

        for (t, pose_map), rendered in session.stream(pose_maps()):
            inference_ms.append(rendered.timings.inference_ms)
            round_trip_ms.append(rendered.latency_ms)
            video.write(np.concatenate((pose_map, rendered.image), axis=1))
            cv2.imwrite(str(out / "frames" / f"{t:06d}.png"), cv2.cvtColor(rendered.image, cv2.COLOR_RGB2BGR))
            if t in sheet_index:
                sheet_maps.append(pose_map)
                sheet_renders.append(rendered.image)
            bar.update()
    wall = time.perf_counter() - start
    captions = [f"#{t}" for t in sorted(sheet_index)]
    cv2.imwrite(
        str(out / "contact_sheet.png"),
        cv2.cvtColor(contact_sheet([sheet_maps, sheet_renders], [captions, captions]), cv2.COLOR_RGB2BGR),
    )
    return {
        "server_inference_ms": float(np.mean(inference_ms)),
        "round_trip_ms": float(np.mean(round_trip_ms)),
        "wall_fps": n / wall,
    }
