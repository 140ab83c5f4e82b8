"""VGG19 perceptual loss, only from a weights file the user supplies (nothing is ever downloaded).

The network is built here layer by layer in torchvision's `vgg19().features` layout (indices 0-36), so a
state_dict saved from torchvision (`features.N.weight` or `N.weight`) loads as is. pix2pixHD/vid2vid compare
relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1 with weights 1/32, 1/16, 1/8, 1/4, 1.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

# torchvision's VGG19 "E" configuration: numbers are conv widths, "M" a 2x2 max pool.
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
SLICE_ENDS = (2, 7, 12, 21, 30)  # after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
SLICE_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

OFF_MESSAGE = (
    "VGG19 perceptual loss is OFF: no weights file was given (loss.vgg_weights). Nothing is downloaded; "
    "to turn it on, pass a torchvision-layout VGG19 state_dict, e.g. torch.save(vgg19(weights=...).state_dict(), 'vgg19.pt')."
)


def vgg19_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*layers)


def load_vgg19_features(path: str | Path) -> nn.Sequential:
    """The VGG19 feature layers with the file's weights; errors name the file and the key that is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VGG19 weights {path}: no such file (give a torchvision-layout VGG19 state_dict)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"VGG19 weights {path}: expected a state_dict (a dict of tensors), got {type(state).__name__}")
    features = {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier.")}
    net = vgg19_features()
    expected = net.state_dict()
    missing = sorted(set(expected) - set(features))
    unexpected = sorted(set(features) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"VGG19 weights {path}: missing keys {missing[:4]}, unexpected keys {unexpected[:4]}; "
            f"expected torchvision vgg19().features keys such as '0.weight' or 'features.0.weight'"
        )
    for key, tensor in expected.items():
        if features[key].shape != tensor.shape:
            raise ValueError(
                f"VGG19 weights {path}: {key} has shape {tuple(features[key].shape)}, expected {tuple(tensor.shape)}"
            )
    net.load_state_dict(features)
    return net


class VGGLoss(nn.Module):
    """Weighted L1 between VGG19 activations of two images in [-1, 1]; the network stays frozen."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        starts = (0,) + SLICE_ENDS[:-1]
        self.slices = nn.ModuleList(features[s:e] for s, e in zip(starts, SLICE_ENDS))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGLoss:
        return super().train(False)  # a fixed feature extractor

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        x = ((fake + 1.0) / 2.0 - self.mean) / self.std
        y = ((real + 1.0) / 2.0 - self.mean) / self.std
        loss = fake.new_zeros(())
        for weight, block in zip(SLICE_WEIGHTS, self.slices):
            x, y = block(x), block(y)
            loss = loss + weight * torch.nn.functional.l1_loss(x, y.detach())
        return loss


def perceptual_loss(weights_path: str | None) -> VGGLoss | None:
    """The loss if a weights file is given; otherwise None, and the log says clearly that it is off and why."""
    if not weights_path:
        log.warning(OFF_MESSAGE)
        return None
    loss = VGGLoss(load_vgg19_features(weights_path))
    log.info("VGG19 perceptual loss is ON with weights from %s", weights_path)
    return loss
