"""A run killed mid-epoch (SIGKILL) and resumed ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from neurender.tests.train_support import tiny_train_config, write_moving_shapes
from neurender.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from neurender.training.run import train

# zero and real-start clips, clip length doubling at the epoch boundary, two scales with a coarse phase
SCHEDULE = {
    "epochs": 2,
    "iters_per_epoch": 4,
    "decay_epochs": 1,
    "clip_length": 3,
    "clip_length_max": 6,
    "clip_double_every": 1,
    "coarse_epochs": 1,
    "fix_coarse_epochs": 1,
    "real_start_prob": 0.5,
}
GENERATOR = {"preset": "tiny-2scale", "ngf": 8, "n_blocks": 2, "num_classes": 3}


def all_state(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run)
    out = {}
    for part in ("synthesis", "ema", "d_image", "d_video"):
        out.update({f"{part}.{k}": v for k, v in state[part].items()})
    for part in ("g_optimizer", "d_optimizer"):
        for index, slots in state[part]["state"].items():
            out.update({f"{part}.{index}.{k}": v for k, v in slots.items() if torch.is_tensor(v)})
    return out


def test_killed_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = write_moving_shapes(tmp_path / "data", sequences=2, frames=8, size=32)
    reference = train(tiny_train_config(data, tmp_path / "uninterrupted", generator=GENERATOR, schedule=SCHEDULE))
    total = reference.position.iteration

    cfg = tiny_train_config(data, tmp_path / "killed", generator=GENERATOR, schedule=SCHEDULE)
    config_file = tmp_path / "killed.yaml"
    config_file.write_text(yaml.safe_dump(cfg.to_dict()))
    process = subprocess.Popen(
        [sys.executable, "-m", "neurender.cli", "train", "--config", str(config_file), "--threads", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    checkpoint = tmp_path / "killed" / CHECKPOINT_NAME
    deadline = time.monotonic() + 120
    killed_at = None
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoint.exists():
            position = load_checkpoint(checkpoint)["position"]
            if position["epoch"] == 0 and position["epoch_iteration"] >= 1:
                process.send_signal(signal.SIGKILL)
                killed_at = position
                break
        time.sleep(0.02)
    process.wait(timeout=30)
    assert killed_at is not None, f"the run was not killed mid-epoch: {process.stderr.read().decode()[-2000:]}"
    stopped = load_checkpoint(checkpoint)["position"]
    assert stopped["iteration"] < total and stopped["epoch"] == 0, stopped  # really interrupted mid-epoch

    resumed = train(cfg, resume=True)
    assert resumed.position.iteration == total
    a, b = all_state(tmp_path / "uninterrupted"), all_state(tmp_path / "killed")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"
