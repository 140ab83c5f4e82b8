"""Damaged checkpoints and diverged runs never become served models: checksums, two generations with
fallback, and NaN/inf refused at resume, at export, at bundle load and during training."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from neurender.server.config import ServerConfig
from neurender.server.registry import RegistryError, load_registry
from neurender.tests.train_support import tiny_train_config, write_moving_shapes
from neurender.training.checkpoint import CHECKPOINT_NAME, PREVIOUS_NAME, CheckpointError, load_checkpoint, save_atomic
from neurender.training.export import export_checkpoint
from neurender.training.run import train
from neurender.training.trainer import TrainingDiverged

SCHEDULE = {"epochs": 1, "iters_per_epoch": 3, "clip_length": 2, "clip_length_max": 2}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moving_shapes(tmp_path_factory.mktemp("data"), sequences=2, frames=6, size=32)


@pytest.fixture(scope="module")
def trained_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("run") / "run"
    train(tiny_train_config(data, run, schedule=SCHEDULE))
    return run


def corrupt_4k(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 4096] = np.random.default_rng(0).bytes(4096)
    path.write_bytes(bytes(raw))


DAMAGE = {
    "4 KB of random bytes": (corrupt_4k, "checksum mismatch"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "checksum mismatch"),
    "empty": (lambda p: p.write_bytes(b""), "empty (0 bytes)"),
}


def test_two_generations_are_kept(trained_run):
    newest, previous = load_checkpoint(trained_run / CHECKPOINT_NAME), load_checkpoint(trained_run / PREVIOUS_NAME)
    order = lambda state: (state["position"]["iteration"], state["position"]["epoch"])  # noqa: E731
    assert order(previous) < order(newest)


@pytest.mark.parametrize("case", list(DAMAGE))
def test_resume_falls_back_to_the_previous_checkpoint(trained_run, data, tmp_path, caplog, case):
    damage, phrase = DAMAGE[case]
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    good_previous = load_checkpoint(run / PREVIOUS_NAME)["position"]["iteration"]
    damage(run / CHECKPOINT_NAME)
    caplog.set_level(logging.WARNING)
    longer = tiny_train_config(data, run, schedule={**SCHEDULE, "epochs": 2})
    resumed = train(longer, resume=True)
    warning = next(r.getMessage() for r in caplog.records if "using the previous checkpoint" in r.getMessage())
    assert phrase in warning and str(run / CHECKPOINT_NAME) in warning and f"(iteration {good_previous})" in warning
    assert resumed.position.iteration == 6
    assert load_checkpoint(run)["position"]["iteration"] == 6  # finite, verified, and the run went on


def test_both_generations_damaged_is_a_clear_error(trained_run, data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    corrupt_4k(run / CHECKPOINT_NAME)
    (run / PREVIOUS_NAME).write_bytes(b"")
    with pytest.raises(CheckpointError) as err:
        train(tiny_train_config(data, run, schedule=SCHEDULE), resume=True)
    assert f"{run / CHECKPOINT_NAME}: checksum mismatch" in str(err.value)
    assert f"{run / PREVIOUS_NAME}: empty" in str(err.value)


def test_non_finite_weights_are_refused_at_resume_and_export(trained_run, data, tmp_path, caplog):
    state = load_checkpoint(trained_run)
    name = next(k for k, v in state["ema"].items() if v.is_floating_point())
    state["ema"][name].view(-1)[0] = float("nan")
    poisoned = tmp_path / "poisoned.pt"
    save_atomic(state, poisoned)  # a valid checksum over NaN weights
    with pytest.raises(CheckpointError, match=f"tensor ema.{name} holds NaN or inf"):
        export_checkpoint(poisoned, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    shutil.copy(poisoned, run / CHECKPOINT_NAME)
    caplog.set_level(logging.WARNING)
    train(tiny_train_config(data, run, schedule={**SCHEDULE, "epochs": 2}), resume=True)
    assert any(
        f"tensor ema.{name} holds NaN or inf; using the previous checkpoint" in r.getMessage() for r in caplog.records
    )


def test_a_bundle_with_non_finite_weights_is_not_served(trained_run, tmp_path, caplog):
    bundle = export_checkpoint(trained_run, tmp_path / "models" / "good", name="good")
    assert load_registry(tmp_path / "models", ServerConfig()).names() == ["good"]
    state = load_checkpoint(trained_run)
    for part in ("ema", "synthesis"):
        for value in state[part].values():
            if value.is_floating_point():
                value.fill_(float("inf"))
    save_atomic(state, tmp_path / "inf.pt")
    with pytest.raises(CheckpointError, match="holds NaN or inf"):
        export_checkpoint(tmp_path / "inf.pt", tmp_path / "x")
    model = onnx.load(str(bundle.onnx_path))
    weight = next(
        t
        for t in model.graph.initializer
        if numpy_helper.to_array(t).dtype.kind == "f" and numpy_helper.to_array(t).size > 1
    )
    values = numpy_helper.to_array(weight).copy()
    values.flat[0] = np.nan
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    shutil.copytree(bundle.path, tmp_path / "models" / "bad")
    shutil.rmtree(bundle.path)
    onnx.save(model, str(tmp_path / "models" / "bad" / "generator.onnx"))
    with pytest.raises(RegistryError, match=f"weight '{weight.name}' of generator.onnx holds NaN or inf"):
        load_registry(tmp_path / "models", ServerConfig())


def test_a_run_whose_losses_go_non_finite_stops_without_saving(data, tmp_path):
    poisoned = tmp_path / "data"
    shutil.copytree(data, poisoned)
    for path in poisoned.glob("*/motion/*.npy"):
        motion = np.load(path)
        np.save(path, np.full_like(motion, np.nan))
    run = tmp_path / "run"
    with pytest.raises(
        TrainingDiverged, match="training diverged at iteration 1: loss.* are not finite; stopped without saving"
    ):
        train(tiny_train_config(poisoned, run, schedule=SCHEDULE))
    assert not (run / CHECKPOINT_NAME).exists()
