"""The sequential vid2vid generator (Wang et al. 2018), coarse to fine.

Per scale, a label encoder (current and L previous label maps plus dense extras) and an image encoder
(L previous generated frames) are summed; an image branch hallucinates H, a flow branch predicts the backward
flow W (pixels) and the occlusion mask M, and the frame is

    out = (1 - M) * warp(previous output, W) + M * H.

Finer scales are pix2pixHD-style local enhancers: one downsample, then the coarser scale's decoder features are
added before their own residual blocks and upsampling; their flow is in their own pixel units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from neurender.training.model.config import GeneratorConfig
from neurender.training.model.encoding import downsample
from neurender.training.model.layers import ResBlock, conv_block, head, init_weights, up_block
from neurender.training.model.warp import warp


@dataclass
class GeneratorInputs:
    """Full-resolution float inputs of one step for a batch.

    labels: [B, L+1, Cl, H, W] label encodings, oldest first, the current frame last.
    prev_frames: [B, L, 3, H, W] previously generated frames in [-1, 1], oldest first.
    has_history: [B] 1.0 where the previous frames are real history, 0.0 on a first frame.
    extras: [B, E, H, W] instance boundaries, depth, motion / multiplier and style map, or None.
    motion: [B, 2, H, W] engine backward flow in pixels, or None.
    """

    labels: torch.Tensor
    prev_frames: torch.Tensor
    has_history: torch.Tensor
    extras: torch.Tensor | None = None
    motion: torch.Tensor | None = None


@dataclass
class ScaleOutput:
    """One scale's results; `flow`, `mask` and `warped` are None for the per-frame model."""

    image: torch.Tensor  # the composite frame [B, 3, h, w]
    hallucinated: torch.Tensor  # H
    flow: torch.Tensor | None  # W, pixels at this scale
    mask: torch.Tensor | None  # M (1 = hallucinate)
    warped: torch.Tensor | None  # warp(previous output, W)
    fg_mask: torch.Tensor | None


class Encoder(nn.Sequential):
    def __init__(self, in_ch: int, ngf: int, n_down: int, n_blocks: int, norm: str) -> None:
        layers: list[nn.Module] = [conv_block(in_ch, ngf, 7, 1, norm)]
        ch = ngf
        for _ in range(n_down):
            layers.append(conv_block(ch, ch * 2, 3, 2, norm))
            ch *= 2
        layers += [ResBlock(ch, norm) for _ in range(n_blocks)]
        super().__init__(*layers)


