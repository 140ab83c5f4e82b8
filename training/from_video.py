"""`neurender dataset from-video`: real footage -> paired frames for edge-to-video or pose-to-video.

Per frame: images/ (the footage), the modality's input (edges/: Canny edges; poses/: keypoints from the
MediaPipe pose environment of neurender.retarget), flow/ (backward optical flow by OpenCV's DIS: pixel p of
frame t came from p + flow in frame t-1) and flow_valid/ (forward-backward consistent flow, the confidence
mask for flow losses and occlusion-aware metrics). Frame 0 has zero flow and an empty mask.

Frame size: `size` (HxW) scales each frame to cover it, keeping the aspect ratio, and centre-crops the rest;
`max_side` scales a larger frame so its longer side is that many pixels and centre-crops both sides down to
a multiple of 4 (what the default generator needs). The estimated disk size and time are logged after the
first frame, which is measured, before the rest runs.

Pose: frames where nobody is found are normal in real footage; they are written with no people and counted
(the meta's source.frames_without_person); only a clip with nobody in any frame is refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from neurender.common.errors import UserError
from neurender.training.dataset import DatasetMeta, SequenceWriter, write_meta
from neurender.training.metrics import non_occluded

log = logging.getLogger(__name__)
CANNY_THRESHOLDS = (50, 150)
SIZE_MULTIPLE = 4
LARGE_SIDE = 512  # frames with a longer side get a warning unless --size or --max-side says what to write


class VideoError(UserError, ValueError):
    """The video cannot be read as asked; the message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    height: int
    width: int
    fps: float
    frames: int  # as the container announces it (0: unknown)


def probe(video: Path) -> VideoInfo:
    """The video's size, rate and frame count; a file FFmpeg cannot read as video is a VideoError."""
    import av

    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise VideoError(f"{video}: has no video stream; expected a video file")
            stream = container.streams.video[0]
            rate = stream.average_rate
            return VideoInfo(stream.height, stream.width, float(rate) if rate else 30.0, int(stream.frames or 0))
    except (av.error.FFmpegError, OSError) as err:
        raise VideoError(f"{video}: not a video FFmpeg can read ({err}); expected a video file such as .mp4") from None


def output_size(source_hw: tuple[int, int], size: tuple[int, int] | None, max_side: int | None) -> tuple[int, int]:
    """The written frame size for a source frame size (see the module docstring for the rule)."""
    if size is not None:
        return size
    h, w = source_hw
    if max_side is None or max(h, w) <= max_side:
        return h, w
    scale = max_side / max(h, w)
    h, w = max(1, round(h * scale)), max(1, round(w * scale))
    return max(SIZE_MULTIPLE, h - h % SIZE_MULTIPLE), max(SIZE_MULTIPLE, w - w % SIZE_MULTIPLE)


