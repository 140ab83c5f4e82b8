"""G-buffer cost beside the generator step: is the renderer cheap enough to sit in front of the network?

    python -m neurender.bench.gbuffer [--sizes 256x256 256x512] [--frames 24] [--rounds 3] [--threads 2] [--photo]

For each frame size (HEIGHTxWIDTH), renders the built-in street scene with the G-buffer renderer (class IDs,
instance IDs, depth, motion vectors and visibility: everything one render() returns without the photo pass)
and times it per frame in order (the sequence --rounds times over: the machine may be shared, so the median
and the best frame are both printed), then times the tiny generators' step (exported through a model bundle, run
by the server's ONNX Runtime CPU backend) at the same size, fed with those rendered frames. Prints the table and the ratio;
the goal is a G-buffer under 10% of the step. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from neurender.bench.generator_speed import time_call
from neurender.bench.street_inputs import step_feed
from neurender.common.args import parse_size
from neurender.engine_plugin.gbuffer.renderer import GBufferFrame, GBufferRenderer
from neurender.engine_plugin.gbuffer.scenes import street_scene
from neurender.server.backends import OrtBackend
from neurender.training.model.bundle_export import BundleInfo, export_bundle
from neurender.training.model.config import PRESETS
from neurender.training.model.generator import Vid2VidGenerator

GOAL = 0.10


def time_gbuffer(
    height: int, width: int, frames: int, rounds: int, photo: bool
) -> tuple[float, float, float, list[GBufferFrame]]:
    """(median ms per frame, best ms per frame, first-frame ms including scene upload, the rendered frames)."""
    scene = street_scene(seed=0, num_frames=frames)
    with GBufferRenderer(height, width) as renderer:
        start = time.perf_counter()
        rendered = [renderer.render(scene, 0, photo=photo)]
        first = time.perf_counter() - start
        times = []
        for _ in range(rounds):
            for t in range(1, frames):
                start = time.perf_counter()
                frame = renderer.render(scene, t, photo=photo)
                times.append(time.perf_counter() - start)
                if len(rendered) < frames:
                    rendered.append(frame)
    return 1e3 * float(np.median(times)), 1e3 * min(times), 1e3 * first, rendered


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[(256, 256), (256, 512)], help="HEIGHTxWIDTH")
    parser.add_argument("--frames", type=int, default=24, help="frames of the street to render per size")
    parser.add_argument("--rounds", type=int, default=3, help="times to render the sequence (frames 1.. in order)")
    parser.add_argument("--configs", nargs="+", default=["tiny", "tiny-engine"], choices=sorted(PRESETS))
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument(
        "--photo", action="store_true", help="also time the shaded photo pass (not part of the G-buffer)"
    )
    args = parser.parse_args(argv)
    if args.frames < 2 or args.rounds < 1:
        parser.error(
            f"--frames {args.frames} --rounds {args.rounds}: need at least 2 frames (frame 0 is not timed) and 1 round"
        )

    torch.manual_seed(0)
    sessions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            generator = Vid2VidGenerator(PRESETS[name]).eval()
            bundle = export_bundle(generator, f"{tmp}/{name}", BundleInfo(name=name), include_torch=False)
            sessions[name] = (PRESETS[name], OrtBackend(bundle.onnx_path, ("CPUExecutionProvider",), args.threads))

    print(
        f"street scene, {args.frames} frames per size; the server's CPU backend, {args.threads} threads; goal: G-buffer < {GOAL:.0%} of the step\n"
    )
    header = f"{'size (HxW)':<12}{'G-buffer ms':>12}{'best ms':>9}{'1st frame ms':>13}" + "".join(
        f"{name + ' step ms':>20}{'ratio':>8}" for name in sessions
    )
    if args.photo:
        header += f"{'photo ms':>10}"
    print(header)
    print("-" * len(header))
    for height, width in args.sizes:
        gbuffer_ms, best_ms, first_ms, frames = time_gbuffer(height, width, args.frames, args.rounds, photo=False)
        row = f"{f'{height}x{width}':<12}{gbuffer_ms:>12.1f}{best_ms:>9.1f}{first_ms:>13.1f}"
        for cfg, session in sessions.values():
            feed = step_feed(cfg, frames)
            step_ms = 1e3 * time_call(lambda: session.run(feed))
            ratio = gbuffer_ms / step_ms
            row += f"{step_ms:>20.1f}{ratio:>7.1%}{'' if ratio < GOAL else '!'}"
        if args.photo:
            with_photo, _, _, _ = time_gbuffer(height, width, min(args.frames, 6), 1, photo=True)
            row += f"{with_photo - gbuffer_ms:>10.1f}"
        print(row)
    print(
        "\n'!' marks a ratio over the goal. G-buffer ms: class + instance IDs, depth, motion and visibility of one frame, "
        "rendered in order (median; best: the fastest frame); 1st frame adds uploading the scene."
    )


if __name__ == "__main__":
    main()
