"""Previews people look at: H.264 mp4s (PyAV; OpenCV's writer cannot do H.264) and PNG contact sheets.

One writer and one sheet for every job that makes previews: the demo, render-video, evaluation, retargeting.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def contact_sheet(rows: list[list[np.ndarray]], captions: list[list[str]] | None = None, gap: int = 2) -> np.ndarray:
    """Tiles uint8 [H, W, 3] laid out row by row (every tile the size of the first), each with an optional
    caption in its top-left corner (captions may cover only the first rows); rows may be shorter than the longest.
    Returns one RGB image."""
    if not rows or not rows[0]:
        raise ValueError("contact_sheet needs at least one tile")
    h, w = rows[0][0].shape[:2]
    columns = max(len(r) for r in rows)
    sheet = np.full((len(rows) * (h + gap) - gap, columns * (w + gap) - gap, 3), 32, np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            if tile.shape[:2] != (h, w):
                raise ValueError(f"tile ({r}, {c}) is {tile.shape[0]}x{tile.shape[1]}, the sheet's tiles are {h}x{w}")
            tile = np.ascontiguousarray(tile if tile.ndim == 3 else np.repeat(tile[..., None], 3, axis=2))
            caption = captions[r][c] if captions and r < len(captions) and c < len(captions[r]) else ""
            if caption:
                tile = tile.copy()
                cv2.putText(tile, caption, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 2, cv2.LINE_AA)
                cv2.putText(tile, caption, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
            y, x = r * (h + gap), c * (w + gap)
            sheet[y : y + h, x : x + w] = tile
    return sheet


class VideoWriter:
    """with VideoWriter("out.mp4", fps=30) as video:
               video.write(rgb)   # uint8 [H, W, 3], every frame the same size

    Odd sides are padded by one black row or column (yuv420p needs even sides)."""

    def __init__(self, path: str | Path, fps: float = 30.0, crf: int = 18) -> None:
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.frames = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._size: tuple[int, int] | None = None

    def write(self, rgb: np.ndarray) -> None:
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"frame is {rgb.dtype} {list(rgb.shape)}, expected uint8 [H, W, 3]")
        if self._container is None:
            self._open(rgb.shape[0], rgb.shape[1])
        container, stream, size = self._container, self._stream, self._size
        assert container is not None and stream is not None and size is not None
        if rgb.shape[:2] != size:
            raise ValueError(f"frame {self.frames} is {rgb.shape[0]}x{rgb.shape[1]}, the video is {size[0]}x{size[1]}")
        padded = np.pad(rgb, ((0, stream.height - rgb.shape[0]), (0, stream.width - rgb.shape[1]), (0, 0)))
        for packet in stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")):
            container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._container is None or self._stream is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self, height: int, width: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        self._stream = self._container.add_stream(
            "libx264", rate=Fraction(self.fps).limit_denominator(1001), options={"crf": str(self.crf)}
        )
        self._stream.width, self._stream.height = width + width % 2, height + height % 2
        self._stream.pix_fmt = "yuv420p"
        self._size = (height, width)
