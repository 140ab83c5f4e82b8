# SPDX-License-Identifier: GPL-3.0-or-later
"""Render the current frame's G-buffer passes with Cycles on the CPU and read them back as numpy arrays.

Cycles renders one unfiltered sample (exact IDs: the pixel filter is shrunk to a point, no denoising, no
adaptive sampling, no motion blur) into a multilayer EXR with no compression, which exr.py reads. The scene's
own render settings are changed only for the duration of the render and restored afterwards, so an artist's
settings survive a neurender capture.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import bpy

from .exr import read_exr
from .passes import Passes, passes_from_channels

_POINT_FILTER = 0.01  # pixels: Cycles' minimum filter width, so the one sample sits at the pixel centre


def render_size(scene: bpy.types.Scene) -> tuple[int, int]:
    """(height, width) of the scene's renders, with the resolution percentage applied."""
    scale = scene.render.resolution_percentage / 100.0
    return int(scene.render.resolution_y * scale), int(scene.render.resolution_x * scale)


@contextlib.contextmanager
def _temporarily(settings: list[tuple[Any, str, Any]]) -> Iterator[None]:
    """Set (owner, attribute, value) in order; restore the old values afterwards in the same order, because
    some depend on earlier ones (an image format is only valid for its media type)."""
    old = [(owner, name, getattr(owner, name)) for owner, name, _ in settings]
    try:
        for owner, name, value in settings:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in old:
            setattr(owner, name, value)


def _settings(scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer, path: str) -> list[tuple[Any, str, Any]]:
    render, cycles, image = scene.render, scene.cycles, scene.render.image_settings
    settings: list[tuple[Any, str, Any]] = [
        (render, "engine", "CYCLES"),
        (cycles, "device", "CPU"),
        (cycles, "samples", 1),
        (cycles, "use_denoising", False),
        (cycles, "use_adaptive_sampling", False),
        (cycles, "max_bounces", 0),  # the shaded image is not used: trace no more than the ID/depth/vector hits
        (cycles, "filter_width", _POINT_FILTER),
        (render, "use_motion_blur", False),  # Cycles writes no Vector pass with motion blur on
        (render, "use_compositing", False),
        (render, "use_sequencer", False),
        (render, "filepath", path),
        (view_layer, "use_pass_combined", False),
        (view_layer, "use_pass_object_index", True),
        (view_layer, "use_pass_material_index", True),
        (view_layer, "use_pass_z", True),
        (view_layer, "use_pass_vector", True),
    ]
    if hasattr(image, "media_type"):  # Blender 5.0+: multilayer EXR is its own media type
        settings.append((image, "media_type", "MULTI_LAYER_IMAGE"))
    settings += [
        (image, "file_format", "OPEN_EXR_MULTILAYER"),
        (image, "exr_codec", "NONE"),
        (image, "color_depth", "32"),
    ]
    if hasattr(image, "use_exr_interleave"):  # Blender 5.0+ writes multi-part EXR unless interleaved
        settings.append((image, "use_exr_interleave", True))
    return settings


def render_passes(scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer | None = None) -> tuple[Passes, float]:
    """The passes of the scene's current frame (rows top to bottom) and the seconds the capture took."""
    start = time.perf_counter()
    view_layer = view_layer or scene.view_layers[0]
    with tempfile.TemporaryDirectory(prefix="neurender-") as tmp:
        path = os.path.join(tmp, "passes.exr")
        with _temporarily(_settings(scene, view_layer, path)):
            bpy.ops.render.render(write_still=True, layer=view_layer.name, scene=scene.name)
        if not os.path.exists(path):
            raise RuntimeError(f"Cycles wrote no pass file to {path}; is rendering cancelled or the scene empty?")
        passes = passes_from_channels(read_exr(path), view_layer.name)
    return passes, time.perf_counter() - start
