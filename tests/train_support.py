"""Small on-disk datasets and configs for the training tests: moving textured shapes with exact motion.

Class 0 is a textured background that pans; classes 1.. are squares that move on their own, each with a
texture that moves with it. Motion is an integer number of pixels per frame, so the backward motion vectors
are exact and warping frame t-1 along them reproduces frame t wherever nothing was uncovered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from neurender.proto.classes import ClassInfo
from neurender.training.dataset import DatasetMeta, SequenceWriter, write_meta
from neurender.training.train_config import TrainConfig, train_config_from_dict

COLOURS = [(90, 140, 60), (200, 60, 50), (50, 90, 210), (230, 200, 40), (150, 60, 170)]


def _texture(ys: np.ndarray, xs: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fx, fy, phase = rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.9), rng.uniform(0, 6)
    return 0.5 + 0.5 * np.sin(xs * fx + phase) * np.cos(ys * fy)


def write_moving_shapes(
    root: Path,
    sequences: int = 2,
    frames: int = 8,
    size: int = 32,
    num_classes: int = 3,
    seed: int = 0,
    motion: bool = True,
    instances: bool = False,
    depth: bool = False,
) -> Path:
    """A segmentation dataset in training/dataset.py's format; returns `root`."""
    root = Path(root)
    classes = tuple(ClassInfo(i, f"class{i}", COLOURS[i % len(COLOURS)]) for i in range(num_classes))
    write_meta(root, DatasetMeta("segmentation", classes, 10.0, (size, size)))
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    for s in range(sequences):
        rng = np.random.default_rng([seed, s])
        pan = int(rng.integers(-1, 2))
        objects = []
        for c in range(1, num_classes):
            side = int(rng.integers(size // 5, size // 3))
            objects.append(
                {
                    "cls": c,
                    "side": side,
                    "pos": rng.integers(0, size - side, size=2).astype(int),
                    "vel": rng.integers(-2, 3, size=2).astype(int),
                }
            )
        writer = SequenceWriter(root, f"seq{s:02d}")
        prev_labels = None
        for t in range(frames):
            labels = np.zeros((size, size), np.uint8)
            inst = np.zeros((size, size), np.uint16)
            mv = np.zeros((size, size, 2), np.float32)
            mv[..., 0] = pan  # background content moves by -pan per frame: p came from p + pan
            shade = _texture(ys, xs + pan * t, seed * 100 + s)
            image = np.array(COLOURS[0], np.float64) * (0.6 + 0.4 * shade[..., None])
            for k, o in enumerate(objects):
                y0, x0 = o["pos"] + o["vel"] * t
                y0, x0 = int(np.clip(y0, 0, size - o["side"])), int(np.clip(x0, 0, size - o["side"]))
                prev = o["pos"] + o["vel"] * (t - 1)
                py, px = int(np.clip(prev[0], 0, size - o["side"])), int(np.clip(prev[1], 0, size - o["side"]))
                sl = (slice(y0, y0 + o["side"]), slice(x0, x0 + o["side"]))
                labels[sl] = o["cls"]
                inst[sl] = k + 1
                mv[sl] = (px - x0, py - y0)
                tex = _texture(ys[sl] - y0, xs[sl] - x0, seed * 100 + s * 10 + k + 1)
                image[sl] = np.array(COLOURS[o["cls"] % len(COLOURS)], np.float64) * (0.6 + 0.4 * tex[..., None])
            if t == 0:
                mv[:] = 0
            arrays = {"images": np.clip(image, 0, 255).astype(np.uint8), "labels": labels}
            if motion:
                arrays["motion"] = mv
                valid = np.zeros((size, size), np.uint8)
                if prev_labels is not None:
                    sy = np.clip(np.round(ys + mv[..., 1]).astype(int), 0, size - 1)
                    sx = np.clip(np.round(xs + mv[..., 0]).astype(int), 0, size - 1)
                    inside = (
                        (ys + mv[..., 1] >= 0)
                        & (ys + mv[..., 1] <= size - 1)
                        & (xs + mv[..., 0] >= 0)
                        & (xs + mv[..., 0] <= size - 1)
                    )
                    valid = ((prev_labels[sy, sx] == labels) & inside).astype(np.uint8) * 255
                arrays["flow_valid"] = valid
            if instances:
                arrays["instances"] = inst
            if depth:
                arrays["depth"] = (5.0 + labels.astype(np.float32)).astype(np.float16)
            writer.write(t, **arrays)
            prev_labels = labels
    return root


def tiny_train_config(data_root: Path, log_dir: Path, **sections: dict) -> TrainConfig:
    """A trainer config small enough for tests: 8-wide networks, 32 px crops, a few iterations."""
    d: dict = {
        "name": "test",
        "generator": {"preset": "tiny", "ngf": 8, "n_blocks": 2, "num_classes": 3},
        "data": {"root": str(data_root), "crop": 32, "batch_size": 1},
        "discriminator": {"ndf": 8, "n_layers": 2, "num_scales": 1, "temporal_scales": 1},
        "optim": {"ema_decay": 0.9},
        "schedule": {
            "epochs": 2,
            "iters_per_epoch": 2,
            "decay_epochs": 1,
            "clip_length": 3,
            "clip_length_max": 6,
            "clip_double_every": 1,
            "coarse_epochs": 1,
            "fix_coarse_epochs": 1,
            "real_start_prob": 0.5,
        },
        "log": {"dir": str(log_dir), "scalars_every": 1, "images_every": 1, "checkpoint_every": 1, "progress": False},
        "seed": 3,
    }
    for name, values in sections.items():
        if isinstance(values, dict) and isinstance(d.get(name), dict):
            d[name] = {**d[name], **values}
        else:
            d[name] = values
    return train_config_from_dict(d)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank: int, world_size: int, port: int, config: dict) -> None:
    """One torchrun-like process of a gloo DDP run (for torch.multiprocessing.spawn)."""
    import os

    import torch

    from neurender.training.run import train

    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    train(train_config_from_dict(config), device="cpu")


def randomise_batch_norm(module: nn.Module, seed: int = 0) -> None:
    """Give every batch norm trained-looking running statistics and affine parameters. Fresh ones (mean 0,
    variance 1, scale 1, shift 0) are nearly the identity, under which a wrong fold into a convolution would
    still pass a parity test."""
    g = torch.Generator().manual_seed(seed)
    for bn in (m for m in module.modules() if isinstance(m, nn.BatchNorm2d)):
        with torch.no_grad():
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=g) * 0.1)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            bn.weight.copy_(1.0 + torch.randn(bn.num_features, generator=g) * 0.2)
            bn.bias.copy_(torch.randn(bn.num_features, generator=g) * 0.1)
