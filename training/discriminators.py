"""The vid2vid discriminators: a conditional multi-scale PatchGAN on images and one on short clips.

Both return, per spatial scale, the list of every layer's activations with the patch predictions last, so the
generator's feature-matching loss can compare intermediate features of real and generated inputs.

- ImageDiscriminator (D_I): the current frame's label encoding concatenated with an image.
- VideoDiscriminator (D_V): K consecutive frames plus the K-1 ground-truth backward flows between them
  (the same real flows condition the real and the generated clip), one multi-scale PatchGAN per temporal
  stride; temporal scale s looks at frames K**s apart.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurender.training.model.encoding import downsample
from neurender.training.model.layers import init_weights, norm_layer

Features = list[list[torch.Tensor]]  # [spatial scale][layer], the last layer being the patch predictions


class PatchDiscriminator(nn.Module):
    """pix2pixHD's N-layer PatchGAN: 4x4 convolutions, `n_layers` of stride 2, then two of stride 1."""

    def __init__(self, in_ch: int, ndf: int, n_layers: int, norm: str) -> None:
        super().__init__()
        pad = math.ceil((4 - 1) / 2)
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_ch, ndf, 4, 2, pad), nn.LeakyReLU(0.2, True))]
        ch = ndf
        for n in range(1, n_layers + 1):
            out = min(ch * 2, 512)
            stride = 2 if n < n_layers else 1
            conv = nn.Conv2d(ch, out, 4, stride, pad, bias=norm == "none")  # a norm follows: no bias (see layers.py)
            layers.append(nn.Sequential(conv, norm_layer(norm, out), nn.LeakyReLU(0.2, True)))
            ch = out
        layers.append(nn.Sequential(nn.Conv2d(ch, 1, 4, 1, pad)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """`num_scales` PatchGANs, each on the input average-pooled once more than the previous one."""

    def __init__(self, in_ch: int, ndf: int, n_layers: int, num_scales: int, norm: str) -> None:
        super().__init__()
        self.n_layers = n_layers
        self.nets = nn.ModuleList(PatchDiscriminator(in_ch, ndf, n_layers, norm) for _ in range(num_scales))

    def forward(self, x: torch.Tensor) -> Features:
        out = []
        for i, net in enumerate(self.nets):
            if i:
                x = downsample(x)
            out.append(net(x))
        return out


class ImageDiscriminator(nn.Module):
    """D_I: is this image a real frame for this label map?"""

    def __init__(
        self, condition_channels: int, ndf: int = 64, n_layers: int = 3, num_scales: int = 2, norm: str = "instance"
    ) -> None:
        super().__init__()
        self.condition_channels = condition_channels
        self.net = MultiscaleDiscriminator(condition_channels + 3, ndf, n_layers, num_scales, norm)
        init_weights(self)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> Features:
        """condition [B, Cc, H, W] (label encoding and instance edges), image [B, 3, H, W] in [-1, 1]."""
        if condition.shape[1] != self.condition_channels:
            raise ValueError(f"condition has {condition.shape[1]} channels, expected {self.condition_channels}")
        return self.net(torch.cat((condition, image), dim=1))


class VideoDiscriminator(nn.Module):
    """D_V: are these K frames, moving along these real flows, a real clip? One D per temporal stride."""

    def __init__(
        self,
        frames: int = 3,
        temporal_scales: int = 2,
        ndf: int = 64,
        n_layers: int = 3,
        num_scales: int = 2,
        norm: str = "instance",
        flow_scale: float = 20.0,
    ) -> None:
        super().__init__()
        if frames < 2:
            raise ValueError(f"video discriminator frames {frames}: expected at least 2")
        if temporal_scales < 1:
            raise ValueError(f"video discriminator temporal_scales {temporal_scales}: expected at least 1")
        self.frames = frames
        self.flow_scale = flow_scale
        in_ch = 3 * frames + 2 * (frames - 1)
        self.nets = nn.ModuleList(
            MultiscaleDiscriminator(in_ch, ndf, n_layers, num_scales, norm) for _ in range(temporal_scales)
        )
        init_weights(self)

    def stride(self, temporal_scale: int) -> int:
        return self.frames**temporal_scale

    def span(self, temporal_scale: int) -> int:
        """How many consecutive frames the clip of a temporal scale covers."""
        return self.stride(temporal_scale) * (self.frames - 1) + 1

    def forward(self, clips: list[tuple[torch.Tensor, torch.Tensor, int]]) -> list[Features]:
        """Each clip is (frames [B, K, 3, H, W] oldest first, flows [B, K-1, 2, H, W] where flows[:, i] maps
        frame i+1 back to frame i, temporal scale). All clips go through one call, so one DDP forward covers
        every temporal scale used at a frame."""
        out = []
        for frames, flows, temporal_scale in clips:
            b, k, _, h, w = frames.shape
            if k != self.frames or flows.shape[1] != k - 1:
                raise ValueError(
                    f"video discriminator got {k} frames and {flows.shape[1]} flows, expected {self.frames} and {self.frames - 1}"
                )
            x = torch.cat(
                (frames.reshape(b, 3 * k, h, w), flows.reshape(b, 2 * (k - 1), h, w) / self.flow_scale), dim=1
            )
            out.append(self.nets[temporal_scale](x))
        return out
