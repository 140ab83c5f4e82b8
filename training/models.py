"""The networks one training run holds: generator (+ feature encoder), discriminators, and their EMA."""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn

from neurender.training.discriminators import ImageDiscriminator, VideoDiscriminator
from neurender.training.model.feature_encoder import FeatureEncoder
from neurender.training.model.generator import GeneratorInputs, ScaleOutput, Vid2VidGenerator
from neurender.training.train_config import TrainConfig


class Synthesis(nn.Module):
    """The generator and, for style_dim > 0, the feature encoder whose region-pooled map of the real frame
    becomes the generator's style channels (they train together, as in pix2pixHD)."""

    def __init__(self, generator: Vid2VidGenerator, encoder: FeatureEncoder | None) -> None:
        super().__init__()
        self.generator = generator
        self.encoder = encoder

    def forward(
        self,
        inputs: GeneratorInputs,
        real: torch.Tensor | None = None,
        regions: torch.Tensor | None = None,
        scales: int | None = None,
    ) -> list[ScaleOutput]:
        if self.encoder is not None:
            style = self.encoder(real, regions)
            extras = style if inputs.extras is None else torch.cat((inputs.extras, style), dim=1)
            inputs = replace(inputs, extras=extras)
        return self.generator(inputs, scales)


def condition_channels(cfg: TrainConfig) -> int:
    return cfg.model.label_channels + int(cfg.model.use_instances)


def build_synthesis(cfg: TrainConfig) -> Synthesis:
    model = cfg.model
    encoder = None
    if model.style_dim:
        encoder = FeatureEncoder(model.style_dim, cfg.encoder.nef, cfg.encoder.n_downsample, model.norm)
    generator = Vid2VidGenerator(model)
    generator.start_mask_at(cfg.initial_mask)
    return Synthesis(generator, encoder)


def build_image_discriminator(cfg: TrainConfig) -> ImageDiscriminator:
    d = cfg.discriminator
    return ImageDiscriminator(condition_channels(cfg), d.ndf, d.n_layers, d.num_scales, d.norm)


def build_video_discriminator(cfg: TrainConfig) -> VideoDiscriminator | None:
    """D_V, or None for the per-frame model or when the temporal GAN is off."""
    d = cfg.discriminator
    if not cfg.temporal or d.temporal_scales == 0 or cfg.loss.temporal_gan == 0:
        return None
    return VideoDiscriminator(
        d.temporal_frames, d.temporal_scales, d.ndf, d.n_layers, d.num_scales, d.norm, cfg.model.flow_multiplier
    )


class EMA:
    """Exponential moving average of a module's parameters (buffers are copied)."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, source: nn.Module, track: bool) -> None:
        """track=False copies the weights (before the EMA starts), track=True averages them in."""
        for ema_p, p in zip(self.module.parameters(), source.parameters(), strict=True):
            if track:
                ema_p.lerp_(p.detach(), 1.0 - self.decay)
            else:
                ema_p.copy_(p.detach())
        for ema_b, b in zip(self.module.buffers(), source.buffers(), strict=True):
            ema_b.copy_(b)