def cover_and_crop(rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Scale `rgb` to cover `size` (aspect kept) and centre-crop it; returns the frame, the scale and the crop's
    top-left corner in scaled pixels (to move keypoints alike)."""
    h, w = rgb.shape[:2]
    if (h, w) == tuple(size):
        return rgb, 1.0, (0, 0)
    scale = max(size[0] / h, size[1] / w)
    sh, sw = max(size[0], round(h * scale)), max(size[1], round(w * scale))
    scaled = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (sh - size[0]) // 2, (sw - size[1]) // 2
    return np.ascontiguousarray(scaled[top : top + size[0], left : left + size[1]]), scale, (top, left)


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
        """(flow float32 [H, W, 2], valid bool [H, W]) for grey uint8 frames t-1 and t; valid is the
        forward-backward check evaluation uses (training.metrics.non_occluded)."""
        backward = self.dis.calc(current, previous, None)
        forward = self.dis.calc(previous, current, None)
        return backward, non_occluded(backward, forward)


def video_to_dataset(
    video: str | Path,
    out: str | Path,
    modality: str,
    size: tuple[int, int] | None = None,
    start: int = 0,
    frames: int = 0,
    progress: bool = True,
    canny: tuple[int, int] = CANNY_THRESHOLDS,
    max_side: int | None = None,
    person: int = 0,
) -> DatasetMeta:
    """Write one sequence (named after the video) of paired frames into the dataset folder `out`."""
    if modality not in ("edges", "pose"):
        raise ValueError(f"modality {modality!r}: from-video makes 'edges' or 'pose' datasets")
    video, out = Path(video), Path(out)
    if not video.is_file():
        raise VideoError(f"{video}: no such file")
    info = probe(video)
    shape = output_size((info.height, info.width), size, max_side)
    if size is None and max_side is None and max(shape) > LARGE_SIDE:
        log.warning(
            "%s: writing full-size %dx%d frames (flow alone is %.1f MB a frame); --max-side or --size makes "
            "smaller ones",
            video,
            shape[0],
            shape[1],
            shape[0] * shape[1] * 2 * 2 / 1e6,
        )  # float16 x, y
    total = max(0, info.frames - start) if info.frames else 0
    total = min(total, frames) if frames and total else (frames or total)
    poses = _extract_poses(video, start, frames, person) if modality == "pose" else None
    writer = SequenceWriter(out, video.stem)
    flow = BackwardFlow()
    previous_grey = None
    written, without_person = 0, 0
    began = time.monotonic()
    for t, rgb in enumerate(
        tqdm(
            read_frames(video, start, frames),
            desc=f"from-video {video.name}",
            unit="frame",
            total=total or None,
            disable=not progress,
        )
    ):
        rgb, scale, corner = cover_and_crop(rgb, shape)
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
            arrays["poses"] = _pose_frame(poses, start + t, scale, corner, shape)
            without_person += not arrays["poses"]["people"]
        writer.write(t, **arrays)
        written += 1
        if t == 0:
            _log_estimate(video, writer.directory, total, time.monotonic() - began)
    if not written:
        raise VideoError(f"{video}: no frames from frame {start}")
    source = {"video": video.name, "start": start, "frames": written}
    if modality == "pose":
        source["frames_without_person"] = without_person
        log.info("%s: %d of %d frames show nobody; they are written with no people", video, without_person, written)
    meta = DatasetMeta(modality, (), info.fps, shape, {"source": source})
    write_meta(out, meta)
    return meta


def _log_estimate(video: Path, directory: Path, total: int, seconds: float) -> None:
    """Disk and time for the whole clip, from the first frame's (flow of later frames costs more: a floor)."""
    if not total:
        return
    size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
    log.info(
        "%s: %d frames, about %.0f MB and at least %.1f s at the first frame's rate",
        video,
        total,
        size * total / 1e6,
        seconds * total,
    )


def _extract_poses(video: Path, start: int, frames: int, person: int):  # -> Keypoints2D
    try:
        from neurender.retarget.pose_extract import extract_poses, pose_env_ready
        from neurender.retarget.skeleton import MotionFormatError
    except ImportError as err:
        raise VideoError(
            f"--modality pose needs neurender.retarget's pose extractor, which is not installed ({err})"
        ) from None
    if not pose_env_ready():
        raise VideoError(
            "--modality pose needs the MediaPipe pose environment: create it with `neurender pose-env` "
            "(or set NEURENDER_POSE_ENV to an environment with mediapipe==0.10.14)"
        )
    try:
        keypoints, _ = extract_poses(video, max_frames=start + frames if frames else 0, person=person)
    except MotionFormatError:  # the extractor's file holds no frame with a person
        raise VideoError(f"{video}: nobody was detected in any frame; a pose dataset needs a person in view") from None
    return keypoints


def _pose_frame(keypoints, index: int, scale: float, corner: tuple[int, int], shape: tuple[int, int]) -> dict:
    """poses/ JSON of video frame `index`: the extractor's keypoints moved as the frame was scaled and cropped
    (points cropped away get confidence 0)."""
    body = keypoints.body
    if index >= len(body):
        return {"skeleton": keypoints.skeleton, "num_keypoints": int(body.shape[2]), "people": []}
    people = []
    for person in body[index]:
        if not (person[:, 2] > 0).any():
            continue
        p = person.astype(np.float32).copy()
        p[:, 0] = p[:, 0] * scale - corner[1]
        p[:, 1] = p[:, 1] * scale - corner[0]
        inside = (p[:, 0] >= 0) & (p[:, 0] < shape[1]) & (p[:, 1] >= 0) & (p[:, 1] < shape[0])
        p[~inside] = 0.0
        if (p[:, 2] > 0).any():
            people.append(p)
    return {
        "skeleton": keypoints.skeleton,
        "num_keypoints": int(body.shape[2]),
        "people": [np.round(p, 3).tolist() for p in people],
    }


__all__ = [
    "BackwardFlow",
    "VideoError",
    "VideoInfo",
    "canny_edges",
    "cover_and_crop",
    "output_size",
    "probe",
    "read_frames",
    "video_to_dataset",
]
