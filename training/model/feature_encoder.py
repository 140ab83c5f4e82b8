"""pix2pixHD's feature encoder for multimodal style: an encoder-decoder whose output is averaged per region.

Each instance (or, without instance IDs, each class region) of the real frame gets one style vector, the
mean of the encoder's output over its pixels. The generator is trained with that map as its style channels;
after training, per-class k-means of those vectors become the bundle's style clusters, and at serving time a
session's per-class codes are broadcast through the label map into the same channels.
"""

from __future__ import annotations

import torch
from torch import nn

from neurender.training.model.layers import conv_block, head, init_weights, up_block


class FeatureEncoder(nn.Module):
    def __init__(self, style_dim: int, nef: int = 16, n_downsample: int = 3, norm: str = "instance") -> None:
        super().__init__()
        if style_dim < 1:
            raise ValueError(f"feature encoder style_dim {style_dim}: expected at least 1")
        layers: list[nn.Module] = [conv_block(3, nef, 7, 1, norm)]
        ch = nef
        for _ in range(n_downsample):
            layers.append(conv_block(ch, ch * 2, 3, 2, norm))
            ch *= 2
        for _ in range(n_downsample):
            layers.append(up_block(ch, ch // 2, norm))
            ch //= 2
        layers += [head(ch, style_dim), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.style_dim = style_dim
        self.multiple_of = 2**n_downsample
        init_weights(self)

    def forward(self, image: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        """image [B, 3, H, W] in [-1, 1], regions [B, H, W] integer IDs -> [B, style_dim, H, W] region means."""
        h, w = image.shape[-2:]
        if h % self.multiple_of or w % self.multiple_of:
            raise ValueError(f"feature encoder input {h}x{w}: sides must be multiples of {self.multiple_of}")
        return region_average(self.net(image), regions)


def region_average(features: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Replace every pixel's feature by the mean over the pixels of its region (per image of the batch)."""
    b, c, h, w = features.shape
    _, inverse = torch.unique(regions.long().reshape(b, -1), return_inverse=True)
    n_regions = int(inverse.max()) + 1
    index = inverse + torch.arange(b, device=features.device).view(b, 1) * n_regions  # [B, HW], unique per image
    flat = features.permute(0, 2, 3, 1).reshape(b * h * w, c)
    index = index.reshape(-1)
    sums = flat.new_zeros(b * n_regions, c).index_add_(0, index, flat)
    counts = flat.new_zeros(b * n_regions).index_add_(0, index, torch.ones_like(index, dtype=flat.dtype))
    means = sums / counts.clamp(min=1.0).unsqueeze(1)
    return means[index].reshape(b, h, w, c).permute(0, 3, 1, 2)


def region_vectors(
    features: torch.Tensor, regions: torch.Tensor, classes: torch.Tensor
) -> list[tuple[int, torch.Tensor]]:
    """(class ID, style vector) for every region of one image: features [S, H, W] already region-averaged,
    regions [H, W] region IDs, classes [H, W] class IDs (a region takes the class of most of its pixels)."""
    out = []
    flat_regions = regions.reshape(-1).long()
    flat_classes = classes.reshape(-1).long()
    flat_features = features.reshape(features.shape[0], -1)
    for region in torch.unique(flat_regions):
        pixels = (flat_regions == region).nonzero().squeeze(1)
        cls = int(torch.mode(flat_classes[pixels]).values)
        out.append((cls, flat_features[:, pixels[0]]))
    return out
