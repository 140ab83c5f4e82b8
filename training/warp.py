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
    # The pixel centres' coordinates broadcast along a row and a column: no [H, W] base grid is built, which
    # as exported graph operators (Expand, Concat) cost more than the sampling itself on CPU runtimes.
    # Sizes stay symbolic under ONNX tracing: no Python floats derived from them.
    xs = torch.linspace(-1.0, 1.0, width, device=flow.device).view(1, 1, width)
    ys = torch.linspace(-1.0, 1.0, height, device=flow.device).view(1, height, 1)
    grid = torch.stack((flow32[:, 0] * 2.0 / (width - 1) + xs, flow32[:, 1] * 2.0 / (height - 1) + ys), dim=-1)
    warped = F.grid_sample(image.float(), grid, mode=sampling, padding_mode="border", align_corners=True)
    return warped.to(image.dtype)
