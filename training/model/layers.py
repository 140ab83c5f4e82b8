"""Building blocks shared by the generator, the feature encoder and the discriminators.

Convolutions followed by a normalisation have no bias: the norm removes it, so its gradient is pure rounding
noise, which Adam would turn into full-size random steps (and which differs between a batch of 2 and two
DDP processes of 1).
"""

from __future__ import annotations

import torch
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def conv_block(in_ch: int, out_ch: int, kernel: int, stride: int, norm: str) -> nn.Sequential:
    """Reflection-padded convolution, norm, ReLU."""
    pad = kernel // 2
    bias = norm == "none"
    layers: list[nn.Module] = []
    if stride == 1 and pad:
        layers += [nn.ReflectionPad2d(pad), nn.Conv2d(in_ch, out_ch, kernel, bias=bias)]
    else:
        layers += [nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=pad, bias=bias)]
    return nn.Sequential(*layers, norm_layer(norm, out_ch), nn.ReLU(inplace=True))


def up_block(in_ch: int, out_ch: int, norm: str) -> nn.Sequential:
    """Transposed convolution that doubles height and width exactly."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1, bias=norm == "none"),
        norm_layer(norm, out_ch),
        nn.ReLU(inplace=True),
    )


class ResBlock(nn.Module):
    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        bias = norm == "none"
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def head(in_ch: int, out_ch: int) -> nn.Sequential:
    """The 7x7 output convolution of a branch."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_ch, out_ch, 7))


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for convolutions, N(1, 0.02) for norm scales, as in pix2pixHD and vid2vid."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
