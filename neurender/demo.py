"""`neurender demo`: the whole product in one command.

Starts a server on 127.0.0.1 with the bundled demo model, renders the built-in street scene's G-buffers
with the headless renderer, streams them through the client SDK into a stateful session, and writes

    OUT/demo.mp4           coloured labels | neural render, side by side (H.264)
    OUT/contact_sheet.png  every few frames: labels above, neural render below
    OUT/frames/, labels/   every frame as PNG
    OUT/timing.json        G-buffer, server and round-trip times per frame, frames per second

This module sits above the packages (it starts a server and drives the engine side), like the CLI.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neurender.common.args import add_frames_option, add_output_options, parse_size
from neurender.common.errors import UserError

DEMO_MODEL = Path(__file__).resolve().parent / "models" / "demo"
OWNED = ("demo.mp4", "contact_sheet.png", "frames", "labels", "timing.json")


@dataclass
class DemoTiming:
    frames: int
    size: tuple[int, int]
    gbuffer_ms: float  # mean per frame, all passes
    server_inference_ms: float  # mean per frame, the generator step inside the server
    server_total_ms: float  # mean per frame, queue + step + encode inside the server
    round_trip_ms: float  # mean per frame, client send to decoded frame
    wall_fps: float  # frames per second of the whole pipeline


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="render the demo street through a local server into an mp4, a contact sheet and timings",
        description="Start a server with the bundled demo model on 127.0.0.1, render the built-in street "
        "scene's G-buffers headless, stream them through a stateful session and write OUT/demo.mp4 "
        "(labels | neural render), OUT/contact_sheet.png, OUT/frames/ and OUT/timing.json.",
    )
    add_output_options(p, "output folder", default=Path("out/demo"))
    p.add_argument(
        "--model", type=Path, default=DEMO_MODEL, help="model bundle folder (default: the bundled demo model)"
    )
    add_frames_option(p, 48, "frames to render")
    p.add_argument(
        "--size", type=parse_size, default=None, help="HEIGHTxWIDTH (default: the size the model was trained at)"
    )
    p.add_argument("--seed", type=int, default=3, help="street scene seed (default 3)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neurender.common.outputs import prepare_output

    if args.frames < 2:
        raise UserError(f"--frames must be at least 2, got {args.frames}")
    prepare_output(args.out, OWNED, args.overwrite)
    timing = run_demo(args.out, args.model, args.frames, args.size, args.seed)
    print(
        f"{args.out}/demo.mp4, contact_sheet.png, frames/ ({timing.frames} frames at {timing.size[0]}x{timing.size[1]})"
    )
    print(
        f"G-buffer {timing.gbuffer_ms:.1f} ms/frame | server step {timing.server_inference_ms:.1f} ms/frame | "
        f"round trip {timing.round_trip_ms:.1f} ms/frame | {timing.wall_fps:.1f} frames/s end to end"
    )
    return 0


def run_demo(out: Path, model: Path, frames: int, size: tuple[int, int] | None, seed: int) -> DemoTiming:
    """Run the demo end to end and return its timings (also written to OUT/timing.json)."""
    import cv2
    from tqdm import tqdm

    from neurender.common.media import VideoWriter, contact_sheet
    from neurender.engine_plugin.gbuffer.renderer import GBufferFrame, GBufferRenderer
    from neurender.engine_plugin.gbuffer.scenes import street_scene
    from neurender.engine_plugin.gbuffer.stream import colourise, frame_inputs
    from neurender.engine_plugin.sdk.client import NeurenderError, RenderClient
    from neurender.proto.bundle import BundleError, read_bundle
    from neurender.server.app import local_server
    from neurender.server.registry import RegistryError

    if frames < 2:
        raise UserError(f"--frames must be at least 2, got {frames}")
    try:
        bundle = read_bundle(model)
    except BundleError as err:
        raise UserError(f"demo model: {err}") from None
    description = bundle.description
    size = size or (description.trained_height, description.trained_width)
    try:
        server = local_server(model)
    except RegistryError as err:
        raise UserError(str(err)) from None
    scene = street_scene(seed=seed, num_frames=frames)
    wanted = [spec.name for spec in description.inputs]
    out.mkdir(parents=True, exist_ok=True)
    (out / "frames").mkdir(exist_ok=True)
    (out / "labels").mkdir(exist_ok=True)
    gbuffer_s, inference_ms, server_ms, round_trip_ms = [], [], [], []
    sheet_labels, sheet_frames, sheet_captions = [], [], []
    every = max(1, frames // 8)
    start = time.perf_counter()
    try:
        with (
            server,
            RenderClient(server.address) as client,
            client.session(description.name, size, max_in_flight=2) as session,
            GBufferRenderer(*size) as renderer,
            VideoWriter(out / "demo.mp4", fps=scene.fps) as video,
        ):

            def gbuffers() -> Iterator[tuple[tuple[int, GBufferFrame], dict[str, np.ndarray]]]:
                for t in range(frames):
                    began = time.perf_counter()
                    gbuffer = renderer.render(scene, t)
                    gbuffer_s.append(time.perf_counter() - began)
                    yield (t, gbuffer), frame_inputs(gbuffer, wanted, description.max_depth or 100.0)

            results = session.stream(gbuffers())
            for (t, gbuffer), result in tqdm(results, total=frames, desc="demo", unit="frame"):
                inference_ms.append(result.timings.inference_ms)
                server_ms.append(result.timings.total_ms)
                round_trip_ms.append(result.latency_ms)
                labels_rgb = colourise(gbuffer.classes, scene.classes)
                video.write(np.concatenate((labels_rgb, result.image), axis=1))
                cv2.imwrite(str(out / "frames" / f"{t:06d}.png"), cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR))
                cv2.imwrite(str(out / "labels" / f"{t:06d}.png"), cv2.cvtColor(labels_rgb, cv2.COLOR_RGB2BGR))
                if t % every == 0:
                    sheet_labels.append(labels_rgb)
                    sheet_frames.append(result.image)
                    sheet_captions.append(f"#{t}")
    except NeurenderError as err:
        raise UserError(f"demo server refused: {err}") from None
    wall = time.perf_counter() - start
    cv2.imwrite(
        str(out / "contact_sheet.png"),
        cv2.cvtColor(contact_sheet([sheet_labels, sheet_frames], [sheet_captions, sheet_captions]), cv2.COLOR_RGB2BGR),
    )
    timing = DemoTiming(
        frames=frames,
        size=tuple(size),
        gbuffer_ms=1e3 * float(np.mean(gbuffer_s)),
        server_inference_ms=float(np.mean(inference_ms)),
        server_total_ms=float(np.mean(server_ms)),
        round_trip_ms=float(np.mean(round_trip_ms)),
        wall_fps=frames / wall,
    )
    (out / "timing.json").write_text(json.dumps({**asdict(timing), "model": description.name}, indent=2) + "\n")
    return timing
