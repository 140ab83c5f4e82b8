"""The generator step on the protocol's raw tensors: the unit that is exported to ONNX and served.

    step(labels, prev_labels, prev_frames, has_history, [instances], [depth], [motion], [style])
        -> (rgb, next_prev_labels, next_prev_frames)

Inputs are what the wire carries: uint8/uint16 class IDs [B, H, W] (or a uint8 pose map [B, H, W, 3], or a
uint8 edge map [B, H, W]), uint8 previous frames [B, L, H, W, 3], uint8 has_history [B], uint16 instance IDs,
float16 depth [B, H, W], float16 backward motion [B, H, W, 2] in pixels, float32 per-class style codes
[B, C, S]. One-hot encoding, normalisation, the scale pyramid and warping all happen inside, and the frame
comes back as uint8 sRGB [B, H, W, 3]. The state is explicit: batching sessions is stacking rows.

On a first frame (has_history = 0) the history is filled with the current frame, so the state a session
carries after one frame is the same whatever it held before a reset.
"""

from __future__ import annotations

import torch
from torch import nn

from neurender.proto.bundle import LABEL_INPUT
from neurender.training.model.config import GeneratorConfig
from neurender.training.model.encoding import (
    float_to_frames,
    frames_to_float,
    instance_boundaries,
    motion_to_flow,
    normalise_depth,
    one_hot,
)
from neurender.training.model.generator import GeneratorInputs, Vid2VidGenerator

STATE_INPUTS = ("prev_labels", "prev_frames", "has_history")
OUTPUTS = ("rgb", "next_prev_labels", "next_prev_frames")


def optional_inputs(cfg: GeneratorConfig) -> list[str]:
    names = []
    if cfg.use_instances:
        names.append("instances")
    if cfg.use_depth:
        names.append("depth")
    if cfg.use_motion:
        names.append("motion")
    if cfg.style_dim:
        names.append("style")
    return names


def input_names(cfg: GeneratorConfig) -> list[str]:
    """The step graph's inputs, in order."""
    return [LABEL_INPUT[cfg.modality], *STATE_INPUTS, *optional_inputs(cfg)]


