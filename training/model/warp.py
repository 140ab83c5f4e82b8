"""Backward warping with the project's one convention.

Flow is backward and in pixels: the pixel p of frame t came from p + flow(p) in frame t-1. Sampling uses
`grid_sample` with align_corners=True, so pixel centres sit at -1..1 exactly and the pixel flow is normalised
by (W-1)/2 and (H-1)/2; samples outside the frame take the border pixel; the sampling runs in float32 even
when the network runs in half precision. Sampling is bilinear, or bicubic (Keys, a = -0.75) where a model asks
for it: an interpolating kernel either way, so zero flow is the identity and whole-pixel shifts are exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def warp(image: torch.Tensor, flow: torch.Tensor, sampling: str = "bilinear") -> torch.Tensor:
    """Sample `image` [B, C, H, W] at p + flow(p); `flow` is [B, 2, H, W] in pixels (x, y)."""
    height, width = image.shape[-2], image.shape[-1]
    flow32 = flow.float()
    # One [B, 2, H, W] expression, with the pixel centres' coordinates broadcast along a row and a column, then
    # one transpose to grid_sample's [B, H, W, 2]: no [H, W] base grid is expanded and no per-channel slices are
    # stacked, which as exported graph operators cost CPU runtimes more than the sampling itself.
    # Sizes stay symbolic under ONNX tracing: no Python floats derived from them.
    xs = torch.linspace(-1.0, 1.0, width, device=flow.device).view(1, 1, 1, width)
    ys = torch.linspace(-1.0, 1.0, height, device=flow.device).view(1, 1, height, 1)
    x_channel = torch.tensor([1.0, 0.0], device=flow.device).view(1, 2, 1, 1)
    sides = torch.stack(
        (torch.as_tensor(width - 1, device=flow.device), torch.as_tensor(height - 1, device=flow.device))
    )
    sides = sides.to(flow32.dtype).view(1, 2, 1, 1)
    grid = (flow32 * 2.0 / sides + xs * x_channel + ys * (1.0 - x_channel)).permute(0, 2, 3, 1)
    warped = F.grid_sample(image.float(), grid, mode=sampling, padding_mode="border", align_corners=True)
    return warped.to(image.dtype)
