"""CLI: `neurender retarget` (motion onto a target person, drawn as pose maps) and `neurender pose-env`."""

from __future__ import annotations

import argparse
from pathlib import Path

from neurender.common.args import add_frames_option, add_output_options, parse_size

OWNED = ("pose", "keypoints", "parts", "preview.mp4", "contact_sheet.png", "retarget.json")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "retarget",
        help="put a motion onto a target person and draw it as pose maps",
        description="Map a motion (BVH, DeepMimic clip, SMPL-X .npz, OpenPose/MediaPipe keypoints or a video) onto a "
        "target person (a skeleton file, or the target's keypoints or footage) and write pose maps "
        "(PNG), OpenPose keypoint JSON, a preview mp4 and a contact sheet.",
    )
    p.add_argument(
        "--motion",
        required=True,
        type=Path,
        help="the motion: .bvh, DeepMimic .txt/.json, SMPL-X .npz, "
        "OpenPose JSON file or folder, MediaPipe JSON, or a video",
    )
    p.add_argument(
        "--target",
        required=True,
        type=Path,
        help="the target person: a skeleton (.bvh, DeepMimic .urdf or "
        "clip, SMPL-X .npz) or their keypoints (OpenPose JSON, MediaPipe JSON) or footage (video)",
    )
    add_output_options(p, "output folder")
    p.add_argument(
        "--size",
        type=lambda text: parse_size(text, 8),
        help="frame size HEIGHTxWIDTH (default: the target footage's, the bundle's, or 256x256)",
    )
    p.add_argument("--bundle", type=Path, help="draw in this model bundle's pose convention (and its trained size)")
    p.add_argument(
        "--skeleton", choices=("body25", "coco18"), default="body25", help="pose convention skeleton (without --bundle)"
    )
    p.add_argument("--face", action="store_true", help="draw face keypoints (without --bundle)")
    p.add_argument("--hands", action="store_true", help="draw hand keypoints (without --bundle)")
    p.add_argument("--limb-width", type=int, default=3, help="limb width in pixels (without --bundle)")
    p.add_argument(
        "--print-joint-map",
        action=_PrintJointMap,
        metavar="MOTION",
        help="write the best joint map for MOTION's skeleton (a .bvh) as YAML to edit for --map, and exit",
    )
    p.add_argument(
        "--map",
        type=Path,
        help="joint map YAML for a motion skeleton that is not CMU, Mixamo, DeepMimic, SMPL-X or recognised "
        "by its joint names (see --print-joint-map)",
    )
    p.add_argument("--target-map", type=Path, help="joint map YAML for the target's skeleton, likewise")
    p.add_argument("--smplx-model", type=Path, help="SMPL-X model file or folder (for .npz clips; not shipped)")
    p.add_argument(
        "--fps", type=float, default=30.0, help="frame rate the motion is resampled to (default 30, as dance)"
    )
    add_frames_option(p, 0, "write at most this many frames (0: the whole motion)")
    p.add_argument("--smooth", choices=("none", "median", "one-euro"), default="none", help="temporal smoothing")
    p.add_argument("--yaw", type=float, default=0.0, help="turn the camera about the performer by this many degrees")
    p.add_argument("--part-maps", action="store_true", help="also write body-part ID maps")
    p.add_argument("--max-video-frames", type=int, default=0, help="read at most this many frames of a video (0: all)")
    p.add_argument(
        "--person",
        type=int,
        default=0,
        metavar="K",
        help="in footage with several people, track the K-th largest when first seen (default 0: the largest)",
    )
    p.add_argument("--pose-env", type=Path, help="MediaPipe environment (default: .venv-pose or $NEURENDER_POSE_ENV)")
    p.set_defaults(handler=run_retarget)

    e = subparsers.add_parser(
        "pose-env",
        help="create the MediaPipe environment used for pose extraction from footage",
        description="Create a separate virtual environment with mediapipe==0.10.14 (needs numpy<2 and protobuf<5, "
        "so it cannot share neurender's). Downloads about 150 MB from the package index.",
    )
    e.add_argument(
        "--path", type=Path, help="where (default: .venv-pose at the repository root or $NEURENDER_POSE_ENV)"
    )
    e.set_defaults(handler=run_pose_env)


