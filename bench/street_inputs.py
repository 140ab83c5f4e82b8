"""Step inputs made of what an engine sends: the built-in street scene through the G-buffer renderer.

The step's cost depends on its label maps: the native one-hot lookup adds up a class's taps in advance where a
block of pixels is all one class, which a rendered scene has almost everywhere and per-pixel random labels never
have. Benchmarks of a segmentation step therefore time it on rendered frames.
"""

from __future__ import annotations

import numpy as np

from neurender.engine_plugin.gbuffer.renderer import GBufferFrame, GBufferRenderer
from neurender.engine_plugin.gbuffer.scenes import street_scene
from neurender.training.model.config import GeneratorConfig
from neurender.training.model.step import example_inputs, input_names


def render_street(height: int, width: int, frames: int) -> list[GBufferFrame]:
    """The first `frames` frames of the seeded street, in order."""
    scene = street_scene(seed=0, num_frames=frames)
    with GBufferRenderer(height, width) as renderer:
        return [renderer.render(scene, t) for t in range(frames)]


def step_feed(cfg: GeneratorConfig, frames: list[GBufferFrame]) -> dict[str, np.ndarray]:
    """The step's inputs for the last of `frames` (a segmentation config), its label history from the frames
    before it (the oldest repeated when there are fewer than the config's history). The previous generated
    frames stay random: their content does not change what the step costs."""
    if cfg.modality != "segmentation":
        raise ValueError(f"modality {cfg.modality!r}: street frames give class IDs, for segmentation models only")
    current = frames[-1]
    before = frames[:-1] or [current]
    history = ([before[0]] * cfg.history + before)[-cfg.history :]
    height, width = current.classes.shape
    label_dtype = np.uint16 if cfg.num_classes > 256 else np.uint8
    inputs = {n: t.numpy() for n, t in example_inputs(cfg, 1, height, width).items()}
    inputs["labels"] = current.classes[None].astype(label_dtype)
    inputs["prev_labels"] = np.stack([f.classes for f in history])[None].astype(label_dtype)
    if cfg.use_instances:
        inputs["instances"] = current.instances[None]
    if cfg.use_depth:
        inputs["depth"] = np.where(np.isinf(current.depth), np.float16(cfg.max_depth), current.depth)[None]
    if cfg.use_motion:
        inputs["motion"] = current.motion[None]
    return {n: inputs[n] for n in input_names(cfg)}
