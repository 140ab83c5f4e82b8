"""The one typed config loader, through each config kind it reads (training run, generator, server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from neurender.cli import main
from neurender.common.typed_config import ConfigError, parse_scalar
from neurender.server.config import load_config
from neurender.training.model.config import load_generator_config
from neurender.training.train_config import load_train_config

RECIPE = Path(__file__).resolve().parents[1] / "training" / "configs" / "tiny-synth.yaml"


def test_set_values_are_yaml_scalars_with_numbers_as_numbers() -> None:
    cfg = load_train_config(RECIPE, ["optim.lr=2e-4", "schedule.minutes=3", "optim.amp=false"])
    assert cfg.optim.lr == pytest.approx(2e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.schedule.minutes == 3 and cfg.optim.amp is False
    assert parse_scalar("1e3") == 1000.0 and parse_scalar("7") == 7 and parse_scalar("'no'") == "no"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.amp='no'", "optim.amp is 'no', expected true or false"),
        ("optim.amp=1", "optim.amp is 1, expected true or false"),
        ("optim.lr=fast", "optim.lr is 'fast', expected a number"),
        ("schedule.minutes=true", "schedule.minutes is True, expected a number"),
        ("optim.lrr=1", "optim: unknown option(s) ['lrr']"),
    ],
)
def test_wrong_types_are_refused_by_name(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_train_config(RECIPE, [override])


def test_a_quoted_no_in_a_file_is_refused_by_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(RECIPE.read_text() + "\noptim:\n  amp: 'no'\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "optim.amp is 'no', expected true or false" in err and "Traceback" not in err


def test_generator_and_server_configs_check_types_the_same_way(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"generator.ngf is '16', expected an integer"):
        load_generator_config("tiny", ngf="16")
    serve = tmp_path / "serve.yaml"
    serve.write_text("max_wait_ms: '2'\n")
    with pytest.raises(ConfigError, match=r"max_wait_ms is '2', expected a number"):
        load_config(serve)
