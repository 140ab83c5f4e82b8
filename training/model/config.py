"""Generator configurations: the paper's and small CPU presets, by name or from a YAML file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from neurender.common.typed_config import build

MODALITY_CHANNELS = {"pose": 3, "edges": 1}
# Bicubic resampling keeps texture sharp when a frame is warped again and again (bilinear blurs it a little at
# every fractional shift); both are interpolating, so zero flow and whole-pixel shifts stay exact.
WARP_SAMPLING = ("bilinear", "bicubic")


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that fixes the generator's shape. Saved in checkpoints and bundles."""

    modality: str = "segmentation"  # segmentation | pose | edges
    num_classes: int = 36  # segmentation only
    history: int = 2  # L: previous label maps and generated frames read per step
    ngf: int = 32  # width of the coarsest scale's first layer
    n_downsample: int = 2
    n_blocks: int = 6  # residual blocks of the coarsest scale, split between encoder and decoders
    n_scales: int = 1  # coarse-to-fine spatial scales (1-3); finer ones are local enhancers
    n_blocks_local: int = 3
    norm: str = "instance"  # instance | batch | none
    use_instances: bool = False  # instance-boundary channel from instance IDs
    use_depth: bool = False  # normalised depth channel from the G-buffer
    max_depth: float = 100.0  # depth normalisation range, scene units
    use_motion: bool = False  # engine motion vectors: input channels and the flow's base
    style_dim: int = 0  # per-class style code width (0: no style input)
    fg_classes: tuple[int, ...] = ()  # classes drawn by the label-only foreground branch (never warped)
    flow_multiplier: float = 20.0  # flow head output x this = pixels at the coarsest scale
    use_flow: bool = True  # False: per-frame baseline (no warping, no history)
    warp_sampling: str = "bilinear"  # how the previous frame is resampled along the flow: bilinear | bicubic

    def __post_init__(self) -> None:
        if self.modality not in ("segmentation", "pose", "edges"):
            raise ValueError(f"modality {self.modality!r}: expected segmentation, pose or edges")
        if not 1 <= self.n_scales <= 3:
            raise ValueError(f"n_scales {self.n_scales}: expected 1 to 3")
        if self.history < 1:
            raise ValueError(f"history {self.history}: expected at least 1")
        if self.warp_sampling not in WARP_SAMPLING:
            raise ValueError(f"warp_sampling {self.warp_sampling!r}: expected one of {', '.join(WARP_SAMPLING)}")
        if self.norm not in ("instance", "batch", "none"):
            raise ValueError(f"norm {self.norm!r}: expected instance, batch or none")
        if self.ngf % (2 ** (self.n_scales - 1)):
            raise ValueError(f"ngf {self.ngf} must be divisible by 2^(n_scales-1) = {2 ** (self.n_scales - 1)}")
        if self.fg_classes and self.modality != "segmentation":
            raise ValueError("fg_classes needs a segmentation model")
        if any(not 0 <= c < self.num_classes for c in self.fg_classes):
            raise ValueError(f"fg_classes {self.fg_classes} must lie in 0..{self.num_classes - 1}")

    @property
    def label_channels(self) -> int:
        """Channels of one frame's label encoding."""
        return self.num_classes if self.modality == "segmentation" else MODALITY_CHANNELS[self.modality]

    @property
    def extra_channels(self) -> int:
        """Dense per-pixel channels beside the label encodings: instance edges, depth, motion, style."""
        return int(self.use_instances) + int(self.use_depth) + 2 * int(self.use_motion) + self.style_dim

    @property
    def multiple_of(self) -> int:
        """Frame sides must be a multiple of this."""
        return 2 ** (self.n_downsample + self.n_scales - 1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fg_classes"] = list(self.fg_classes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GeneratorConfig:
        return build(cls, d, "generator")


def frame_size_problem(height: int, width: int, multiple: int) -> str | None:
    """None if a bundle whose generator needs sides a multiple of `multiple` can render frames of this size
    (the rule bundle_export writes: both sides multiples of it, at least two of them), else what is wrong."""
    if height % multiple or width % multiple or min(height, width) < 2 * multiple:
        return f"frame sides must be multiples of {multiple}, at least {2 * multiple}"
    return None


# The paper's configurations (Wang et al. 2018 and the reference scripts) and small presets for CPUs.
PRESETS: dict[str, GeneratorConfig] = {
    # Street scenes: ngf 128, 3 downsamples, 9 blocks; 3 scales for 2048x1024.
    "paper-street": GeneratorConfig(
        ngf=128, n_downsample=3, n_blocks=9, n_scales=3, num_classes=36, use_instances=True, fg_classes=(26,)
    ),
    "paper-face": GeneratorConfig(modality="edges", ngf=64, n_downsample=3, n_blocks=9, n_scales=1),
    "paper-pose": GeneratorConfig(modality="pose", ngf=64, n_downsample=3, n_blocks=9, n_scales=1),
    # Runs interactively on 2 CPU cores.
    "tiny": GeneratorConfig(ngf=16, n_downsample=2, n_blocks=4, n_scales=1, num_classes=12),
    "tiny-2scale": GeneratorConfig(ngf=16, n_downsample=2, n_blocks=4, n_scales=2, num_classes=12),
    "tiny-engine": GeneratorConfig(
        ngf=16,
        n_downsample=2,
        n_blocks=4,
        n_scales=1,
        num_classes=12,
        use_instances=True,
        use_depth=True,
        use_motion=True,
    ),
    "tiny-pose": GeneratorConfig(modality="pose", ngf=16, n_downsample=2, n_blocks=4),
    "tiny-edges": GeneratorConfig(modality="edges", ngf=16, n_downsample=2, n_blocks=4),
}


def load_generator_config(name_or_path: str, **overrides: Any) -> GeneratorConfig:
    """A preset by name, or a YAML file (optionally `preset: NAME` plus overrides)."""
    if name_or_path in PRESETS:
        base, options = PRESETS[name_or_path], {}
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise ValueError(f"{name_or_path!r} is neither a preset ({', '.join(PRESETS)}) nor a YAML file")
        options = yaml.safe_load(path.read_text()) or {}
        preset = options.pop("preset", None)
        base = PRESETS[preset] if preset else GeneratorConfig()
    merged = {**base.to_dict(), **options, **overrides}
    return GeneratorConfig.from_dict(merged) if merged != base.to_dict() else base


def per_frame_baseline(config: GeneratorConfig) -> GeneratorConfig:
    """The same networks with every temporal part off: pix2pixHD-style per-frame synthesis."""
    return replace(config, use_flow=False, use_motion=False)


__all__ = ["GeneratorConfig", "PRESETS", "load_generator_config", "per_frame_baseline"]
