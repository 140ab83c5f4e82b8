"""A batch of clips from training/dataset.py's ClipDataset -> the networks' float tensors at one scale.

The encodings are the ones the exported step computes (encode_labels, extra_channels, float16 depth and
motion as on the wire), so training sees what serving sees. For a coarse-first phase the clip is brought to
the active resolution with the generator's own pyramid operator.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from neurender.training.losses import flow_confidence
from neurender.training.model.config import GeneratorConfig
from neurender.training.model.encoding import downsample, frames_to_float, instance_boundaries
from neurender.training.model.step import encode_labels, extra_channels


@dataclass
class EncodedClip:
    """[B, T, ...] tensors at one resolution (h, w)."""

    labels: torch.Tensor  # [B, T, Cl, h, w] label encodings
    condition: torch.Tensor  # [B, T, Cc, h, w] what the discriminators are conditioned on
    images: torch.Tensor  # [B, T, 3, h, w] real frames in [-1, 1]
    extras: torch.Tensor | None  # [B, T, E, h, w] instance edges, depth, motion (style is added per frame)
    motion: torch.Tensor | None  # [B, T, 2, h, w] engine flow fed to the generator, pixels
    flow: torch.Tensor | None  # [B, T, 2, h, w] ground-truth backward flow t -> t-1 (t = 0 unused)
    confidence: torch.Tensor | None  # [B, T, 1, h, w] 1 where that flow is trustworthy
    regions: torch.Tensor | None  # [B, T, h, w] feature-encoder pooling regions

    @property
    def length(self) -> int:
        return self.labels.shape[1]


def raw_labels(
    cfg: GeneratorConfig, batch: dict[str, torch.Tensor], pose_convention: object | None = None
) -> torch.Tensor:
    """The generator's label input as the wire carries it: [B, T, H, W] IDs / edges or [B, T, H, W, 3] pose maps."""
    if cfg.modality == "segmentation":
        labels = batch["labels"]
        top = int(labels.max())
        if top >= cfg.num_classes:
            raise ValueError(f"the data has class ID {top}, but the generator has num_classes {cfg.num_classes}")
        return labels
    if cfg.modality == "edges":
        return batch["edges"]
    from neurender.retarget.draw import draw_pose_map

    keypoints = batch["pose"].numpy()
    b, t = keypoints.shape[:2]
    h, w = batch["image"].shape[2:4]
    maps = np.stack(
        [np.stack([draw_pose_map(keypoints[i, j], h, w, pose_convention) for j in range(t)]) for i in range(b)]
    )
    return torch.from_numpy(maps)


def _down(x: torch.Tensor, levels: int, scale: float = 1.0) -> torch.Tensor:
    """The generator's pyramid operator applied `levels` times to [B, T, C, H, W]."""
    if levels == 0:
        return x
    b, t = x.shape[:2]
    y = x.reshape(b * t, *x.shape[2:])
    for _ in range(levels):
        y = downsample(y) * scale
    return y.reshape(b, t, *y.shape[1:])


def encode_clip(
    cfg: GeneratorConfig,
    batch: dict[str, torch.Tensor],
    levels_down: int,
    temporal: bool,
    confidence_threshold: float,
    pool: str,
    device: torch.device,
    pose_convention: object | None = None,
) -> EncodedClip:
    """Encode a ClipDataset batch; `levels_down` pyramid levels below the full resolution."""
    labels_raw = raw_labels(cfg, batch, pose_convention).to(device)
    b, t, h, w = labels_raw.shape[:4]
    labels = encode_labels(cfg, labels_raw)  # [B, T, Cl, H, W]
    images = frames_to_float(batch["image"].to(device))  # [B, T, 3, H, W]
    flat = lambda x: x.reshape(b * t, *x.shape[2:])  # noqa: E731
    instances = batch.get("instances")
    if cfg.use_instances and instances is None:
        raise ValueError("the generator uses instance maps (use_instances) but the dataset has no instances/")
    if cfg.use_depth and "depth" not in batch:
        raise ValueError("the generator uses depth (use_depth) but the dataset has no depth/")
    if cfg.use_motion and "motion" not in batch:
        raise ValueError("the generator uses motion vectors (use_motion) but the dataset has no motion/")
    boundaries = instance_boundaries(flat(instances.to(device))).reshape(b, t, 1, h, w) if cfg.use_instances else None
    depth = flat(batch["depth"].to(device).half()) if cfg.use_depth else None  # as on the wire
    motion = None
    if cfg.use_motion:
        motion = batch["motion"].to(device).half().float().permute(0, 1, 4, 2, 3)  # [B, T, 2, H, W]
    if cfg.use_instances or cfg.use_depth or cfg.use_motion:
        dense = extra_channels(
            replace(cfg, style_dim=0),
            flat(labels),  # the style map is added per frame
            flat(instances.to(device)) if cfg.use_instances else None,
            depth,
            flat(motion) if motion is not None else None,
            None,
        )
        extras = dense.reshape(b, t, *dense.shape[1:])
    else:
        extras = None
    condition = labels if boundaries is None else torch.cat((labels, boundaries), dim=2)

    flow = confidence = None
    if temporal and t > 1:
        if "motion" in batch:
            flow = batch["motion"].to(device).float().permute(0, 1, 4, 2, 3)
        elif "flow" in batch:
            flow = batch["flow"].to(device).float().permute(0, 1, 4, 2, 3)
        else:
            raise ValueError("temporal training needs ground-truth flow: the dataset has neither motion/ nor flow/")
        if "flow_valid" in batch:
            confidence = batch["flow_valid"].to(device).float().unsqueeze(2)
        else:
            confidence = torch.zeros_like(flow[:, :, :1])
            confidence[:, 1:] = flow_confidence(
                flat(images[:, 1:]), flat(images[:, :-1]), flat(flow[:, 1:]), confidence_threshold
            ).reshape(b, t - 1, 1, h, w)

    regions = None
    if cfg.style_dim:
        use_instances = pool == "instance" and instances is not None
        regions = (instances if use_instances else batch["labels"]).to(device)

    if levels_down:
        labels = _down(labels, levels_down)
        condition = _down(condition, levels_down)
        images = _down(images, levels_down)
        extras = _down(extras, levels_down) if extras is not None else None
        motion = _down(motion, levels_down, 0.5) if motion is not None else None
        flow = _down(flow, levels_down, 0.5) if flow is not None else None
        confidence = (_down(confidence, levels_down) > 0.999).float() if confidence is not None else None
        step = 2**levels_down
        regions = regions[..., ::step, ::step] if regions is not None else None
    return EncodedClip(labels, condition, images, extras, motion, flow, confidence, regions)
