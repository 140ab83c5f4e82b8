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
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from neurender.common.media import VideoWriter, contact_sheet
from neurender.proto.neurender.v1 import model_pb2
from neurender.retarget.draw import draw_pose_map
from neurender.retarget.keypoints_io import openpose_frame
from neurender.retarget.part_maps import draw_part_map
from neurender.retarget.pipeline import Retargeted

SHEET_FRAMES = 16
SHEET_COLUMNS = 4


def write_outputs(
    result: Retargeted, convention: model_pb2.PoseConvention, out: Path, summary: dict, part_maps: bool = False
) -> None:
    """Draw every frame and write the files listed above."""
    height, width = result.size
    keypoints = result.keypoints(convention)
    n = keypoints.shape[0]
    for folder in ("pose", "keypoints") + (("parts",) if part_maps else ()):
        (out / folder).mkdir(parents=True, exist_ok=True)
    sheet_index = set(np.linspace(0, n - 1, min(SHEET_FRAMES, n)).round().astype(int).tolist())
    sheet: list[np.ndarray] = []
    with VideoWriter(out / "preview.mp4", fps=result.fps) as video:
        for f in tqdm(range(n), desc="pose maps", unit="frame"):
            pose_map = draw_pose_map(keypoints[f], height, width, convention)
            cv2.imwrite(str(out / "pose" / f"{f:06d}.png"), cv2.cvtColor(pose_map, cv2.COLOR_RGB2BGR))
            (out / "keypoints" / f"{f:06d}_keypoints.json").write_text(
                json.dumps(openpose_frame(keypoints[f], convention))
            )
            if part_maps:
                depth = result.depth[f] if result.depth is not None else None
                cv2.imwrite(str(out / "parts" / f"{f:06d}.png"), draw_part_map(result.body[f], height, width, depth))
            video.write(pose_map)
            if f in sheet_index:
                sheet.append(pose_map)
    captions = [f"#{i}" for i in sorted(sheet_index)]
    rows = [sheet[i : i + SHEET_COLUMNS] for i in range(0, len(sheet), SHEET_COLUMNS)]
    caption_rows = [captions[i : i + SHEET_COLUMNS] for i in range(0, len(captions), SHEET_COLUMNS)]
    cv2.imwrite(str(out / "contact_sheet.png"), cv2.cvtColor(contact_sheet(rows, caption_rows), cv2.COLOR_RGB2BGR))
    (out / "retarget.json").write_text(json.dumps(summary, indent=2) + "\n")
