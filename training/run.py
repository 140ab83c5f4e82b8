"""Start (or resume) a training run in this process; under torchrun, every process calls this."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from neurender.training.checkpoint import CHECKPOINT_NAME
from neurender.training.dataset import open_dataset
from neurender.training.distributed import setup, teardown
from neurender.training.subset import select
from neurender.training.train_config import TrainConfig
from neurender.training.trainer import Trainer

log = logging.getLogger(__name__)


def training_data(cfg: TrainConfig):
    """The training part of the configured dataset, checked against the generator config."""
    if not cfg.data.root:
        raise ValueError("data.root is empty: set the dataset folder in the config")
    dataset = select(open_dataset(cfg.data.root), cfg.data.sequences, cfg.data.holdout, cfg.data.frames)
    meta = dataset.meta
    model = cfg.model
    if meta.modality != model.modality:
        raise ValueError(f"the dataset's modality is {meta.modality}, the generator's is {model.modality}")
    if model.modality == "segmentation" and meta.num_classes > model.num_classes:
        raise ValueError(f"the dataset has class IDs up to {meta.num_classes - 1}, "
                         f"the generator only {model.num_classes} classes (generator.num_classes)")
    return dataset


def train(cfg: TrainConfig, resume: bool | str | Path = False, device: str | None = None) -> Trainer:
    """Train to the end of the schedule. resume=True continues from the run folder's checkpoint if there is
    one; a path resumes from that checkpoint."""
    dist = setup(device)
    try:
        trainer = Trainer(cfg, training_data(cfg), dist)
        checkpoint = Path(cfg.log.dir) / CHECKPOINT_NAME if resume is True else (Path(resume) if resume else None)
        if checkpoint is not None and checkpoint.exists():
            trainer.load(checkpoint)
        elif resume and resume is not True:
            raise FileNotFoundError(f"checkpoint {checkpoint}: no such file")
        if dist.is_main:
            Path(cfg.log.dir).mkdir(parents=True, exist_ok=True)
            (Path(cfg.log.dir) / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        trainer.fit()
        return trainer
    finally:
        teardown(dist)
