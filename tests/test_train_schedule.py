"""The progressive schedule, the data position, and the training config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurender.training.sampler import micro_batch_indices
from neurender.training.schedule import phase_at
from neurender.training.train_config import ScheduleConfig, load_train_config

SCHEDULE = ScheduleConfig(
    epochs=20,
    decay_epochs=4,
    clip_length=4,
    clip_length_max=16,
    clip_double_every=3,
    coarse_epochs=5,
    fix_coarse_epochs=2,
    single_frame_epochs=2,
)


def test_clip_length_doubles_after_the_warm_up_up_to_the_cap() -> None:
    lengths = [phase_at(SCHEDULE, e, 1, True, 100).clip_length for e in range(12)]
    assert lengths == [1, 1, 4, 4, 4, 8, 8, 8, 16, 16, 16, 16]
    assert [phase_at(SCHEDULE, e, 1, True, 100).single_frame for e in range(3)] == [True, True, False]
    # never longer than the data allows, and always 1 for the per-frame model
    assert phase_at(SCHEDULE, 11, 1, True, 10).clip_length == 10
    assert {phase_at(SCHEDULE, e, 1, False, 100).clip_length for e in range(20)} == {1}


def test_scales_join_coarse_first_with_the_coarser_ones_frozen_for_a_while() -> None:
    phases = [phase_at(SCHEDULE, e + 0.5, 3, True, 100) for e in range(14)]
    assert [p.active_scales for p in phases] == [1] * 5 + [2] * 5 + [3] * 4
    assert [p.frozen_scales for p in phases] == [0] * 5 + [1, 1, 0, 0, 0] + [2, 2, 0, 0]
    assert list(phases[5].trainable_scales) == [1]
    assert list(phases[7].trainable_scales) == [0, 1]
    assert list(phases[10].trainable_scales) == [2]
    # a one-scale model never freezes anything
    assert {phase_at(SCHEDULE, e, 1, True, 100).frozen_scales for e in range(20)} == {0}


def test_learning_rate_decays_linearly_to_zero_over_the_last_epochs() -> None:
    factors = [phase_at(SCHEDULE, e, 1, True, 100).lr_factor for e in (0, 16, 17, 18, 19, 20)]
    assert factors == pytest.approx([1.0, 1.0, 0.75, 0.5, 0.25, 0.0])


def test_two_processes_read_what_one_process_reads_with_the_combined_batch() -> None:
    for iteration in range(5):
        single = micro_batch_indices(1, 2, iteration, 37, batch_size=4, accumulate=1, rank=0, world_size=1)
        parts = [
            micro_batch_indices(1, 2, iteration, 37, batch_size=2, accumulate=1, rank=r, world_size=2) for r in range(2)
        ]
        assert single[0] == parts[0][0] + parts[1][0]
        # accumulation splits the same clips into micro-batches
        accumulated = micro_batch_indices(1, 2, iteration, 37, batch_size=2, accumulate=2, rank=0, world_size=1)
        assert single[0] == accumulated[0] + accumulated[1]
    first_epoch = [micro_batch_indices(1, 0, i, 8, 2, 1, 0, 1)[0] for i in range(4)]
    assert sorted(sum(first_epoch, [])) == list(range(8))  # an epoch is a permutation
    assert first_epoch != [micro_batch_indices(1, 1, i, 8, 2, 1, 0, 1)[0] for i in range(4)]


def test_config_file_errors_name_the_option(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("generator: tiny\nschedule:\n  epoch: 3\n")
    with pytest.raises(ValueError, match=r"schedule: unknown option\(s\) \['epoch'\]"):
        load_train_config(path)
    path.write_text("generator: tiny\nloss:\n  gan_mode: wgan\n")
    with pytest.raises(ValueError, match="loss.gan_mode 'wgan'"):
        load_train_config(path)
    path.write_text("generator: {preset: tiny, ngf: 8}\ndata: {root: x}\n")
    cfg = load_train_config(path, ["schedule.epochs=3", "optim.ttur=true"])
    assert (cfg.generator.ngf, cfg.schedule.epochs, cfg.optim.ttur) == (8, 3, True)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_train_config(tmp_path / "missing.yaml")


def test_shipped_configs_load() -> None:
    configs = sorted((Path(__file__).resolve().parents[1] / "training" / "configs").glob("*.yaml"))
    assert configs, "training/configs/ has no YAML files"
    for path in configs:
        cfg = load_train_config(path)
        assert cfg.data.root, f"{path.name}: data.root is empty"


def test_train_command_reports_config_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from neurender.cli import main

    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    path = tmp_path / "c.yaml"
    path.write_text(f"generator: tiny\ndata: {{root: {tmp_path / 'nowhere'}}}\n")
    assert main(["train", "--config", str(path)]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["train", "--config", str(path), "--set", "schedule"]) == 2
    assert "expected section.option=value" in capsys.readouterr().err
