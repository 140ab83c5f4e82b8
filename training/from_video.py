"""`neurender dataset from-video`: real footage -> paired frames for edge-to-video or pose-to-video.

Per frame: images/ (the footage), the modality's input (edges/: Canny edges; poses/: keypoints from the
MediaPipe pose environment of neurender.retarget), flow/ (backward optical flow by OpenCV's DIS: pixel p of
frame t came from p + flow in frame t-1) and flow_valid/ (forward-backward consistent flow, the confidence
mask for flow losses and occlusion-aware metrics). Frame 0 has zero flow and an empty mask.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from neurender.common.errors import UserError
from neurender.training.dataset import DatasetMeta, SequenceWriter, write_meta

CANNY_THRESHOLDS = (50, 150)


class VideoError(UserError, ValueError):
    """The video cannot be read as asked; the message names the file."""


def read_frames(video: Path, start: int = 0, count: int = 0) -> Iterator[np.ndarray]:
    """RGB uint8 frames [H, W, 3] of `video` from frame `start`, at most `count` (0: to the end), via PyAV."""
    import av

    try:
        container = av.open(str(video))
    except (av.error.FFmpegError, OSError) as err:
        raise VideoError(f"{video}: cannot open as a video ({err})") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{video}: has no video stream")
        emitted = 0
        for i, frame in enumerate(container.decode(video=0)):
            if i < start:
                continue
            if count and emitted >= count:
                break
            yield frame.to_ndarray(format="rgb24")
            emitted += 1


def canny_edges(rgb: np.ndarray, thresholds: tuple[int, int] = CANNY_THRESHOLDS) -> np.ndarray:
    """uint8 [H, W] edge map (255 on edges) of a lightly blurred grey frame."""
    grey = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (3, 3), 0)
    return cv2.Canny(grey, *thresholds)


class BackwardFlow:
    """DIS optical flow between consecutive grey frames, backward (t -> t-1), with a consistency mask."""

    def __init__(self) -> None:
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow float32 [H, W, 2], valid bool [H, W]) for grey uint8 frames t-1 and t.

        valid: following the backward flow to frame t-1 and the forward flow back lands within
        0.01 * (|b|^2 + |f|^2) + 0.5 px of the start (Sundaram et al. 2010)."""
        backward = self.dis.calc(current, previous, None)
        forward = self.dis.calc(previous, current, None)
        h, w = current.shape
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        forward_there = cv2.remap(forward, gx + backward[..., 0], gy + backward[..., 1], cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=(np.nan, np.nan))
        loop = backward + forward_there
        bound = 0.01 * ((backward ** 2).sum(-1) + (forward_there ** 2).sum(-1)) + 0.5
        valid = np.isfinite(loop).all(-1) & ((np.nan_to_num(loop, nan=1e9) ** 2).sum(-1) < bound)
        return backward, valid


def video_to_dataset(video: str | Path, out: str | Path, modality: str, size: tuple[int, int] | None = None,
                     start: int = 0, frames: int = 0, progress: bool = True,
                     canny: tuple[int, int] = CANNY_THRESHOLDS) -> DatasetMeta:
    """Write one sequence (named after the video) of paired frames into the dataset folder `out`."""
    if modality not in ("edges", "pose"):
        raise ValueError(f"modality {modality!r}: from-video makes 'edges' or 'pose' datasets")
    video, out = Path(video), Path(out)
    if not video.is_file():
        raise VideoError(f"{video}: no such file")
    poses = _extract_poses(video, start, frames) if modality == "pose" else None
    fps = _frame_rate(video)
    writer = SequenceWriter(out, video.stem)
    flow = BackwardFlow()
    previous_grey = None
    shape = None
    for t, rgb in enumerate(tqdm(read_frames(video, start, frames), desc=f"from-video {video.name}", unit="frame",
                                 total=frames or None, disable=not progress)):
        source_hw = rgb.shape[:2]
        if size is not None and source_hw != size:
            rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        shape = rgb.shape[:2]
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if previous_grey is None:
            backward, valid = np.zeros((*shape, 2), np.float32), np.zeros(shape, bool)
        else:
            backward, valid = flow(previous_grey, grey)
        previous_grey = grey
        arrays = {"images": rgb, "flow": backward, "flow_valid": valid.astype(np.uint8) * 255}
        if modality == "edges":
            arrays["edges"] = canny_edges(rgb, canny)
        else:
            arrays["poses"] = _pose_frame(poses, start + t, source_hw, shape)
        writer.write(t, **arrays)
    if shape is None:
        raise VideoError(f"{video}: no frames from frame {start}")
    meta = DatasetMeta(modality, (), fps, shape, {"source": {"video": video.name, "start": start, "frames": t + 1}})
    write_meta(out, meta)
    return meta


def _frame_rate(video: Path) -> float:
    import av

    with av.open(str(video)) as container:
        rate = container.streams.video[0].average_rate
    return float(rate) if rate else 30.0


def _extract_poses(video: Path, start: int, frames: int):  # -> Keypoints2D
    try:
        from neurender.retarget.pose_extract import extract_poses, pose_env_ready
    except ImportError as err:
        raise VideoError(f"--modality pose needs neurender.retarget's pose extractor, which is not installed ({err})") from None
    if not pose_env_ready():
        raise VideoError("--modality pose needs the MediaPipe pose environment: create it with `neurender pose-env` "
                         "(or set NEURENDER_POSE_ENV to an environment with mediapipe==0.10.14)")
    return extract_poses(video, max_frames=start + frames if frames else 0)


def _pose_frame(keypoints, index: int, source_hw: tuple[int, int], shape: tuple[int, int]) -> dict:
    """poses/ JSON of video frame `index`: the extractor's keypoints scaled from the footage to the output size."""
    body = keypoints.body
    if index >= len(body):
        return {"skeleton": keypoints.skeleton, "num_keypoints": int(body.shape[2]), "people": []}
    scale = np.array([shape[1] / source_hw[1], shape[0] / source_hw[0], 1.0], np.float32)
    people = [p * scale for p in body[index] if (p[:, 2] > 0).any()]
    return {"skeleton": keypoints.skeleton, "num_keypoints": int(body.shape[2]),
            "people": [np.round(p, 3).tolist() for p in people]}


__all__ = ["BackwardFlow", "VideoError", "canny_edges", "read_frames", "video_to_dataset"]