class _PrintJointMap(argparse.Action):
    """Runs as soon as it is parsed (like --help), so --motion, --target and --out are not needed."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        value: object,
        option_string: str | None = None,
    ) -> None:
        from neurender.retarget.bvh import load_bvh
        from neurender.retarget.joint_names import joint_map_yaml
        from neurender.retarget.skeleton import MotionFormatError

        path = Path(str(value))
        if path.suffix.lower() != ".bvh":
            parser.exit(
                2,
                f"neurender retarget: --print-joint-map {path}: expected a .bvh file (the other motion "
                "kinds have fixed skeletons)\n",
            )
        try:
            skeleton = load_bvh(path).skeleton
        except MotionFormatError as err:
            parser.exit(2, f"neurender retarget: {err}\n")
        print(joint_map_yaml(skeleton.names, skeleton.parents, str(path)), end="")
        parser.exit(0)


def _convention(args: argparse.Namespace):  # -> (PoseConvention, trained size or None)
    from neurender.common.errors import UserError
    from neurender.proto.bundle import BundleError, read_bundle
    from neurender.proto.neurender.v1 import model_pb2

    if args.bundle is None:
        if args.limb_width < 1:
            raise UserError(f"--limb-width {args.limb_width}: expected >= 1")
        return model_pb2.PoseConvention(
            skeleton=args.skeleton, face=args.face, hands=args.hands, limb_width=args.limb_width
        ), None
    try:
        bundle = read_bundle(args.bundle)
    except BundleError as err:
        raise UserError(str(err)) from None
    d = bundle.description
    if d.modality != model_pb2.POSE or not d.HasField("pose"):
        raise UserError(
            f"bundle {args.bundle} is not a pose model (modality {model_pb2.Modality.Name(d.modality)}); expected POSE with a pose convention"
        )
    size = (d.trained_height, d.trained_width) if d.trained_height and d.trained_width else None
    return d.pose, size


def run_retarget(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from neurender.common.errors import UserError
    from neurender.common.outputs import prepare_output
    from neurender.retarget.canonical import SkeletonMapError, load_joint_map
    from neurender.retarget.outputs import write_outputs
    from neurender.retarget.pipeline import Options, load_source, load_target, retarget_source
    from neurender.retarget.pose_extract import PoseEnvError
    from neurender.retarget.skeleton import MotionFormatError
    from neurender.retarget.smplx_io import SmplxModelError

    if args.frames < 0:
        raise UserError(f"--frames {args.frames}: expected 0 (the whole motion) or more")
    if args.person < 0:
        raise UserError(f"--person {args.person}: expected 0 (the largest person) or more")
    if args.fps is not None and not args.fps > 0:
        raise UserError(f"--fps {args.fps:g}: expected a positive frame rate")
    convention, bundle_size = _convention(args)
    try:
        options = Options(
            load_joint_map(args.map) if args.map else None,
            load_joint_map(args.target_map) if args.target_map else None,
            args.smplx_model,
            args.pose_env,
            args.max_video_frames,
            args.person,
        )
        source = load_source(args.motion, options)
        target = load_target(args.target, options)
        size = args.size or target.size or bundle_size or (256, 256)
        result = retarget_source(source, target, size, args.fps, args.smooth, args.yaw)
    except (MotionFormatError, SkeletonMapError, SmplxModelError, PoseEnvError, FileNotFoundError, ValueError) as err:
        raise UserError(str(err)) from None
    if args.frames:
        cut = slice(0, args.frames)
        result = replace(
            result,
            body=result.body[cut],
            extras=result.extras[cut],
            depth=None if result.depth is None else result.depth[cut],
            points3d=None if result.points3d is None else result.points3d[cut],
        )
    summary = {
        "motion": str(args.motion),
        "target": str(args.target),
        "frames": int(result.body.shape[0]),
        "fps": result.fps,
        "height": size[0],
        "width": size[1],
        "pose_convention": {
            "skeleton": convention.skeleton,
            "face": convention.face,
            "hands": convention.hands,
            "limb_width": convention.limb_width,
        },
        "placed_as_target_footage": target.placement is not None,
        "camera": None
        if result.camera is None
        else {
            "focal_px": result.camera.focal,
            "principal_point_px": list(result.camera.centre),
            "world_to_camera": result.camera.rotation.round(6).tolist(),
            "position": result.camera.position.round(6).tolist(),
        },
    }
    prepare_output(args.out, OWNED, args.overwrite)
    write_outputs(result, convention, args.out, summary, part_maps=args.part_maps)
    print(f"{summary['frames']} frames at {result.fps:g} fps, {size[0]}x{size[1]} -> {args.out}")
    return 0


def run_pose_env(args: argparse.Namespace) -> int:
    from neurender.retarget.pose_extract import create_pose_env, default_env_path

    env = args.path or default_env_path()
    python = create_pose_env(env)
    print(f"pose environment ready: {python}")
    return 0
