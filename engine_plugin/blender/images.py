# SPDX-License-Identifier: GPL-3.0-or-later
"""Frames that come back from the server -> Blender images, Image Editors, PNG files and movies.

Frames arrive as uint8 RGB with rows top to bottom; Blender's Image.pixels are float RGBA with rows bottom to
top, so rows are flipped on the way in.
"""

from __future__ import annotations

import os
from pathlib import Path

import bpy
import numpy as np

_WRITER = "neurender file writer"


def show_frame(name: str, rgb: np.ndarray) -> bpy.types.Image:
    """Write an RGB frame into the image `name` (made, or resized, as needed) and return it."""
    height, width = rgb.shape[:2]
    image = bpy.data.images.get(name)
    if image is None:
        image = bpy.data.images.new(name, width, height, alpha=False)
    elif tuple(image.size) != (width, height):
        image.scale(width, height)
    rgba = np.empty((height, width, 4), np.float32)
    rgba[..., :3] = rgb[::-1]
    rgba[..., 3] = 255.0
    rgba *= 1.0 / 255.0
    image.pixels.foreach_set(rgba.ravel())
    image.update()
    return image


def show_in_image_editors(image: bpy.types.Image) -> int:
    """Point every open Image Editor at `image` and redraw it; returns how many there were."""
    shown = 0
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = image
                area.tag_redraw()
                shown += 1
    return shown


def save_png(rgb: np.ndarray, path: str | Path) -> None:
    """Write an RGB frame as a PNG file, through an image of its own (saving re-points an image at its file,
    which the images shown in editors must not be). Made anew each time: one pointing at a file since deleted
    (the PNGs of a movie) fails to load its buffer."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    old = bpy.data.images.get(_WRITER)
    if old is not None:
        bpy.data.images.remove(old)
    image = show_frame(_WRITER, rgb)
    image.filepath_raw = os.fspath(path)
    image.file_format = "PNG"
    image.save()


def encode_movie(frames: list[str], size: tuple[int, int], fps: float, path: str | Path) -> None:
    """Encode PNG frames of `size` (height, width) into an H.264 MP4 with Blender's own FFmpeg, through a
    temporary sequencer scene."""
    if not frames:
        raise ValueError("no frames to encode; expected at least one rendered frame")
    height, width = size
    scene = bpy.data.scenes.new("neurender-encode")
    try:
        editor = scene.sequence_editor_create()
        strips = editor.strips if hasattr(editor, "strips") else editor.sequences  # "strips" since 5.0
        strip = strips.new_image(name="frames", filepath=frames[0], channel=1, frame_start=1)
        for frame in frames[1:]:
            strip.elements.append(os.path.basename(frame))
        render = scene.render
        render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
        render.fps, render.fps_base = round(fps), round(fps) / fps
        scene.frame_start, scene.frame_end = 1, len(frames)
        image = render.image_settings
        if hasattr(image, "media_type"):  # Blender 5.0+
            image.media_type = "VIDEO"
        image.file_format = "FFMPEG"
        render.ffmpeg.format = "MPEG4"
        render.ffmpeg.codec = "H264"
        render.filepath = os.fspath(path)
        render.use_file_extension = False
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        bpy.data.scenes.remove(scene)
