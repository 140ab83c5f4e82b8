"""What `neurender retarget` writes: pose-map PNGs, OpenPose keypoint JSON, a preview mp4 and a contact sheet.

    OUT/pose/000000.png              pose maps (RGB), drawn by draw_pose_map in the chosen convention
    OUT/keypoints/000000_keypoints.json   the same keypoints, OpenPose JSON
    OUT/parts/000000.png             optional body-part ID maps (uint8, see part_maps.PARTS)
    OUT/preview.mp4                  the pose maps as video (H.264 via PyAV)
    OUT/contact_sheet.png            up to 16 evenly spaced pose maps with their frame numbers
    OUT/retarget.json                what was done: inputs, convention, frame size, rate, camera
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from neurender.proto.neurender.v1 import model_pb2
from neurender.retarget.draw import draw_pose_map
from neurender.retarget.keypoints_io import openpose_frame
from neurender.retarget.part_maps import draw_part_map
from neurender.retarget.pipeline import Retargeted

SHEET_FRAMES = 16


def contact_sheet(frames: list[np.ndarray], labels: list[str], columns: int = 4) -> np.ndarray:
    """Frames [H, W, 3] tiled in a grid with a label in each tile's corner."""
    h, w = frames[0].shape[:2]
    rows = -(-len(frames) // columns)
    sheet = np.zeros((rows * h, columns * w, 3), np.uint8)
    for i, (frame, label) in enumerate(zip(frames, labels)):
        r, c = divmod(i, columns)
        tile = frame.copy()
        cv2.putText(tile, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
    return sheet


def _open_video(path: Path, height: int, width: int, fps: float) -> tuple[av.container.OutputContainer, av.VideoStream]:
    container = av.open(str(path), mode="w")
    rate = Fraction(fps).limit_denominator(1001)
    stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=rate)
    stream.width, stream.height = width + width % 2, height + height % 2  # yuv420p needs even sides
    stream.pix_fmt = "yuv420p"
    return container, stream


def write_outputs(result: Retargeted, convention: model_pb2.PoseConvention, out: Path, summary: dict,
                  part_maps: bool = False) -> None:
    """Draw every frame and write the files listed above."""
    height, width = result.size
    keypoints = result.keypoints(convention)
    n = keypoints.shape[0]
    for folder in ("pose", "keypoints") + (("parts",) if part_maps else ()):
        (out / folder).mkdir(parents=True, exist_ok=True)
    sheet_index = set(np.linspace(0, n - 1, min(SHEET_FRAMES, n)).round().astype(int).tolist())
    sheet: list[np.ndarray] = []
    container, stream = _open_video(out / "preview.mp4", height, width, result.fps)
    try:
        for f in tqdm(range(n), desc="pose maps", unit="frame"):
            pose_map = draw_pose_map(keypoints[f], height, width, convention)
            cv2.imwrite(str(out / "pose" / f"{f:06d}.png"), cv2.cvtColor(pose_map, cv2.COLOR_RGB2BGR))
            (out / "keypoints" / f"{f:06d}_keypoints.json").write_text(json.dumps(openpose_frame(keypoints[f], convention)))
            if part_maps:
                depth = result.depth[f] if result.depth is not None else None
                cv2.imwrite(str(out / "parts" / f"{f:06d}.png"), draw_part_map(result.body[f], height, width, depth))
            padded = np.pad(pose_map, ((0, stream.height - height), (0, stream.width - width), (0, 0)))
            for packet in stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")):
                container.mux(packet)
            if f in sheet_index:
                sheet.append(pose_map)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    labels = [f"#{i}" for i in sorted(sheet_index)]
    cv2.imwrite(str(out / "contact_sheet.png"), cv2.cvtColor(contact_sheet(sheet, labels), cv2.COLOR_RGB2BGR))
    (out / "retarget.json").write_text(json.dumps(summary, indent=2) + "\n")
