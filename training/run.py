"""Start (or resume) a training run in this process; under torchrun, every process calls this."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from neurender.common.errors import UserError
from neurender.training.checkpoint import CHECKPOINT_NAME
from neurender.training.dataset import DatasetError, open_dataset
from neurender.training.distributed import setup, teardown
from neurender.training.subset import select
from neurender.training.train_config import TrainConfig, with_changes
from neurender.training.trainer import Trainer

log = logging.getLogger(__name__)

DATA_COMMANDS = {  # how to make a dataset of each modality, for the error when data.root is missing
    "segmentation": "neurender dataset synth --out {root}",
    "pose": "neurender dataset dance-synth --out {root}",
    "edges": "neurender dataset from-video VIDEO --modality edges --out {root}",
}


class RunExistsError(UserError):
    """The run folder already holds a run and --resume was not given."""


def check_run_folder(cfg: TrainConfig, resume: bool | str | Path) -> None:
    """Never overwrite a run: a run folder holding a checkpoint is continued (--resume) or refused."""
    folder = Path(cfg.log.dir)
    if not resume and (folder / CHECKPOINT_NAME).exists():
        raise RunExistsError(
            f"run folder {folder} already holds a run ({CHECKPOINT_NAME}); continue it with --resume, "
            "or train into a new folder with --out runs/NEW_NAME"
        )


def check_data_root(cfg: TrainConfig, made_by: str | None = None) -> None:
    """Raise a DatasetError naming the command that makes data.root when it is not there."""
    root = cfg.data.root
    if not root:
        raise DatasetError("data.root is empty: set the dataset folder with --set data.root=DIR")
    if not Path(root).is_dir():
        command = made_by or DATA_COMMANDS.get(cfg.model.modality, "neurender dataset --help").format(root=root)
        raise DatasetError(
            f"data.root {root}: not a directory; make it with `{command}`, or train on your own "
            f"dataset with --set data.root=DIR"
        )


def derive_holdout(cfg: TrainConfig) -> TrainConfig:
    """A recipe's holdout names sequences of the dataset it was written for; on another dataset hold out the last
    fifth of its sequences instead (none when it has only one), and say so."""
    if not cfg.data.holdout or cfg.data.sequences:
        return cfg
    names = [s.name for s in open_dataset(cfg.data.root).sequences]
    if set(cfg.data.holdout) <= set(names):
        return cfg
    keep = names[: -max(1, len(names) // 5)] if len(names) > 1 else names
    holdout = tuple(n for n in names if n not in keep)
    log.warning(
        "data.holdout %s: not in %s; holding out %s instead (set it with --set 'data.holdout=[NAME, ...]')",
        list(cfg.data.holdout),
        cfg.data.root,
        list(holdout) or "nothing",
    )
    return with_changes(cfg, data={"holdout": holdout})


def training_data(cfg: TrainConfig):
    """The training part of the configured dataset, checked against the generator config."""
    check_data_root(cfg)
    dataset = select(open_dataset(cfg.data.root), cfg.data.sequences, cfg.data.holdout, cfg.data.frames)
    meta = dataset.meta
    model = cfg.model
    if meta.modality != model.modality:
        raise ValueError(f"the dataset's modality is {meta.modality}, the generator's is {model.modality}")
    if model.modality == "segmentation" and meta.num_classes > model.num_classes:
        raise ValueError(
            f"the dataset has class IDs up to {meta.num_classes - 1}, "
            f"the generator only {model.num_classes} classes (generator.num_classes)"
        )
    return dataset


def train(cfg: TrainConfig, resume: bool | str | Path = False, device: str | None = None) -> Trainer:
    """Train to the end of the schedule. resume=True continues from the run folder's checkpoint if there is
    one; a path resumes from that checkpoint. A run folder that already holds a run needs resume."""
    check_run_folder(cfg, resume)
    check_data_root(cfg)
    cfg = derive_holdout(cfg)
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
