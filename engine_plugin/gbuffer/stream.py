"""Stream a scene's G-buffer frames to a neurender server through the client SDK, and write the results.

    from neurender.engine_plugin.sdk.client import RenderClient
    with RenderClient(address) as client, client.session("street", (128, 128)) as session, \\
            GBufferRenderer(128, 128) as renderer:
        for frame, rgb in stream_scene(session, renderer, scene):
            ...

Frames are pipelined (the session's max_in_flight), so rendering the next G-buffer overlaps the server's
step. Each frame carries the inputs the model declares (labels, and instances, depth, motion if it takes
them); depth's background (inf) is sent as the model's max_depth.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from neurender.engine_plugin.gbuffer.renderer import GBufferFrame, GBufferRenderer
from neurender.engine_plugin.gbuffer.scene import Scene
from neurender.engine_plugin.sdk.client import Session
from neurender.proto.classes import ClassInfo

GBUFFER_INPUTS = ("labels", "instances", "depth", "motion")


def frame_inputs(frame: GBufferFrame, wanted: Iterable[str], max_depth: float) -> dict[str, np.ndarray]:
    """The wire inputs of one G-buffer frame, limited to what the model takes."""
    wanted = set(wanted)
    unknown = wanted - set(GBUFFER_INPUTS)
    if unknown:
        raise ValueError(
            f"the model wants input(s) {sorted(unknown)} a G-buffer does not have (it has {', '.join(GBUFFER_INPUTS)})"
        )
    inputs = {
        "labels": frame.classes,
        "instances": frame.instances,
        "motion": frame.motion,
        "depth": np.where(np.isinf(frame.depth), np.float16(max_depth), frame.depth),
    }
    return {k: v for k, v in inputs.items() if k in wanted}


def stream_scene(
    session: Session,
    renderer: GBufferRenderer,
    scene: Scene,
    frames: Iterable[int] | None = None,
    progress: bool = False,
) -> Iterator[tuple[GBufferFrame, np.ndarray]]:
    """(G-buffer frame, neural RGB uint8 [H, W, 3]) for each frame of `scene`, in order."""
    model = session.model
    wanted = [spec.name for spec in model.inputs]
    max_depth = model.max_depth or 100.0
    indices = list(range(scene.num_frames) if frames is None else frames)

    def gbuffers() -> Iterator[tuple[GBufferFrame, dict[str, np.ndarray]]]:
        for t in indices:
            frame = renderer.render(scene, t)
            yield frame, frame_inputs(frame, wanted, max_depth)

    with tqdm(total=len(indices), desc="stream", unit="frame", disable=not progress) as bar:
        for frame, result in session.stream(gbuffers()):
            bar.update(1)
            yield frame, result.image


def colourise(classes: np.ndarray, table: tuple[ClassInfo, ...]) -> np.ndarray:
    """Class IDs -> RGB uint8 with the class table's colours (unknown IDs black)."""
    palette = np.zeros((int(max(c.id for c in table)) + 1, 3), np.uint8)
    for c in table:
        palette[c.id] = c.color
    return palette[np.minimum(classes, len(palette) - 1)]


def write_results(
    out: str | Path, results: Iterable[tuple[GBufferFrame, np.ndarray]], classes: tuple[ClassInfo, ...]
) -> int:
    """Write out/frames/NNNNNN.png (neural render) and out/labels/NNNNNN.png (coloured labels); returns the count."""
    out = Path(out)
    (out / "frames").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    count = 0
    for frame, rgb in results:
        cv2.imwrite(str(out / "frames" / f"{frame.index:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(
            str(out / "labels" / f"{frame.index:06d}.png"),
            cv2.cvtColor(colourise(frame.classes, classes), cv2.COLOR_RGB2BGR),
        )
        count += 1
    return count


__all__ = ["colourise", "frame_inputs", "stream_scene", "write_results"]
