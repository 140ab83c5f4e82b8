"""Rendered frames as the session asked: RAW uint8 [H, W, 3] bytes, PNG or JPEG (OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np

from neurender.proto.neurender.v1 import render_pb2
from neurender.proto.tensors import to_tensor

PNG_COMPRESSION = 1  # zlib level: fast, and frames are rarely stored as sent


def encode_frame(rgb: np.ndarray, encoding: int, jpeg_quality: int, frame: render_pb2.RenderedFrame) -> None:
    """Fill `frame.encoding` and `frame.rgb` (RAW) or `frame.encoded` (PNG/JPEG) from an sRGB uint8 image."""
    frame.encoding = encoding
    if encoding == render_pb2.RAW:
        frame.rgb.CopyFrom(to_tensor(rgb))
        return
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if encoding == render_pb2.PNG:
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    else:
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {rgb.shape} frame as {render_pb2.ImageEncoding.Name(encoding)}")
    frame.encoded = data.tobytes()
