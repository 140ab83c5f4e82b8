"""Training run configuration: one YAML file (training/configs/*.yaml) -> TrainConfig.

Every section maps onto a dataclass below; unknown keys are refused with the list of known ones, so a typo
never silently trains the wrong model. The defaults are the paper's (vid2vid, Wang et al. 2018) where it has
one. Paths in the file are relative to the current directory.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from neurender.common.typed_config import ConfigError, apply_overrides, build, check
from neurender.training.losses import GAN_MODES
from neurender.training.model.config import GeneratorConfig, load_generator_config, per_frame_baseline


@dataclass(frozen=True)
class DataConfig:
    root: str = ""  # dataset folder (training/dataset.py format)
    sequences: tuple[str, ...] = ()  # train on these sequences only (empty: all but `holdout`)
    holdout: tuple[str, ...] = ()  # sequences kept out of training (for evaluation)
    frames: tuple[int, int] | None = None  # [first, end) frame range of every sequence used for training
    crop: int | None = 64  # square random crop, same over a clip (None: full frames)
    flip: bool = True
    batch_size: int = 1  # clips per process and micro-batch
    workers: int = 0  # DataLoader worker processes


@dataclass(frozen=True)
class DiscriminatorConfig:
    ndf: int = 64
    n_layers: int = 3
    num_scales: int = 2
    norm: str = "instance"
    temporal_frames: int = 3  # K frames per video-discriminator input
    temporal_scales: int = 2  # temporal strides 1, K, K^2, ...; 0 switches D_V off


@dataclass(frozen=True)
class EncoderConfig:
    nef: int = 16
    n_downsample: int = 3
    pool: str = "instance"  # instance: per instance ID where the data has them, else per class


@dataclass(frozen=True)
class LossConfig:
    gan_mode: str = "lsgan"
    gan: float = 1.0  # image GAN on the frame and on the hallucinated image
    feature_matching: float = 10.0
    vgg: float = 10.0  # only when vgg_weights is given
    vgg_weights: str | None = None  # torchvision-layout VGG19 state_dict; nothing is ever downloaded
    l1: float = 0.0  # optional L1 to the real frame (not in the paper)
    flow: float = 10.0  # flow L1 to ground truth, divided by 2^(active scales - 1)
    flow_warp: float = 10.0  # the generated flow warps the real previous frame onto the real one
    output_warp: float = 10.0  # the output agrees with the previous output moved by the real flow
    mask: float = 1.0
    temporal_gan: float = 1.0
    temporal_feature_matching: float = 10.0
    confidence_threshold: float = 0.02  # photometric check for flows without a flow_valid mask


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ttur: bool = False  # G lr/2, D lr*2, betas (0, 0.9)
    ema_decay: float = 0.999  # 0 switches the EMA off (export then uses the raw weights)
    ema_start: int = 0  # iterations before the EMA starts tracking
    amp: bool = True  # mixed precision, CUDA only (never on CPU)
    accumulate: int = 1  # micro-batches per optimiser step
    grad_clip: float = 0.0  # 0: no clipping


@dataclass(frozen=True)
class ScheduleConfig:
    epochs: int = 20
    iters_per_epoch: int | None = None  # None: one pass over every clip window
    decay_epochs: int | None = None  # linear lr decay to 0 over the last N epochs (None: half of them)
    clip_length: int = 4  # frames per clip at first
    clip_length_max: int = 16
    clip_double_every: int = 5  # epochs
    coarse_epochs: int = 5  # epochs per scale before the next finer scale joins
    fix_coarse_epochs: int = 2  # epochs a newly added scale trains with the coarser ones frozen
    single_frame_epochs: int = 0  # warm-up: every frame a first frame (image branch only)
    real_start_prob: float = 0.5  # chance a clip starts from real previous frames instead of none
    minutes: float | None = None  # wall-time budget: the schedule is then driven by elapsed time
    max_steps: int | None = None  # stop after this many iterations (beside epochs or minutes, whichever ends first)


@dataclass(frozen=True)
class LogConfig:
    dir: str = "runs/default"  # checkpoints and TensorBoard events
    scalars_every: int = 10
    images_every: int = 200
    checkpoint_every: int = 200  # iterations; a checkpoint is also written at every epoch end
    progress: bool = True


@dataclass(frozen=True)
class TrainConfig:
    name: str = "run"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    baseline: bool = False  # per-frame baseline: the same networks with every temporal part off
    data: DataConfig = field(default_factory=DataConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    log: LogConfig = field(default_factory=LogConfig)
    seed: int = 0
    initial_mask: float = 0.5  # M when training starts (the mask heads' bias); lower starts from warping

    def __post_init__(self) -> None:
        if self.loss.gan_mode not in GAN_MODES:
            raise ValueError(f"loss.gan_mode {self.loss.gan_mode!r}: expected one of {GAN_MODES}")
        if self.encoder.pool not in ("instance", "class"):
            raise ValueError(f"encoder.pool {self.encoder.pool!r}: expected instance or class")
        if self.generator.style_dim and self.generator.modality != "segmentation":
            raise ValueError("generator.style_dim needs a segmentation model (styles are per class)")
        s = self.schedule
        if s.clip_length < 1 or s.clip_length_max < s.clip_length:
            raise ValueError(
                f"schedule.clip_length {s.clip_length} / clip_length_max {s.clip_length_max}: expected 1 <= length <= max"
            )
        if s.max_steps is not None and s.max_steps < 1:
            raise ValueError(f"schedule.max_steps {s.max_steps}: expected at least 1")
        if not 0.0 < self.initial_mask < 1.0:
            raise ValueError(f"initial_mask {self.initial_mask}: expected strictly between 0 and 1")
        if not 0.0 <= s.real_start_prob <= 1.0:
            raise ValueError(f"schedule.real_start_prob {s.real_start_prob}: expected 0..1")
        if s.epochs < 1 or not 0 <= (s.decay_epochs or 0) <= s.epochs:
            raise ValueError(
                f"schedule.epochs {s.epochs} / decay_epochs {s.decay_epochs}: expected 0 <= decay <= epochs"
            )
        if self.optim.accumulate < 1 or self.data.batch_size < 1:
            raise ValueError("optim.accumulate and data.batch_size must be at least 1")

    @property
    def model(self) -> GeneratorConfig:
        """The generator actually trained: the baseline switches every temporal part off."""
        return per_frame_baseline(self.generator) if self.baseline else self.generator

    @property
    def temporal(self) -> bool:
        return self.model.use_flow

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists and scalars (YAML- and JSON-safe); train_config_from_dict reads it back."""
        d = asdict(self)
        d["generator"] = self.generator.to_dict()
        return _plain(d)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


