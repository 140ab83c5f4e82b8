"""The vid2vid losses: adversarial (LSGAN or hinge), discriminator feature matching, and the flow terms.

Every loss is a mean over all elements of the batch (masked terms too, as vid2vid's MaskedL1 does), so the
loss of a batch is the mean of its samples' losses: DDP's gradient averaging over processes then equals one
process with the combined batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neurender.training.discriminators import Features
from neurender.training.model.warp import warp

GAN_MODES = ("lsgan", "hinge")


class GANLoss:
    """Least-squares (vid2vid) or hinge (imaginaire) objective over multi-scale patch predictions."""

    def __init__(self, mode: str) -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"gan mode {mode!r}: expected one of {GAN_MODES}")
        self.mode = mode

    def generator(self, fake: Features) -> torch.Tensor:
        losses = []
        for scale in fake:
            pred = scale[-1]
            losses.append(F.mse_loss(pred, torch.ones_like(pred)) if self.mode == "lsgan" else -pred.mean())
        return torch.stack(losses).mean()

    def discriminator(self, real: Features, fake: Features) -> torch.Tensor:
        losses = []
        for real_scale, fake_scale in zip(real, fake, strict=True):
            r, f = real_scale[-1], fake_scale[-1]
            if self.mode == "lsgan":
                losses.append(0.5 * (F.mse_loss(r, torch.ones_like(r)) + F.mse_loss(f, torch.zeros_like(f))))
            else:
                losses.append(0.5 * (F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()))
        return torch.stack(losses).mean()


def feature_matching(fake: Features, real: Features) -> torch.Tensor:
    """pix2pixHD's L1 between the discriminator's intermediate features of generated and real inputs.

    Weighted 1/num_scales per scale and 4/(n_layers+1) per layer; the patch predictions are left out.
    """
    total = fake[0][0].new_zeros(())
    for fake_scale, real_scale in zip(fake, real, strict=True):
        layer_weight = 4.0 / (len(fake_scale) - 1)  # pix2pixHD's 4 / (n_layers + 1): one per hidden layer
        for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            total = total + layer_weight / len(fake) * F.l1_loss(f, r.detach())
    return total


def masked_l1(x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 between x and target where mask is 1, averaged over every element (masked ones count as 0)."""
    return (torch.abs(x - target) * mask).mean()


def flow_confidence(
    current: torch.Tensor, previous: torch.Tensor, flow: torch.Tensor, threshold: float
) -> torch.Tensor:
    """[B, 1, H, W]: 1 where `flow` warps the previous real frame onto the current one (vid2vid's check).

    Images in [-1, 1]; the squared error summed over colour channels must stay below `threshold`. It marks
    disocclusions, lighting changes and wrong flow alike as unreliable.
    """
    error = (current - warp(previous, flow)).pow(2).sum(dim=1, keepdim=True)
    return (error < threshold).float()


def flow_loss(flow: torch.Tensor, target: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """Generated flow against ground truth (pixels), where the ground truth is trustworthy."""
    return masked_l1(flow, target, confidence)


def flow_warp_loss(
    flow: torch.Tensor, real_current: torch.Tensor, real_previous: torch.Tensor, confidence: torch.Tensor
) -> torch.Tensor:
    """The generated flow must carry the real previous frame onto the real current one."""
    return masked_l1(warp(real_previous, flow), real_current, confidence)


def output_warp_loss(
    output: torch.Tensor, previous_output: torch.Tensor, flow_gt: torch.Tensor, confidence: torch.Tensor
) -> torch.Tensor:
    """The output must agree with the previous output moved along the ground-truth flow."""
    return masked_l1(output, warp(previous_output, flow_gt).detach(), confidence)


def mask_loss(mask: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """Push M (1 = hallucinate) towards warping where the flow is reliable and hallucinating where it is not."""
    return torch.abs(mask - (1.0 - confidence)).mean()


def compose_flows(later: torch.Tensor, earlier: torch.Tensor) -> torch.Tensor:
    """Backward flow t -> t-2 from flows t -> t-1 (`later`) and t-1 -> t-2 (`earlier`), all in pixels."""
    return later + warp(earlier, later)


__all__ = [
    "GANLoss",
    "GAN_MODES",
    "feature_matching",
    "masked_l1",
    "flow_confidence",
    "flow_loss",
    "flow_warp_loss",
    "output_warp_loss",
    "mask_loss",
    "compose_flows",
]