class Decoder(nn.Sequential):
    """Residual blocks then upsampling back to the scale's resolution; returns features (no head)."""

    def __init__(self, ch: int, n_up: int, n_blocks: int, norm: str) -> None:
        layers: list[nn.Module] = [ResBlock(ch, norm) for _ in range(n_blocks)]
        for _ in range(n_up):
            layers.append(up_block(ch, ch // 2, norm))
            ch //= 2
        super().__init__(*layers)


class ScaleGenerator(nn.Module):
    def __init__(self, cfg: GeneratorConfig, level: int) -> None:
        """level 0 is the coarsest scale (the global generator), higher levels are local enhancers."""
        super().__init__()
        self.cfg = cfg
        self.level = level
        ngf = cfg.ngf // 2**level
        coarsest = level == 0
        n_down = cfg.n_downsample if coarsest else 1
        enc_blocks = cfg.n_blocks - cfg.n_blocks // 2 if coarsest else 0
        dec_blocks = cfg.n_blocks // 2 if coarsest else cfg.n_blocks_local
        temporal = cfg.use_flow
        label_frames = cfg.history + 1 if temporal else 1
        self.label_encoder = Encoder(
            cfg.label_channels * label_frames + cfg.extra_channels, ngf, n_down, enc_blocks, cfg.norm
        )
        deep = ngf * 2**n_down
        self.image_decoder = Decoder(deep, n_down, dec_blocks, cfg.norm)
        self.image_head = head(ngf, 3)
        if temporal:
            self.frame_encoder = Encoder(3 * cfg.history, ngf, n_down, enc_blocks, cfg.norm)
            self.flow_decoder = Decoder(deep, n_down, dec_blocks, cfg.norm)
            self.flow_head = head(ngf, 2)
            self.mask_head = head(ngf, 1)
        if cfg.fg_classes:
            fg_ngf = max(ngf // 2, 8)
            self.fg_encoder = Encoder(cfg.label_channels, fg_ngf, n_down, enc_blocks, cfg.norm)
            self.fg_decoder = Decoder(fg_ngf * 2**n_down, n_down, dec_blocks, cfg.norm)
            self.fg_head = head(fg_ngf, 3)
            self.register_buffer("fg_selector", torch.zeros(cfg.num_classes), persistent=False)
            self.fg_selector[list(cfg.fg_classes)] = 1.0

    def forward(
        self,
        labels: torch.Tensor,
        extras: torch.Tensor | None,
        prev_frames: torch.Tensor,
        has_history: torch.Tensor,
        motion: torch.Tensor | None,
        coarse_features: tuple[torch.Tensor, torch.Tensor | None] | None,
    ) -> tuple[ScaleOutput, tuple[torch.Tensor, torch.Tensor | None]]:
        cfg = self.cfg
        # Shapes come from each tensor itself, never from the one-hot labels: the CPU serving graph computes the
        # label encoder's first convolution by table lookup and drops the one-hot tensor altogether.
        current = labels[:, -1]
        label_in = labels.flatten(1, 2) if cfg.use_flow else current
        if extras is not None:
            label_in = torch.cat((label_in, extras), dim=1)
        features = self.label_encoder(label_in)
        history = has_history.view(-1, 1, 1, 1)
        if cfg.use_flow:
            features = features + self.frame_encoder(prev_frames.flatten(1, 2) * history)
        coarse_image, coarse_flow = coarse_features if coarse_features is not None else (None, None)
        image_features = self.image_decoder(features if coarse_image is None else features + coarse_image)
        hallucinated = torch.tanh(self.image_head(image_features))
        flow = mask = warped = None
        flow_features = None
        image = hallucinated
        if cfg.use_flow:
            flow_features = self.flow_decoder(features if coarse_flow is None else features + coarse_flow)
            flow = self.flow_head(flow_features) * (cfg.flow_multiplier * 2**self.level)
            if motion is not None:
                flow = flow + motion
            mask = torch.sigmoid(self.mask_head(flow_features)) * history + (1.0 - history)
            # Bicubic sampling can overshoot the frame's range; the warped frame is a frame, so it is clamped.
            warped = warp(prev_frames[:, -1], flow, cfg.warp_sampling).clamp(-1.0, 1.0)
            image = (1.0 - mask) * warped + mask * hallucinated
        fg_mask = None
        if cfg.fg_classes:
            fg_mask = (current * self.fg_selector.view(1, -1, 1, 1)).sum(1, keepdim=True).clamp(0.0, 1.0)
            foreground = torch.tanh(self.fg_head(self.fg_decoder(self.fg_encoder(current))))
            image = fg_mask * foreground + (1.0 - fg_mask) * image
            hallucinated = fg_mask * foreground + (1.0 - fg_mask) * hallucinated
        return ScaleOutput(image, hallucinated, flow, mask, warped, fg_mask), (image_features, flow_features)


class Vid2VidGenerator(nn.Module):
    """All scales; `forward` returns one ScaleOutput per scale, coarsest first, finest (the frame) last."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.scales = nn.ModuleList(ScaleGenerator(cfg, level) for level in range(cfg.n_scales))
        init_weights(self)

    def start_mask_at(self, mask: float) -> None:
        """Set every mask head's bias so that training starts from M = `mask` instead of 0.5.

        A low start (warp wherever there is history) keeps a warped frame's texture where the engine's motion
        vectors carry it exactly; the mask head then only has to learn where to hallucinate (disocclusions)."""
        for scale in self.scales:
            if hasattr(scale, "mask_head"):
                nn.init.constant_(scale.mask_head[-1].bias, math.log(mask / (1.0 - mask)))

    def forward(self, inputs: GeneratorInputs, scales: int | None = None) -> list[ScaleOutput]:
        """`scales` < n_scales runs only the coarsest ones, the inputs being at the finest of those (training's
        coarse-first phases); the default runs every scale on full-resolution inputs."""
        n = self.cfg.n_scales if scales is None else scales
        labels, prev, extras, motion = inputs.labels, inputs.prev_frames, inputs.extras, inputs.motion
        pyramid = [(labels, prev, extras, motion)]
        for _ in range(n - 1):
            b, t, c, h, w = labels.shape
            labels = downsample(labels.reshape(b, t * c, h, w)).reshape(b, t, c, (h + 1) // 2, (w + 1) // 2)
            bp, tp = prev.shape[:2]
            prev = downsample(prev.reshape(bp, tp * 3, h, w)).reshape(bp, tp, 3, (h + 1) // 2, (w + 1) // 2)
            extras = downsample(extras) if extras is not None else None
            motion = downsample(motion) * 0.5 if motion is not None else None
            pyramid.append((labels, prev, extras, motion))
        outputs: list[ScaleOutput] = []
        features = None
        for level, scale in enumerate(self.scales[:n]):
            lab, pre, ext, mot = pyramid[n - 1 - level]
            out, features = scale(lab, ext, pre, inputs.has_history, mot, features)
            outputs.append(out)
        return outputs

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
