"""The researcher's workflow, walked as a user types it: recipes, train, train again, export, evaluate, serve.

The recipe is the shipped `tiny-synth`, shrunk by --set to test size; the data is a small moving-shapes dataset
with instances, depth and motion (what the recipe's tiny-engine generator takes) and fewer sequences than the
recipe's held-out names assume.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neurender.cli import main
from neurender.proto.bundle import read_bundle
from neurender.tests.train_support import write_moving_shapes

SHRINK = [
    "--set",
    "generator.ngf=8",
    "--set",
    "generator.n_blocks=1",
    "--set",
    "generator.num_classes=4",
    "--set",
    "data.crop=32",
    "--set",
    "data.batch_size=1",
    "--set",
    "discriminator.ndf=8",
    "--set",
    "discriminator.num_scales=1",
    "--set",
    "schedule.iters_per_epoch=1",
    "--set",
    "schedule.single_frame_epochs=1",
    "--set",
    "schedule.clip_length=2",
    "--threads",
    "1",
]


def test_recipe_train_export_evaluate_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, caplog) -> None:
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    assert main(["recipes"]) == 0
    listed = capsys.readouterr().out
    assert "tiny-synth" in listed and "neurender dataset synth --out runs/data/synth128" in listed

    # the recipe's default data root is not there yet: the error names the command that makes it
    assert main(["train", "--config", "tiny-synth", "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert (
        "runs/data/synth128: not a directory" in err
        and "make it with `neurender dataset synth --out runs/data/synth128" in err
    )
    assert "Traceback" not in err

    data = write_moving_shapes(
        tmp_path / "shapes", sequences=3, frames=6, size=32, num_classes=3, instances=True, depth=True
    )
    command = [
        "train",
        "--config",
        "tiny-synth",
        "--set",
        f"data.root={data}",
        "--out",
        "runs/probe",
        "--max-steps",
        "3",
        *SHRINK,
    ]
    assert main(command) == 0
    captured = capsys.readouterr()
    assert "trained tiny-synth: 3 iterations" in captured.out
    progress = captured.err
    for part in (
        "it 1/3 | epoch 1/20 | warm-up (single frames)",
        "it 3/3 | epoch 3/20 | clip 2 | scale 1/1 | g ",
        "ETA 00:00 of the budget",
    ):
        assert part in progress, (part, progress[-600:])
    assert "holding out ['seq02'] instead" in caplog.text  # the recipe's street_0008/9 are not in this dataset
    samples = sorted(p.name for p in (tmp_path / "runs/probe/samples").glob("*.png"))
    assert samples == ["iter_000001.png", "iter_000003.png"]  # the warm-up's end (a phase change) and the run's end
    checkpoint = (tmp_path / "runs/probe/checkpoint.pt").read_bytes()

    # the same command again would overwrite the run: refused, naming --resume and a new folder
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "runs/probe already holds a run" in err and "--resume" in err and "--out runs/NEW_NAME" in err
    assert (tmp_path / "runs/probe/checkpoint.pt").read_bytes() == checkpoint

    # export names the bundle after its folder; a second export is refused, --overwrite replaces it
    assert main(["export", "runs/probe", "--out", "bundles/probe", "--no-torch"]) == 0
    assert "model 'probe'" in capsys.readouterr().out
    assert read_bundle(tmp_path / "bundles/probe").description.name == "probe"
    assert main(["export", "runs/probe", "--out", "bundles/probe", "--no-torch"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", "runs/probe", "--out", "bundles/probe", "--no-torch", "--overwrite"]) == 0
    capsys.readouterr()

    # evaluate against a baseline, with the ground truth's own E_warp beside the figures
    assert (
        main(
            [
                "evaluate",
                "bundles/probe",
                str(data),
                "--sequences",
                "seq02",
                "--baseline",
                "bundles/probe",
                "--out",
                "eval",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["metric", "probe", "probe", "(baseline)", "ground", "truth", "better"]
    e_warp = next(line for line in table if line.startswith("E_warp"))
    assert len(e_warp.split()) >= 4 and float(e_warp.split()[1]) == float(e_warp.split()[2])
    assert (tmp_path / "eval/contact_sheet.png").exists() and (tmp_path / "eval/baseline/report.json").exists()
    assert main(["evaluate", "bundles/probe", str(data), "--out", "eval"]) == 2
    capsys.readouterr()

    # the exported name is the one a client asks for
    from neurender.engine_plugin.sdk.client import RenderClient
    from neurender.server.app import local_server

    with (
        local_server(tmp_path / "bundles/probe") as server,
        RenderClient(server.address) as client,
        client.session("probe", (32, 32)) as session,
    ):
        labels = np.zeros((32, 32), np.uint8)
        inputs = {
            "labels": labels,
            "instances": labels.astype(np.uint16),
            "depth": np.ones((32, 32), np.float16),
            "motion": np.zeros((32, 32, 2), np.float16),
        }
        assert session.submit(**inputs).result().image.shape == (32, 32, 3)


def test_dataset_synth_follows_the_same_rule(tmp_path: Path, capsys) -> None:
    out = tmp_path / "synth"
    command = ["dataset", "synth", "--out", str(out), "--frames", "2", "--size", "32x32"]
    assert main([*command, "--sequences", "2"]) == 0
    assert main([*command, "--sequences", "1"]) == 2
    assert "already holds dataset.json, street_0000, street_0001" in capsys.readouterr().err
    assert main([*command, "--sequences", "1", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["street_0000"]