SECTIONS = {
    "data": DataConfig,
    "discriminator": DiscriminatorConfig,
    "encoder": EncoderConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "schedule": ScheduleConfig,
    "log": LogConfig,
}


def train_config_from_dict(d: dict[str, Any]) -> TrainConfig:
    d = dict(d)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown top-level option(s) {unknown}; known: {sorted(known)}")
    generator = d.pop("generator", None)
    if isinstance(generator, str):
        gen = load_generator_config(generator)
    elif isinstance(generator, dict):
        generator = dict(generator)
        preset = generator.pop("preset", None)
        gen = load_generator_config(preset, **generator) if preset else GeneratorConfig.from_dict(generator)
    elif isinstance(generator, GeneratorConfig):
        gen = generator
    else:
        gen = GeneratorConfig()
    sections = {name: build(cls, d.pop(name, None), name) for name, cls in SECTIONS.items()}
    top = {k: check(typing.get_type_hints(TrainConfig)[k], v, k) for k, v in d.items()}
    return TrainConfig(generator=gen, **sections, **top)


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """A YAML file, then `section.option=value` overrides (values read as YAML scalars, numbers as numbers)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config {path}: no such file")
    d = yaml.safe_load(path.read_text()) or {}
    if not isinstance(d, dict):
        raise ConfigError(f"training config {path}: expected a mapping at the top level")
    d = apply_overrides(d, overrides or [])
    return train_config_from_dict(d)


def with_changes(cfg: TrainConfig, **sections: dict[str, Any]) -> TrainConfig:
    """A copy with some options of some sections replaced, e.g. with_changes(cfg, log={"dir": "x"})."""
    changes: dict[str, Any] = {}
    for name, values in sections.items():
        current = getattr(cfg, name)
        changes[name] = replace(current, **values) if is_dataclass(current) else values
    return replace(cfg, **changes)
