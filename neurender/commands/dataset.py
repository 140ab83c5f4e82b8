"""`neurender dataset check | synth | dance-synth | from-video`: validate, render and convert paired video datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

from neurender.common.args import parse_size
from neurender.common.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    dataset = subparsers.add_parser(
        "dataset",
        help="check, synthesise or convert paired video datasets",
        description="Paired video datasets (docs/dataset_format.md).",
    )
    sub = dataset.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND", required=True)

    check = sub.add_parser(
        "check",
        help="validate a dataset folder and name every problem",
        description="Read every file of a dataset and list every problem; exit 1 if there are any.",
    )
    check.add_argument("dir", type=Path, help="dataset folder (holding dataset.json)")
    check.set_defaults(handler=run_check)

    synth = sub.add_parser(
        "synth",
        help="render the procedural street into a dataset",
        description="Render seeded street scenes with the G-buffer renderer: class and instance "
        "IDs, depth, exact backward motion and a shaded photo pass as the target.",
    )
    synth.add_argument("--out", type=Path, required=True, help="new dataset folder")
    synth.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    synth.add_argument("--sequences", type=int, default=8, help="number of sequences (default 8)")
    synth.add_argument("--frames", type=int, default=30, help="frames per sequence (default 30)")
    synth.add_argument("--size", type=parse_size, default=(128, 128), help="HEIGHTxWIDTH (default 128x128)")
    synth.add_argument("--seed", type=int, default=0, help="scene seed; the same seed gives the same files (default 0)")
    synth.add_argument("--fps", type=float, default=10.0, help="frame rate of the camera path (default 10)")
    synth.set_defaults(handler=run_synth)

    dance = sub.add_parser(
        "dance-synth",
        help="render a clothed body dancing mocap clips into pose-to-body pairs",
        description="Retarget mocap clips onto a target skeleton, render a textured, clothed body "
        "performing them with the G-buffer renderer (fixed camera per sequence) and "
        "write pose pairs: BODY_25 keypoints (drawn as pose maps in the convention "
        "dataset.json names) and the body's photo pass, with exact motion.",
    )
    dance.add_argument("--out", type=Path, required=True, help="new dataset folder")
    dance.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    dance.add_argument(
        "--motions",
        type=Path,
        nargs="+",
        default=None,
        help="motion files (BVH, DeepMimic clips) or folders of them (default: the repository's "
        "tests/data/mocap clips)",
    )
    dance.add_argument("--sequences", type=int, default=8, help="sequences per motion (default 8)")
    dance.add_argument("--frames", type=int, default=24, help="frames per sequence, at most a clip's (default 24)")
    dance.add_argument("--size", type=parse_size, default=(128, 128), help="HEIGHTxWIDTH (default 128x128)")
    dance.add_argument("--fps", type=float, default=15.0, help="frame rate the clips are resampled to (default 15)")
    dance.add_argument(
        "--target",
        type=Path,
        default=None,
        help="target skeleton giving the body's proportions (default: the DeepMimic humanoid)",
    )
    dance.add_argument("--seed", type=int, default=0, help="the same seed gives the same files (default 0)")
    dance.set_defaults(handler=run_dance_synth)

    video = sub.add_parser(
        "from-video",
        help="turn footage into edge or pose pairs with optical flow",
        description="Frames, Canny edges or pose keypoints, and backward DIS optical flow with a "
        "forward-backward consistency mask, from a video file.",
    )
    video.add_argument("video", type=Path, help="video file (anything FFmpeg reads)")
    video.add_argument(
        "--out", type=Path, required=True, help="dataset folder (a sequence named after the video is added)"
    )
    video.add_argument("--modality", choices=("edges", "pose"), required=True, help="generator input to extract")
    video.add_argument(
        "--size",
        type=parse_size,
        default=None,
        help="scale frames to cover HEIGHTxWIDTH (aspect kept) and centre-crop the rest (default: as is)",
    )
    video.add_argument(
        "--max-side",
        type=int,
        default=None,
        metavar="PIXELS",
        help="scale larger frames so the longer side is PIXELS, both sides cropped to multiples of 4",
    )
    video.add_argument(
        "--person",
        type=int,
        default=0,
        metavar="K",
        help="pose: in footage with several people, track the K-th largest when first seen (default 0)",
    )
    video.add_argument("--start", type=int, default=0, help="first frame to take (default 0)")
    video.add_argument("--frames", type=int, default=0, help="number of frames (default 0: to the end)")
    video.set_defaults(handler=run_from_video)


def run_check(args: argparse.Namespace) -> int:
    from neurender.training.dataset_check import check_dataset

    problems = check_dataset(args.dir, progress=True)
    for problem in problems:
        print(problem)
    print(f"{args.dir}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def _prepare(out: Path, overwrite: bool) -> None:
    """The rule of every command that writes (neurender.common.outputs): an earlier dataset in --out (dataset.json
    and its sequence folders) is refused, or replaced with --overwrite."""
    from neurender.common.outputs import prepare_output
    from neurender.training.dataset import sequence_dirs

    owned = ["dataset.json", *(d.name for d in sequence_dirs(out))] if (out / "dataset.json").exists() else []
    prepare_output(out, owned, overwrite)


def _check_size(size: tuple[int, int]) -> None:
    """Refuse, before rendering, a frame size no model trained on the dataset could render (the default
    generator's rule; a preset with more downsampling needs larger multiples)."""
    from neurender.training.model.config import GeneratorConfig, frame_size_problem

    problem = frame_size_problem(*size, GeneratorConfig().multiple_of)
    if problem:
        raise UserError(f"--size {size[0]}x{size[1]}: a model trained on it could not render it: {problem}")


def run_synth(args: argparse.Namespace) -> int:
    from neurender.training.synth import make_synth_dataset

    if args.sequences < 1 or args.frames < 1:
        raise UserError(f"--sequences and --frames must be at least 1 (got {args.sequences}, {args.frames})")
    _check_size(args.size)
    _prepare(args.out, args.overwrite)
    meta = make_synth_dataset(args.out, args.sequences, args.frames, args.size, seed=args.seed, fps=args.fps)
    print(
        f"{args.out}: {args.sequences} sequences x {args.frames} frames at {meta.size[0]}x{meta.size[1]}, "
        f"{len(meta.classes)} classes"
    )
    return 0


def run_dance_synth(args: argparse.Namespace) -> int:
    from neurender.training.dance_synth import DEFAULT_TARGET, make_dance_dataset, motion_files

    if args.sequences < 1 or args.frames < 1 or args.fps <= 0:
        raise UserError(
            f"--sequences and --frames must be at least 1 and --fps positive (got {args.sequences}, "
            f"{args.frames}, {args.fps})"
        )
    _check_size(args.size)
    _prepare(args.out, args.overwrite)
    try:
        motions = motion_files(args.motions)
        meta = make_dance_dataset(
            args.out,
            motions,
            args.size,
            args.frames,
            args.sequences,
            args.seed,
            args.fps,
            args.target or DEFAULT_TARGET,
        )
    except (FileNotFoundError, ValueError) as err:  # MotionFormatError and SkeletonMapError are ValueErrors
        raise UserError(str(err)) from None
    print(
        f"{args.out}: {len(motions)} motion(s) x {args.sequences} sequences at {meta.size[0]}x{meta.size[1]}, "
        f"{meta.fps:g} fps, pose convention {meta.extra['pose_convention']['skeleton']}"
    )
    return 0


def run_from_video(args: argparse.Namespace) -> int:
    from neurender.training.dataset import read_meta
    from neurender.training.from_video import VideoError, video_to_dataset

    if (args.out / "dataset.json").exists():
        meta = read_meta(args.out)
        if meta.modality != args.modality:
            raise UserError(f"{args.out} is a {meta.modality} dataset; cannot add {args.modality} sequences")
    if (args.out / args.video.stem).exists():
        raise UserError(f"{args.out / args.video.stem} exists; choose another --out or rename the video")
    if args.start < 0 or args.frames < 0:
        raise UserError("--start and --frames must not be negative")
    if args.person < 0:
        raise UserError(f"--person {args.person}: expected 0 (the largest person) or more")
    if args.max_side is not None and (args.max_side < 8 or args.size is not None):
        raise UserError(f"--max-side {args.max_side}: expected at least 8 pixels, and not together with --size")
    if args.size is not None:
        _check_size(args.size)
    try:
        meta = video_to_dataset(
            args.video,
            args.out,
            args.modality,
            size=args.size,
            start=args.start,
            frames=args.frames,
            max_side=args.max_side,
            person=args.person,
        )
    except VideoError as err:
        raise UserError(str(err)) from None
    source = meta.extra["source"]
    nobody = f", {source['frames_without_person']} of them with nobody detected" if args.modality == "pose" else ""
    print(
        f"{args.out / args.video.stem}: {source['frames']} {args.modality} pairs at {meta.size[0]}x{meta.size[1]}, "
        f"{meta.fps:g} fps{nobody}"
    )
    return 0
