# SPDX-License-Identifier: GPL-3.0-or-later
"""Blender's render passes -> the protocol's per-frame tensors. Pure numpy (no bpy), so it is tested outside
Blender too.

Conventions, checked against Cycles 5.0 renders of a moving object (tests/test_blender_addon.py):
- Rows: the multilayer EXR the add-on writes stores rows top to bottom (EXR's y grows downwards), which is the
  protocol's order, so no flip is needed here. (Blender's in-memory buffers, Image.pixels, are bottom-up: the
  flip for frames coming back happens where they enter a bpy Image.)
- Vector pass (Cycles): 4 channels. X, Y = (position of the surface point in the previous frame) - (its
  position now), in pixels with y pointing up; Z, W = (position now) - (position in the next frame). The
  protocol's motion is backward flow in pixels with y pointing down (p in frame t came from p + mv in t-1),
  so motion = (X, -Y).
- Depth (Cycles "Depth"/Z): distance along the camera's viewing axis in scene units; Cycles writes 1e10 where
  no surface is hit, which becomes +inf as in the project's G-buffer renderer, and is sent as the model's
  max_depth (the server takes finite depth only; the model clamps depth at max_depth, so it is the same input).
- Object/Material Index: the objects' and materials' integer `pass_index`; Cycles does not filter these passes,
  so with one sample each pixel holds exactly one object's index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

# Pass names in the EXR channel names: Blender 5.x first, then the 4.x names.
_PASS_NAMES = {
    "object_index": ("Object Index", "IndexOB"),
    "material_index": ("Material Index", "IndexMA"),
    "depth": ("Depth",),
    "vector": ("Vector",),
}
_NO_SURFACE_DEPTH = 1e9  # Cycles' background depth is 1e10
_MAX_INDEX = 65535  # uint16 IDs on the wire

CLASS_SOURCES = ("OBJECT", "MATERIAL")


class PassError(ValueError):
    """Passes or settings that cannot become a frame; the message says what was found and what was expected."""


@dataclass
class Passes:
    """One frame's passes in the protocol's conventions (rows top to bottom)."""

    object_index: np.ndarray  # uint16 [H, W] object pass_index
    material_index: np.ndarray  # uint16 [H, W] material pass_index
    depth: np.ndarray  # float32 [H, W] view depth in scene units, +inf where no surface
    motion: np.ndarray  # float32 [H, W, 2] backward motion (x right, y down) in pixels

    @property
    def size(self) -> tuple[int, int]:
        return self.depth.shape[0], self.depth.shape[1]


def _channel(channels: Mapping[str, np.ndarray], view_layer: str, key: str, component: str) -> np.ndarray:
    for name in _PASS_NAMES[key]:
        found = channels.get(f"{view_layer}.{name}.{component}")
        if found is not None:
            return found
    wanted = " or ".join(f"{view_layer}.{name}.{component}" for name in _PASS_NAMES[key])
    raise PassError(
        f"the render has no {wanted} channel (it has {', '.join(sorted(channels)) or 'none'}); "
        f"expected the view layer's Object Index, Material Index, Depth and Vector passes"
    )


def _indices(plane: np.ndarray, what: str) -> np.ndarray:
    index = np.rint(plane)
    if index.size and (index.min() < 0 or index.max() > _MAX_INDEX):
        raise PassError(f"{what} pass holds {index.min():g}..{index.max():g}; expected pass indices 0..{_MAX_INDEX}")
    return index.astype(np.uint16)


def backward_motion(vector_x: np.ndarray, vector_y: np.ndarray) -> np.ndarray:
    """The protocol's backward motion [H, W, 2] from the X, Y channels of Cycles' Vector pass."""
    return np.stack([vector_x, -vector_y], axis=-1).astype(np.float32)


def passes_from_channels(channels: Mapping[str, np.ndarray], view_layer: str) -> Passes:
    """Passes from the channels of the add-on's multilayer EXR (see exr.read_exr), rows top to bottom."""
    depth = _channel(channels, view_layer, "depth", "Z").astype(np.float32)
    return Passes(
        object_index=_indices(_channel(channels, view_layer, "object_index", "X"), "Object Index"),
        material_index=_indices(_channel(channels, view_layer, "material_index", "X"), "Material Index"),
        depth=np.where(depth >= _NO_SURFACE_DEPTH, np.float32(np.inf), depth),
        motion=backward_motion(
            _channel(channels, view_layer, "vector", "X"), _channel(channels, view_layer, "vector", "Y")
        ),
    )


def class_ids(
    indices: np.ndarray, mapping: Mapping[int, int], num_classes: int, what: str = "pass index"
) -> np.ndarray:
    """Class IDs from pass indices: `mapping` {pass index: class}, indices not in it keep their own value.
    uint8 when the model has at most 256 classes, else uint16. Raises PassError naming any index whose class
    is outside the model's 0..num_classes-1."""
    if num_classes < 1:
        raise PassError(f"the model has {num_classes} classes; expected a segmentation model with at least one")
    top = max([int(indices.max()) if indices.size else 0, *mapping.keys()])
    lut = np.arange(top + 1, dtype=np.int64)
    for index, cls in mapping.items():
        lut[int(index)] = int(cls)
    used = np.unique(indices)
    bad = [int(i) for i in used if not 0 <= lut[i] < num_classes]
    if bad:
        shown = ", ".join(f"{what} {i} -> class {lut[i]}" for i in bad[:5])
        raise PassError(
            f"{shown}: the model has classes 0..{num_classes - 1}; map these indices to a class in the "
            "neurender panel or change the pass indices"
        )
    dtype = np.uint8 if num_classes <= 256 else np.uint16
    return lut[indices].astype(dtype)


def frame_arrays(
    passes: Passes,
    source: str,
    mapping: Mapping[int, int],
    num_classes: int,
    input_names: set[str],
    max_depth: float = 100.0,
) -> dict[str, np.ndarray]:
    """The FrameInputs arrays a model takes (its `input_names`): labels from the Object or Material Index via
    `mapping`; instances are the Object Index; depth (max_depth where no surface is hit) and motion as float16."""
    if source not in CLASS_SOURCES:
        raise PassError(f"class source {source!r}; expected one of {', '.join(CLASS_SOURCES)}")
    if "labels" not in input_names:
        raise PassError(
            f"the model takes {', '.join(sorted(input_names))}, not class labels; expected a "
            "segmentation model (the add-on renders class IDs from pass indices)"
        )
    indices = passes.object_index if source == "OBJECT" else passes.material_index
    what = "object pass index" if source == "OBJECT" else "material pass index"
    arrays = {"labels": class_ids(indices, mapping, num_classes, what)}
    if "instances" in input_names:
        arrays["instances"] = passes.object_index
    if "depth" in input_names:
        arrays["depth"] = np.where(np.isinf(passes.depth), np.float32(max_depth), passes.depth).astype(np.float16)
    if "motion" in input_names:
        arrays["motion"] = passes.motion.astype(np.float16)
    return arrays