def step_arguments(cfg: GeneratorConfig, named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Graph-named inputs (labels / pose_map / edges, ...) -> GeneratorStep keyword arguments."""
    arguments = dict(named)
    arguments["labels"] = arguments.pop(LABEL_INPUT[cfg.modality])
    return arguments


def encode_labels(cfg: GeneratorConfig, labels: torch.Tensor) -> torch.Tensor:
    """Raw label maps [B, T, H, W(, 3)] -> [B, T, Cl, H, W] float encodings."""
    if cfg.modality == "segmentation":
        return one_hot(labels, cfg.num_classes)
    if cfg.modality == "pose":
        return frames_to_float(labels)
    return labels.float().unsqueeze(2) / 127.5 - 1.0  # edges


def extra_channels(
    cfg: GeneratorConfig,
    current_encoding: torch.Tensor,
    instances: torch.Tensor | None,
    depth: torch.Tensor | None,
    motion_flow: torch.Tensor | None,
    style_map: torch.Tensor | None,
) -> torch.Tensor | None:
    """The dense channels beside the labels, in the generator's fixed order."""
    parts = []
    if cfg.use_instances:
        parts.append(instance_boundaries(instances))
    if cfg.use_depth:
        parts.append(normalise_depth(depth, cfg.max_depth))
    if cfg.use_motion:
        parts.append(motion_flow / cfg.flow_multiplier)
    if cfg.style_dim:
        parts.append(style_map)
    return torch.cat(parts, dim=1) if parts else None


def style_map_from_codes(one_hot_current: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Per-class codes [B, C, S] broadcast through the one-hot map [B, C, H, W] -> [B, S, H, W]."""
    return torch.einsum("bchw,bcs->bshw", one_hot_current, codes.float())


class GeneratorStep(nn.Module):
    def __init__(self, generator: Vid2VidGenerator) -> None:
        super().__init__()
        self.generator = generator
        self.cfg = generator.cfg

    def forward(
        self,
        labels: torch.Tensor,
        prev_labels: torch.Tensor,
        prev_frames: torch.Tensor,
        has_history: torch.Tensor,
        instances: torch.Tensor | None = None,
        depth: torch.Tensor | None = None,
        motion: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        batch = labels.shape[0]
        history = has_history.view(batch) > 0
        label_dtype = labels.dtype
        labels, prev_labels = labels.long(), prev_labels.long()  # ONNX Where/Concat lack uint16 kernels
        label_shape = [batch] + [1] * (prev_labels.dim() - 1)
        prev_labels = torch.where(history.view(label_shape), prev_labels, labels.unsqueeze(1).expand_as(prev_labels))
        all_labels = torch.cat((prev_labels, labels.unsqueeze(1)), dim=1)
        encoded = encode_labels(cfg, all_labels)
        flow = motion_to_flow(motion) if motion is not None else None
        style_map = style_map_from_codes(encoded[:, -1], style) if style is not None else None
        extras = extra_channels(cfg, encoded[:, -1], instances, depth, flow, style_map)
        inputs = GeneratorInputs(
            labels=encoded,
            prev_frames=frames_to_float(prev_frames),
            has_history=history.float(),
            extras=extras,
            motion=flow,
        )
        rgb = float_to_frames(self.generator(inputs)[-1].image)
        frame_shape = [batch] + [1] * (prev_frames.dim() - 1)
        prev_frames = torch.where(history.view(frame_shape), prev_frames, rgb.unsqueeze(1).expand_as(prev_frames))
        next_prev_frames = torch.cat((prev_frames[:, 1:], rgb.unsqueeze(1)), dim=1)
        next_prev_labels = all_labels[:, 1:].to(label_dtype)
        return rgb, next_prev_labels, next_prev_frames


def example_inputs(
    cfg: GeneratorConfig, batch: int, height: int, width: int, seed: int = 0, label_dtype: torch.dtype = torch.uint8
) -> dict[str, torch.Tensor]:
    """Random raw inputs of the right dtypes and shapes (for export, tests and benchmarks)."""
    g = torch.Generator().manual_seed(seed)
    L = cfg.history
    if cfg.modality == "segmentation":
        labels = torch.randint(0, cfg.num_classes, (batch, height, width), generator=g).to(label_dtype)
        prev_labels = torch.randint(0, cfg.num_classes, (batch, L, height, width), generator=g).to(label_dtype)
    elif cfg.modality == "pose":
        labels = torch.randint(0, 256, (batch, height, width, 3), generator=g).to(torch.uint8)
        prev_labels = torch.randint(0, 256, (batch, L, height, width, 3), generator=g).to(torch.uint8)
    else:
        labels = (torch.rand(batch, height, width, generator=g) > 0.9).to(torch.uint8) * 255
        prev_labels = (torch.rand(batch, L, height, width, generator=g) > 0.9).to(torch.uint8) * 255
    inputs = {
        LABEL_INPUT[cfg.modality]: labels,
        "prev_labels": prev_labels,
        "prev_frames": torch.randint(0, 256, (batch, L, height, width, 3), generator=g).to(torch.uint8),
        "has_history": torch.ones(batch, dtype=torch.uint8),
    }
    if cfg.use_instances:
        inputs["instances"] = torch.randint(0, 5, (batch, height, width), generator=g).to(torch.uint16)
    if cfg.use_depth:
        inputs["depth"] = (torch.rand(batch, height, width, generator=g) * cfg.max_depth).half()
    if cfg.use_motion:
        inputs["motion"] = (torch.randn(batch, height, width, 2, generator=g) * 2).half()
    if cfg.style_dim:
        inputs["style"] = torch.randn(batch, cfg.num_classes, cfg.style_dim, generator=g)
    return inputs
