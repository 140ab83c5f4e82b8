"""From the protocol's raw tensors to the networks' float inputs, and back to uint8 RGB.

Used by the exported step graph and by the trainer alike, so training and serving see identical inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[B, ..., H, W] integer IDs -> [B, ..., C, H, W] float one-hot (exported as Equal + Cast)."""
    classes = torch.arange(num_classes, device=labels.device).view(num_classes, 1, 1)
    return (labels.long().unsqueeze(-3) == classes).float()


def instance_boundaries(instances: torch.Tensor) -> torch.Tensor:
    """[B, H, W] instance IDs -> [B, 1, H, W]: 1 where a pixel differs from a 4-neighbour."""
    ids = instances.long().unsqueeze(1)
    horizontal = (ids[..., :, 1:] != ids[..., :, :-1]).float()
    vertical = (ids[..., 1:, :] != ids[..., :-1, :]).float()
    return torch.maximum(
        torch.maximum(F.pad(horizontal, (1, 0)), F.pad(horizontal, (0, 1))),
        torch.maximum(F.pad(vertical, (0, 0, 1, 0)), F.pad(vertical, (0, 0, 0, 1))),
    )


def normalise_depth(depth: torch.Tensor, max_depth: float) -> torch.Tensor:
    """[B, H, W] view depth -> [B, 1, H, W] in [-1, 1], log-spaced so near geometry keeps its detail.

    A fixed range (not per frame) so the same surface gets the same value in every frame.
    """
    d = depth.float().clamp(0.0, max_depth)
    return (torch.log1p(d) / torch.log1p(torch.tensor(max_depth)) * 2.0 - 1.0).unsqueeze(1)


def motion_to_flow(motion: torch.Tensor) -> torch.Tensor:
    """[B, H, W, 2] pixel motion (float16 on the wire) -> [B, 2, H, W] float32 flow in pixels."""
    return motion.float().permute(0, 3, 1, 2)


def frames_to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float [..., 3, H, W] in [-1, 1]."""
    n = frames.dim()
    perm = list(range(n - 3)) + [n - 1, n - 3, n - 2]  # explicit, ONNX rejects negative permutations
    return frames.float().permute(perm) / 127.5 - 1.0


def float_to_frames(images: torch.Tensor) -> torch.Tensor:
    """float [..., 3, H, W] in [-1, 1] -> uint8 [..., H, W, 3], rounded to nearest."""
    x = ((images.float() + 1.0) * 127.5).round().clamp(0.0, 255.0)
    n = images.dim()
    perm = list(range(n - 3)) + [n - 2, n - 1, n - 3]
    return x.to(torch.uint8).permute(perm)


def quantise(images: torch.Tensor) -> torch.Tensor:
    """The float image the uint8 round trip gives: what the next step sees as history."""
    return ((images + 1.0) * 127.5).round().clamp(0.0, 255.0) / 127.5 - 1.0


def downsample(x: torch.Tensor) -> torch.Tensor:
    """One pyramid level: 3x3 average, stride 2, borders averaged over valid pixels only."""
    return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)


def pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[finest, ..., coarsest] with `levels` entries."""
    out = [x]
    for _ in range(levels - 1):
        out.append(downsample(out[-1]))
    return out
