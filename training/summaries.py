"""Pictures of what the model does: label maps in colour, and labels | output | real sheets over time."""

from __future__ import annotations

import numpy as np
import torch

from neurender.training.config import GeneratorConfig


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


def sheet(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """A grid of equally sized uint8 [H, W, 3] images with white gaps; rows may have different lengths."""
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            out[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = image
    return out
