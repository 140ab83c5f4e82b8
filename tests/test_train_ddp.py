"""DDP: two gloo processes with one clip each update the weights as one process with both clips does.

A batch of two and two batches of one differ in float summation order only (the gradients agree to ~1e-6
relative), but Adam's first steps are about lr * sign(gradient), so over many updates an element whose gradient
sits near zero can flip sign and drift by a full step; quantised (uint8) history fed back from the model's own
outputs amplifies such rounding too. So the comparison covers a few updates of clips that start from real
previous frames: every part (G, D_I at two scales, D_V at two strides, EMA, the shared
clip-start coin, the data split) takes part, and what it checks is DDP, not rounding.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.multiprocessing as mp

from neurender.tests.train_support import ddp_worker, free_port, tiny_train_config, write_moving_shapes
from neurender.training.checkpoint import load_checkpoint
from neurender.training.run import train
from neurender.training.trainer import Trainer

SCHEDULE = {
    "epochs": 1,
    "iters_per_epoch": 2,
    "decay_epochs": 0,
    "clip_length": 3,
    "clip_length_max": 3,
    "real_start_prob": 1.0,
}
# K = 2 frames at strides 1 and 2, two spatial scales: every discriminator takes part in every update
DISCRIMINATOR = {"ndf": 8, "n_layers": 2, "num_scales": 2, "temporal_frames": 2, "temporal_scales": 2}


def weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run)
    out = {}
    for part in ("synthesis", "ema", "d_image", "d_video"):
        out.update({f"{part}.{k}": v for k, v in (state[part] or {}).items()})
    return out


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_gloo_processes_match_one_process_with_the_combined_batch(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = write_moving_shapes(tmp_path / "data", sequences=2, frames=6, size=32)
    config = lambda run, **kw: tiny_train_config(
        data, tmp_path / run, schedule=SCHEDULE, discriminator=DISCRIMINATOR, **kw
    )  # noqa: E731
    single = train(config("single", data={"batch_size": 2}), device="cpu")
    assert single.d_video is not None and any(k.startswith("temporal_gan_1") for k in single.last_losses)
    # gradient accumulation over two micro-batches of one clip is the same update again
    train(config("accumulated", data={"batch_size": 1}, optim={"ema_decay": 0.9, "accumulate": 2}), device="cpu")
    mp.spawn(ddp_worker, args=(2, free_port(), config("ddp", data={"batch_size": 1}).to_dict()), nprocs=2, join=True)

    reference = weights(tmp_path / "single")
    initial = Trainer(single.cfg, single.dataset, single.dist).state_dict()
    untrained = {
        f"{part}.{k}": v for part in ("synthesis", "ema", "d_image", "d_video") for k, v in initial[part].items()
    }
    assert max_difference(untrained, reference) > 2e-4  # training moved the weights far beyond the tolerance
    assert max_difference(weights(tmp_path / "accumulated"), reference) < 1e-5
    assert max_difference(weights(tmp_path / "ddp"), reference) < 1e-5
    assert load_checkpoint(tmp_path / "ddp")["position"]["g_steps"] == single.position.g_steps
