"""`neurender render-video`: render a folder of label images through a server into an mp4."""

from __future__ import annotations

import argparse
from pathlib import Path

from neurender.common.args import add_model_option, add_server_options
from neurender.local_render import MODELS_DIR


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render-video",
        help="render a folder of label PNGs through a neurender server into an H.264 mp4",
        description="Render label images (sorted by file name) as one session through a server (a private local "
        "one with --model unless --server is given), so every "
        "frame follows from the ones before it, and write the frames to an mp4. Single-channel PNGs are "
        "class IDs (or edge maps); colour PNGs are pose maps, or label maps in the model's class colours.",
    )
    parser.add_argument("--labels", required=True, type=Path, metavar="DIR", help="folder of label PNGs")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="the mp4 to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    add_server_options(parser)
    add_model_option(parser, None, MODELS_DIR)
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the video (default %(default)s)")
    parser.add_argument("--style-seed", type=int, default=0, help="style pick, for models with style codes")
    parser.add_argument(
        "--remap",
        type=Path,
        metavar="FILE",
        help="YAML/JSON mapping of the images' class IDs (any "
        "UINT16 value, e.g. a foreign dataset's) or class names onto the model's class IDs or names",
    )
    parser.add_argument(
        "--in-flight", type=int, default=4, help="frames sent ahead of the results (default %(default)s)"
    )
    parser.set_defaults(handler=render_video)


def render_video(args: argparse.Namespace) -> int:

    from tqdm import tqdm

    from neurender.common.args import read_credentials
    from neurender.common.errors import UserError
    from neurender.common.media import VideoWriter
    from neurender.common.outputs import prepare_output_file
    from neurender.engine_plugin.sdk.client import FrameRejected, NeurenderError
    from neurender.engine_plugin.sdk.label_images import LabelImageError, read_label_image
    from neurender.engine_plugin.sdk.label_remap import load_label_remap
    from neurender.local_render import connect

    paths = sorted(args.labels.glob("*.png")) if args.labels.is_dir() else []
    if not paths:
        raise UserError(f"{args.labels}: no .png label images found")
    if args.in_flight < 1:
        raise UserError(f"--in-flight is {args.in_flight}, expected at least 1")
    if args.out.is_dir():
        raise UserError(f"--out {args.out}: is a folder; expected the path of an .mp4 file to write")
    if args.out.suffix.lower() != ".mp4":
        raise UserError(f"--out {args.out}: render-video writes H.264 mp4 video; expected a file name ending in .mp4")
    prepare_output_file(args.out, args.overwrite)
    token, roots = read_credentials(args)
    try:
        with connect(args.server, args.model, token, roots) as (client, model):
            description = client.get_model(model)
            remap = load_label_remap(args.remap, description) if args.remap else None
            first = read_label_image(paths[0], description)
            height, width = next(iter(first.values())).shape[:2]
            with (
                client.session(
                    model, (height, width), style_seed=args.style_seed, max_in_flight=args.in_flight, label_remap=remap
                ) as session,
                VideoWriter(args.out, fps=args.fps) as video,
                tqdm(total=len(paths), desc="render-video", unit="frame") as bar,
            ):
                frames = ((path, read_label_image(path, description)) for path in paths)
                results = session.stream(frames)
                for path in paths:
                    try:
                        _, result = next(results)
                    except FrameRejected as err:
                        raise UserError(f"{path}: {err.message}") from None
                    video.write(result.image)
                    bar.update()
    except (NeurenderError, LabelImageError, ValueError) as err:
        raise UserError(str(err)) from None
    print(f"wrote {video.frames} frames ({width}x{height}) to {args.out}")
    return 0
