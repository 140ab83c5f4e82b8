# SPDX-License-Identifier: GPL-3.0-or-later
"""A minimal OpenEXR reader for the files the add-on writes itself: single-part scanline images with no
compression, which is what Blender's multilayer EXR output gives with codec NONE and interleaving on.

Pure Python + numpy, so it needs no OpenEXR wheel inside Blender. Anything else (tiled, multi-part, deep or
compressed files) is refused with a message saying what was found and what is expected.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

MAGIC = 20000630
_TILED, _LONG_NAMES, _DEEP, _MULTIPART = 0x200, 0x400, 0x800, 0x1000
_PIXEL_DTYPES = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}
_COMPRESSIONS = ("NONE", "RLE", "ZIPS", "ZIP", "PIZ", "PXR24", "B44", "B44A", "DWAA", "DWAB")


class ExrError(ValueError):
    """An EXR file this reader cannot read; the message names what was found and what was expected."""


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\0", pos)
    return data[pos:end].decode("utf-8"), end + 1


def _channels(value: bytes) -> list[tuple[str, np.dtype]]:
    channels, pos = [], 0
    while value[pos : pos + 1] != b"\0":
        name, pos = _cstring(value, pos)
        pixel_type, _linear, x_sampling, y_sampling = struct.unpack_from("<iB3xii", value, pos)
        pos += 16
        if pixel_type not in _PIXEL_DTYPES or (x_sampling, y_sampling) != (1, 1):
            raise ExrError(
                f"channel {name!r}: pixel type {pixel_type}, sampling {x_sampling}x{y_sampling}; "
                "expected UINT/HALF/FLOAT at full resolution"
            )
        channels.append((name, _PIXEL_DTYPES[pixel_type]))
    return channels


def read_exr(path: str | Path) -> dict[str, np.ndarray]:
    """Every channel of an uncompressed scanline EXR as float32/uint32 [H, W] arrays, rows top to bottom
    (EXR's own order: y grows downwards), keyed by full channel name (e.g. "ViewLayer.Depth.Z")."""
    data = Path(path).read_bytes()
    if len(data) < 8 or struct.unpack_from("<i", data)[0] != MAGIC:
        raise ExrError(f"{path}: not an OpenEXR file (bad magic number)")
    flags = struct.unpack_from("<I", data, 4)[0]
    if flags & (_TILED | _DEEP | _MULTIPART):
        raise ExrError(
            f"{path}: tiled, deep or multi-part EXR (flags {flags:#x}); expected a single-part scanline "
            "file (Blender: image_settings.use_exr_interleave = True)"
        )
    header: dict[str, tuple[str, bytes]] = {}
    pos = 8
    while data[pos : pos + 1] != b"\0":
        name, pos = _cstring(data, pos)
        kind, pos = _cstring(data, pos)
        size = struct.unpack_from("<i", data, pos)[0]
        header[name] = (kind, data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    pos += 1
    compression = header["compression"][1][0]
    if compression != 0:
        name = _COMPRESSIONS[compression] if compression < len(_COMPRESSIONS) else str(compression)
        raise ExrError(f"{path}: compression {name}; expected NONE (Blender: image_settings.exr_codec = 'NONE')")
    x_min, y_min, x_max, y_max = struct.unpack("<4i", header["dataWindow"][1])
    width, height = x_max - x_min + 1, y_max - y_min + 1
    channels = _channels(header["channels"][1])
    line_dtype = np.dtype([(name, dtype, (width,)) for name, dtype in channels])
    offsets = np.frombuffer(data, "<u8", count=height, offset=pos)
    planes = {
        name: np.empty((height, width), np.uint32 if dtype.kind == "u" else np.float32) for name, dtype in channels
    }
    for offset in offsets:
        y, size = struct.unpack_from("<ii", data, int(offset))
        if size != line_dtype.itemsize:
            raise ExrError(f"{path}: scanline {y} holds {size} bytes, expected {line_dtype.itemsize}")
        line = np.frombuffer(data, line_dtype, count=1, offset=int(offset) + 8)[0]
        for name, _dtype in channels:
            planes[name][y - y_min] = line[name]
    return planes
