"""Pictures of what the model does: label maps in colour, and tensors as uint8 images for summaries."""

from __future__ import annotations

import numpy as np
import torch

from neurender.training.model.config import GeneratorConfig


def palette(classes: list[tuple[int, tuple[int, int, int]]], num_classes: int) -> np.ndarray:
    """[num_classes, 3] uint8 colours from (id, colour) pairs; unknown IDs get a deterministic colour."""
    rng = np.random.default_rng(0)
    colours = rng.integers(40, 256, size=(num_classes, 3)).astype(np.uint8)
    for class_id, colour in classes:
        if 0 <= class_id < num_classes:
            colours[class_id] = colour
    return colours


def label_image(cfg: GeneratorConfig, encoding: torch.Tensor, colours: np.ndarray | None) -> np.ndarray:
    """One frame's label encoding [Cl, H, W] -> uint8 [H, W, 3] for people to look at."""
    if cfg.modality == "segmentation":
        ids = encoding.argmax(0).cpu().numpy()
        table = colours if colours is not None else palette([], cfg.num_classes)
        return table[ids]
    image = ((encoding.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    return image.permute(1, 2, 0).numpy()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [-1, 1] -> uint8 [H, W, 3]."""
    return ((image.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
